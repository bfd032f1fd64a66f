// Package signature verifies that a digest carries the signatures an environment trusts
// (regflow.yaml requireSignature): cosign signatures in the tag (sha256-<hex>.sig) and
// OCI 1.1 referrer forms, Sigstore bundles, and Notary Project signatures (notation, AWS
// Signer). The cryptography is sigstore-go's and notation-go's; this package finds the
// signatures through a narrow registry port, checks they are about the digest asked for,
// and words the outcome for operators.
package signature

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regflow/regflow/shared/config"
)

// ErrNotFound is what a Registry returns for a manifest or blob that does not exist.
var ErrNotFound = errors.New("not found")

// Registry is what verification reads from a registry. repo is a full repository
// reference ("host/path"). Implementations need not be trusted: every manifest and blob
// is checked against its digest here.
type Registry interface {
	// Manifest returns the manifest ref names (a digest "sha256:…" or a tag) and its media
	// type; ErrNotFound when there is none.
	Manifest(ctx context.Context, repo, ref string) (raw []byte, mediaType string, err error)
	// Referrers lists the manifests whose subject is subject: the OCI 1.1 referrers API, or
	// the sha256-<hex> tag index where the registry lacks it.
	Referrers(ctx context.Context, repo string, subject v1.Hash) ([]v1.Descriptor, error)
	// Blob returns a blob of at most limit bytes.
	Blob(ctx context.Context, repo string, d v1.Hash, limit int64) ([]byte, error)
}

// Target is the digest to verify.
type Target struct {
	// Repository is the full repository reference, host included (host/team/app).
	Repository string
	Digest     string
	// Indexes are digests of image indexes that list Digest; a signature on one of them
	// counts for it (cosign signs the index a release is tagged as).
	Indexes []string
}

// Result is a verification's outcome.
type Result struct {
	Verified bool
	// Identity, SignatureDigest, Kind and Requirement describe the signature that verified
	// (the first one, when the policy needed several).
	Identity        string
	SignatureDigest string
	Kind            Kind
	Requirement     string
	// Reason says what was checked, and why it failed.
	Reason string
	// Checks are the per-requirement outcomes.
	Checks []Check
}

// Check is one requirement's outcome.
type Check struct {
	Requirement     string
	Verified        bool
	Identity        string
	SignatureDigest string
	Kind            Kind
	// Via says where the signature was found (referrers API, or the cosign tag).
	Via string
	// Failures say why each signature examined did not meet the requirement.
	Failures []string
}

// Verifier holds one environment's compiled requireSignature.
type Verifier struct {
	any  bool
	reqs []requirement
}

// requirement is one trusted signer, able to judge one signature.
type requirement interface {
	label() string
	accepts(k Kind) bool
	// verify judges sig, which must be about sig.subject. It returns the signer's identity.
	verify(ctx context.Context, reg Registry, repo string, sig found) (string, error)
}

// artifact is a manifest the verifier has read and checked against its digest.
type artifact struct {
	digest    v1.Hash
	mediaType string
	size      int64
}

// found is a signature manifest found for a subject.
type found struct {
	digest   v1.Hash
	manifest *Manifest
	via      string // "referrers API" or the cosign tag
	// subject is what the signature must be about: the target, or an index listing it.
	subject artifact
}

// New compiles a requireSignature policy; field prefixes errors with the config path
// (environments.prod.requireSignature) so a policy config accepted but a library refuses
// still names its field.
func New(field string, p config.SignaturePolicy) (*Verifier, error) {
	v := &Verifier{any: p.Any}
	var errs []error
	for i, r := range p.Require {
		f := fmt.Sprintf("%s.require[%d]", field, i)
		var req requirement
		var err error
		switch {
		case r.CosignKey != nil:
			req, err = newKeyRequirement(r.Label(i), f+".cosignKey", r.CosignKey)
		case r.CosignKeyless != nil:
			req, err = newKeylessRequirement(r.Label(i), f+".cosignKeyless", r.CosignKeyless)
		case r.Notation != nil:
			req, err = newNotationRequirement(r.Label(i), f+".notation", r.Notation)
		default:
			err = &config.FieldError{Field: f, Rule: "set one of cosignKey, cosignKeyless, notation"}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		v.reqs = append(v.reqs, req)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, errors.Join(errs...))
	}
	if len(v.reqs) == 0 {
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, &config.FieldError{Field: field + ".require", Rule: "must list at least one trusted signer"})
	}
	return v, nil
}

