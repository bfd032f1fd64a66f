package signature

import (
	"context"
	"fmt"
	"slices"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/regflow"
)

// Reach returns the registry reader for an environment and the registry host its
// repositories live under (the local stack's loopback host, or the ECR host).
type Reach func(ctx context.Context, env string) (reg Registry, host string, err error)

// Checker is regflow.SignatureVerifier over every environment's requireSignature.
type Checker struct {
	verifiers map[string]*Verifier
	reach     Reach
}

var _ regflow.SignatureVerifier = (*Checker)(nil)

// NewChecker compiles each environment's policy once (at start, so a policy a library
// refuses fails the function's start, naming its field).
func NewChecker(cfg *config.Config, reach Reach) (*Checker, error) {
	c := &Checker{verifiers: map[string]*Verifier{}, reach: reach}
	names := make([]string, 0, len(cfg.Environments))
	for n := range cfg.Environments {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := cfg.Environments[n].RequireSignature
		if p == nil {
			continue
		}
		v, err := New("environments."+n+".requireSignature", *p)
		if err != nil {
			return nil, err
		}
		c.verifiers[n] = v
	}
	return c, nil
}

// VerifySignature checks sc.Digest, as it is in sc.In's registry, against sc.Env's policy.
func (c *Checker) VerifySignature(ctx context.Context, sc regflow.SignatureCheck) (regflow.SignatureStatus, error) {
	v, ok := c.verifiers[sc.Env]
	if !ok {
		return regflow.SignatureStatus{Reason: fmt.Sprintf("%s requires no signature", sc.Env)}, nil
	}
	in := sc.In
	if in == "" {
		in = sc.Env
	}
	reg, host, err := c.reach(ctx, in)
	if err != nil {
		return regflow.SignatureStatus{}, fmt.Errorf("reach %s's registry to verify signatures for %s: %w", in, sc.Env, err)
	}
	res, err := v.Verify(ctx, reg, Target{Repository: host + "/" + sc.Repository, Digest: sc.Digest, Indexes: sc.Indexes})
	if err != nil {
		return regflow.SignatureStatus{}, fmt.Errorf("verify signatures of %s@%s in %s for %s: %w", sc.Repository, sc.Digest, in, sc.Env, err)
	}
	return regflow.SignatureStatus{
		Required: true, Verified: res.Verified, Identity: res.Identity,
		SignatureDigest: res.SignatureDigest, Kind: string(res.Kind), Reason: res.Reason,
	}, nil
}
