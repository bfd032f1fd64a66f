package ocisig

import (
	"context"
	"fmt"
	"net"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/signature"
)

// Clients returns the ECR client of an account's registry in a region; app.Registries (AWS
// and the local stack) has this method.
type Clients interface {
	Registry(account, region string) (*ecr.Client, error)
}

// ReachECR reaches an environment's registry at its configured host with an ECR token
// from that environment's reader client (read-only outside the pipeline account).
// Loopback hosts, the local stack's, are spoken to over plain HTTP.
func ReachECR(cfg *config.Config, clients Clients) signature.Reach {
	return func(ctx context.Context, env string) (signature.Registry, string, error) {
		e, ok := cfg.Environments[env]
		if !ok {
			return nil, "", fmt.Errorf("environment %q is not configured", env)
		}
		c, err := clients.Registry(e.Account, e.Region)
		if err != nil {
			return nil, "", err
		}
		a, err := c.Authenticator(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("registry credentials for %s: %w", env, err)
		}
		r := New(remote.WithAuth(a))
		if loopback(e.Registry) {
			r = r.Insecure()
		}
		return r, e.Registry, nil
	}
}

func loopback(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Checker is the composition root's one call: a regflow.SignatureVerifier over every
// environment's requireSignature, reading registries through clients; nil when no
// environment requires a signature. A policy a library refuses fails here, naming its field.
func Checker(cfg *config.Config, clients Clients) (regflow.SignatureVerifier, error) {
	required := false
	for _, e := range cfg.Environments {
		required = required || e.RequireSignature != nil
	}
	if !required {
		return nil, nil
	}
	c, err := signature.NewChecker(cfg, ReachECR(cfg, clients))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ForApp is Checker as the composition root takes it (app.Adapters.Signatures).
func ForApp(cfg *config.Config, regs app.Registries) (regflow.SignatureVerifier, error) {
	return Checker(cfg, regs)
}