// Verify looks for signatures on t.Digest (and on the indexes listing it) and judges
// them against the policy. An error means the registry could not be read; a signature
// that fails is a Result with Verified false and a Reason.
func (v *Verifier) Verify(ctx context.Context, reg Registry, t Target) (Result, error) {
	d, err := v1.NewHash(t.Digest)
	if err != nil {
		return Result{Reason: fmt.Sprintf("%q is not a digest: %v", t.Digest, err)}, nil
	}
	target, err := readArtifact(ctx, reg, t.Repository, d)
	if errors.Is(err, ErrNotFound) {
		return Result{Reason: fmt.Sprintf("%s@%s does not exist", t.Repository, d)}, nil
	}
	if err != nil {
		return Result{}, err
	}
	subjects := []artifact{target}
	for _, ix := range t.Indexes {
		h, err := v1.NewHash(ix)
		if err != nil {
			continue
		}
		listed, err := indexLists(ctx, reg, t.Repository, h, d)
		if err != nil {
			return Result{}, err
		}
		if listed != nil {
			subjects = append(subjects, *listed)
		}
	}
	var sigs []found
	var skipped []string
	for _, s := range subjects {
		got, bad, err := findSignatures(ctx, reg, t.Repository, s)
		if err != nil {
			return Result{}, err
		}
		sigs = append(sigs, got...)
		skipped = append(skipped, bad...)
	}
	if len(sigs) == 0 {
		reason := fmt.Sprintf("no signature on %s (looked in the referrers API and at tag %s)", short(d), cosignTag(d))
		if len(subjects) > 1 {
			reason += fmt.Sprintf(", nor on the %d index(es) listing it", len(subjects)-1)
		}
		if hint := platformHint(ctx, reg, t.Repository, target); hint != "" {
			reason += "; " + hint
		}
		if len(skipped) > 0 {
			reason += "; rejected: " + strings.Join(skipped, "; ")
		}
		return Result{Reason: reason}, nil
	}

	res := Result{}
	for _, req := range v.reqs {
		c := Check{Requirement: req.label()}
		for _, s := range sigs {
			if !req.accepts(s.manifest.Kind) {
				continue
			}
			id, err := req.verify(ctx, reg, t.Repository, s)
			if err != nil {
				if isRegistryError(err) {
					return Result{}, err
				}
				c.Failures = append(c.Failures, fmt.Sprintf("%s signature %s (%s): %v", s.manifest.Kind, short(s.digest), s.via, err))
				continue
			}
			c.Verified, c.Identity, c.SignatureDigest, c.Kind, c.Via = true, id, s.digest.String(), s.manifest.Kind, s.via
			if s.subject.digest != d {
				c.Via += " of index " + short(s.subject.digest)
			}
			break
		}
		if !c.Verified && len(c.Failures) == 0 {
			c.Failures = append(c.Failures, fmt.Sprintf("none of the %d signature(s) found is in a format it checks", len(sigs)))
		}
		c.Failures = append(c.Failures, skipped...)
		res.Checks = append(res.Checks, c)
	}
	res.Verified = !v.any
	for _, c := range res.Checks {
		if v.any && c.Verified {
			res.Verified = true
		}
		if !v.any && !c.Verified {
			res.Verified = false
		}
	}
	var parts []string
	for _, c := range res.Checks {
		if c.Verified {
			if res.Identity == "" {
				res.Identity, res.SignatureDigest, res.Kind, res.Requirement = c.Identity, c.SignatureDigest, c.Kind, c.Requirement
			}
			parts = append(parts, fmt.Sprintf("%q: signed by %s (%s signature %s, %s)", c.Requirement, c.Identity, c.Kind, short(mustHash(c.SignatureDigest)), c.Via))
		} else {
			parts = append(parts, fmt.Sprintf("%q: not met: %s", c.Requirement, strings.Join(c.Failures, "; ")))
		}
	}
	mode := "all of"
	if v.any {
		mode = "one of"
	}
	verdict := "verified"
	if !res.Verified {
		verdict = "not verified"
		res.Identity, res.SignatureDigest, res.Kind, res.Requirement = "", "", "", ""
	}
	res.Reason = fmt.Sprintf("signature %s for %s (%s %d requirement(s), %d signature(s) found): %s",
		verdict, short(d), mode, len(res.Checks), len(sigs), strings.Join(parts, "; "))
	return res, nil
}

// registryError marks failures to read the registry, which Verify returns as errors.
type registryError struct{ err error }

func (e registryError) Error() string { return e.err.Error() }
func (e registryError) Unwrap() error { return e.err }

func isRegistryError(err error) bool {
	var re registryError
	return errors.As(err, &re)
}

// readArtifact reads a manifest by digest and checks the bytes are the digest's.
func readArtifact(ctx context.Context, reg Registry, repo string, d v1.Hash) (artifact, error) {
	raw, mt, err := readManifest(ctx, reg, repo, d)
	if err != nil {
		return artifact{}, err
	}
	return artifact{digest: d, mediaType: mt, size: int64(len(raw))}, nil
}

func readManifest(ctx context.Context, reg Registry, repo string, d v1.Hash) ([]byte, string, error) {
	raw, mt, err := reg.Manifest(ctx, repo, d.String())
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, "", err
		}
		return nil, "", registryError{fmt.Errorf("read manifest %s@%s: %w", repo, d, err)}
	}
	if err := checkDigest(raw, d); err != nil {
		return nil, "", fmt.Errorf("manifest %s@%s: %w", repo, d, err)
	}
	if mt == "" {
		mt = mediaTypeOf(raw)
	}
	return raw, mt, nil
}

func readBlob(ctx context.Context, reg Registry, repo string, d v1.Hash) ([]byte, error) {
	b, err := reg.Blob(ctx, repo, d, MaxBlobBytes)
	if err != nil {
		return nil, registryError{fmt.Errorf("read blob %s@%s: %w", repo, d, err)}
	}
	if err := checkDigest(b, d); err != nil {
		return nil, fmt.Errorf("blob %s: %w", short(d), err)
	}
	return b, nil
}

func checkDigest(b []byte, d v1.Hash) error {
	if d.Algorithm != "sha256" {
		return fmt.Errorf("digest algorithm %s is not sha256", d.Algorithm)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != d.Hex {
		return fmt.Errorf("content does not hash to %s: the registry served other bytes", short(d))
	}
	return nil
}

func mediaTypeOf(raw []byte) string {
	var m struct {
		MediaType string `json:"mediaType"`
	}
	if err := jsonUnmarshal(raw, &m); err != nil || m.MediaType == "" {
		return string(types.OCIManifestSchema1)
	}
	return m.MediaType
}

// findSignatures lists the signature manifests whose subject is sub. Manifests that are
// other artifacts are skipped; broken signature manifests are reported in bad.
func findSignatures(ctx context.Context, reg Registry, repo string, sub artifact) (sigs []found, bad []string, err error) {
	s := sub.digest
	refs, err := reg.Referrers(ctx, repo, s)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, nil, fmt.Errorf("list referrers of %s@%s: %w", repo, s, err)
	}
	seen := map[v1.Hash]bool{}
	add := func(d v1.Hash, raw []byte, via string) {
		if seen[d] {
			return
		}
		seen[d] = true
		m, err := ParseManifest(raw)
		switch {
		case errors.Is(err, ErrNotSignature):
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s (%s): %v", short(d), via, err))
		case m.Subject != nil && *m.Subject != s:
			// A referrer listed for s must be about s: one naming another subject is a
			// signature over another digest, moved or replayed.
			bad = append(bad, fmt.Sprintf("%s (%s): its subject is %s, not %s", short(d), via, short(*m.Subject), short(s)))
		default:
			sigs = append(sigs, found{digest: d, manifest: m, via: via, subject: sub})
		}
	}
	for _, r := range refs {
		if r.ArtifactType != "" && !signatureArtifactType(string(r.ArtifactType)) {
			continue // an SBOM or attestation: not read at all
		}
		raw, _, err := readManifest(ctx, reg, repo, r.Digest)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since it was listed
		}
		if err != nil {
			if isRegistryError(err) {
				return nil, nil, err
			}
			bad = append(bad, fmt.Sprintf("%s (referrers API): %v", short(r.Digest), err))
			continue
		}
		add(r.Digest, raw, "referrers API")
	}
	tag := cosignTag(s)
	raw, _, err := reg.Manifest(ctx, repo, tag)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, nil, fmt.Errorf("read %s:%s: %w", repo, tag, err)
	default:
		h, _, herr := v1.SHA256(bytes.NewReader(raw))
		if herr != nil {
			return nil, nil, fmt.Errorf("hash %s:%s: %w", repo, tag, herr)
		}
		add(h, raw, "tag "+shortTag(s)+".sig")
	}
	return sigs, bad, nil
}

func signatureArtifactType(at string) bool {
	return at == MediaNotationSignature || at == MediaCosignSigArtifact || strings.HasPrefix(at, MediaBundlePrefix)
}

// indexLists returns the index ix when it lists child, nil otherwise.
func indexLists(ctx context.Context, reg Registry, repo string, ix, child v1.Hash) (*artifact, error) {
	raw, mt, err := readManifest(ctx, reg, repo, ix)
	if err != nil {
		if isRegistryError(err) {
			return nil, err
		}
		return nil, nil // gone, or not what it claims: lends nothing
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, nil
	}
	for _, m := range im.Manifests {
		if m.Digest == child {
			return &artifact{digest: ix, mediaType: mt, size: int64(len(raw))}, nil
		}
	}
	return nil, nil
}

// platformHint explains a missing signature on an index whose platforms are signed:
// signing each platform does not sign the index that is promoted.
func platformHint(ctx context.Context, reg Registry, repo string, target artifact) string {
	if !types.MediaType(target.mediaType).IsIndex() {
		return ""
	}
	raw, _, err := readManifest(ctx, reg, repo, target.digest)
	if err != nil {
		return ""
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	var signed []string
	for _, m := range im.Manifests {
		if sigs, _, err := findSignatures(ctx, reg, repo, artifact{digest: m.Digest, mediaType: string(m.MediaType), size: m.Size}); err == nil && len(sigs) > 0 {
			signed = append(signed, short(m.Digest))
		}
	}
	if len(signed) == 0 {
		return ""
	}
	return fmt.Sprintf("platform(s) %s are signed, but a signature on a platform does not cover the index: sign the index (cosign sign --recursive signs both)", strings.Join(signed, ", "))
}

func cosignTag(d v1.Hash) string { return d.Algorithm + "-" + d.Hex + ".sig" }

// shortTag is the cosign tag's stem, shortened for reasons: sha256-0123456789ab….
func shortTag(d v1.Hash) string {
	if len(d.Hex) < 12 {
		return d.Algorithm + "-" + d.Hex
	}
	return d.Algorithm + "-" + d.Hex[:12] + "…"
}

func short(d v1.Hash) string {
	if len(d.Hex) < 12 {
		return d.String()
	}
	return d.Algorithm + ":" + d.Hex[:12]
}

func mustHash(s string) v1.Hash {
	h, _ := v1.NewHash(s)
	return h
}
