package signature

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	sigsig "github.com/sigstore/sigstore/pkg/signature"

	"github.com/regflow/regflow/shared/config"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// keyRequirement trusts cosign signatures made with one public key.
type keyRequirement struct {
	name        string
	fingerprint string
	verifier    *verify.Verifier
}

func newKeyRequirement(name, field string, k *config.CosignKey) (*keyRequirement, error) {
	if k.KMSKey != "" {
		return nil, &config.FieldError{Field: field + ".kmsKey", Rule: "KMS keys are not read yet: put the key's public half (aws kms get-public-key, as PEM) in publicKey"}
	}
	pemBytes, err := config.ReadPEM(k.PublicKey)
	if err != nil {
		return nil, &config.FieldError{Field: field + ".publicKey", Rule: err.Error()}
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, &config.FieldError{Field: field + ".publicKey", Rule: fmt.Sprintf("is not a public key: %v", err)}
	}
	sv, err := sigsig.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, &config.FieldError{Field: field + ".publicKey", Rule: fmt.Sprintf("cannot verify signatures: %v", err)}
	}
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return nil, &config.FieldError{Field: field + ".publicKey", Rule: err.Error()}
	}
	sum := sha256.Sum256(der)
	// The bundle's key hint is the signer's claim; the configured key is the only one tried.
	key := root.NewExpiringKey(sv, time.Time{}, time.Time{})
	material := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
	v, err := verify.NewVerifier(material, verify.WithNoObserverTimestamps())
	if err != nil {
		return nil, &config.FieldError{Field: field, Rule: err.Error()}
	}
	return &keyRequirement{name: name, fingerprint: "key SHA256:" + hex.EncodeToString(sum[:])[:16], verifier: v}, nil
}

func (r *keyRequirement) label() string { return r.name }

func (r *keyRequirement) accepts(k Kind) bool { return k == KindCosign || k == KindBundle }

func (r *keyRequirement) verify(ctx context.Context, reg Registry, repo string, sig found) (string, error) {
	policy := []verify.PolicyOption{verify.WithKey()}
	if err := verifyCosign(ctx, reg, repo, sig, r.verifier, policy, material{key: true}); err != nil {
		return "", err
	}
	return r.fingerprint, nil
}

// keylessRequirement trusts certificates from a trusted root's CAs for one identity.
type keylessRequirement struct {
	name     string
	verifier *verify.Verifier
	identity verify.CertificateIdentity
	tlog     bool
}

func newKeylessRequirement(name, field string, k *config.CosignKeyless) (*keylessRequirement, error) {
	b, err := config.ReadJSON(k.TrustedRoot)
	if err != nil {
		return nil, &config.FieldError{Field: field + ".trustedRoot", Rule: err.Error()}
	}
	tr, err := root.NewTrustedRootFromJSON(b)
	if err != nil {
		return nil, &config.FieldError{Field: field + ".trustedRoot", Rule: fmt.Sprintf("is not a Sigstore trusted root: %v", err)}
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 {
		return nil, &config.FieldError{Field: field + ".trustedRoot", Rule: "lists no certificate authorities, so no keyless signature could verify"}
	}
	opts := []verify.VerifierOption{verify.WithCurrentTime()}
	if k.RequireTransparencyLog {
		if len(tr.RekorLogs()) == 0 {
			return nil, &config.FieldError{Field: field + ".requireTransparencyLog", Rule: "the trusted root lists no transparency log (tlogs) to check entries against"}
		}
		opts = []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1)}
	}
	v, err := verify.NewVerifier(tr, opts...)
	if err != nil {
		return nil, &config.FieldError{Field: field, Rule: err.Error()}
	}
	issuer, issuerRE := "", k.IssuerRegExp
	if k.Issuer != "" {
		issuerRE = config.GlobRegExp(k.Issuer)
	}
	subjectRE := k.SubjectRegExp
	if k.Subject != "" {
		subjectRE = config.GlobRegExp(k.Subject)
	}
	id, err := verify.NewShortCertificateIdentity(issuer, issuerRE, "", subjectRE)
	if err != nil {
		return nil, &config.FieldError{Field: field, Rule: fmt.Sprintf("identity: %v", err)}
	}
	return &keylessRequirement{name: name, verifier: v, identity: id, tlog: k.RequireTransparencyLog}, nil
}

func (r *keylessRequirement) label() string { return r.name }

func (r *keylessRequirement) accepts(k Kind) bool { return k == KindCosign || k == KindBundle }

func (r *keylessRequirement) verify(ctx context.Context, reg Registry, repo string, sig found) (string, error) {
	var who string
	policy := []verify.PolicyOption{verify.WithCertificateIdentity(r.identity)}
	err := verifyCosign(ctx, reg, repo, sig, r.verifier, policy, material{tlog: r.tlog}, func(res *verify.VerificationResult) {
		if res.Signature != nil && res.Signature.Certificate != nil {
			c := res.Signature.Certificate
			who = fmt.Sprintf("%s (issuer %s)", c.SubjectAlternativeName, c.Extensions.Issuer)
		}
	})
	return who, err
}

// material says what a requirement verifies with: a configured key, or certificates
// (then, with tlog, dated by a transparency log entry).
type material struct {
	key, tlog bool
}

// verifyCosign verifies each layer of a cosign or bundle manifest until one passes.
func verifyCosign(ctx context.Context, reg Registry, repo string, sig found, v *verify.Verifier, policy []verify.PolicyOption, m material, seen ...func(*verify.VerificationResult)) error {
	var errs []error
	for _, l := range sig.manifest.Layers {
		var res *verify.VerificationResult
		var err error
		switch sig.manifest.Kind {
		case KindCosign:
			res, err = verifySimpleSigning(ctx, reg, repo, sig.subject, l, v, policy, m)
		case KindBundle:
			res, err = verifyBundle(ctx, reg, repo, sig.subject, l, v, policy, m)
		default:
			err = fmt.Errorf("%s is not a cosign format", sig.manifest.Kind)
		}
		if err == nil {
			for _, f := range seen {
				f(res)
			}
			return nil
		}
		if isRegistryError(err) {
			return err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// simpleSigning is the part of cosign's signed payload that binds it to an image.
type simpleSigning struct {
	Critical struct {
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

// verifySimpleSigning checks a cosign simple-signing layer: its signature over the payload
// (through sigstore-go, as a message-signature bundle) and that the payload names target.
func verifySimpleSigning(ctx context.Context, reg Registry, repo string, target artifact, l Layer, v *verify.Verifier, policy []verify.PolicyOption, m material) (*verify.VerificationResult, error) {
	if m.tlog {
		return nil, errors.New("a transparency log entry is required, and regflow checks those only in Sigstore bundles (cosign sign --new-bundle-format)")
	}
	payload, err := readBlob(ctx, reg, repo, l.Digest)
	if err != nil {
		return nil, err
	}
	var ss simpleSigning
	if err := json.Unmarshal(payload, &ss); err != nil {
		return nil, fmt.Errorf("payload is not a cosign simple-signing document: %v", err)
	}
	if ss.Critical.Type != "cosign container image signature" {
		return nil, fmt.Errorf("payload type %q is not a cosign container image signature", ss.Critical.Type)
	}
	if ss.Critical.Image.DockerManifestDigest != target.digest.String() {
		return nil, fmt.Errorf("payload signs %s, not %s", ss.Critical.Image.DockerManifestDigest, short(target.digest))
	}
	sum := sha256.Sum256(payload)
	pb := &protobundle.Bundle{
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     l.Signature,
		}},
	}
	if l.Certificate == "" {
		pb.MediaType = bundleMediaType03
		pb.VerificationMaterial = &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}}
	} else {
		certs, err := cryptoutils.UnmarshalCertificatesFromPEMLimited([]byte(l.Certificate+"\n"+l.Chain), 10)
		if err != nil || len(certs) == 0 {
			return nil, fmt.Errorf("certificate annotation does not parse: %v", err)
		}
		chain := &protocommon.X509CertificateChain{}
		for _, c := range certs {
			chain.Certificates = append(chain.Certificates, &protocommon.X509Certificate{RawBytes: c.Raw})
		}
		// Bundle v0.2 is the version that carries a chain, as cosign's annotations do.
		pb.MediaType = bundleMediaType02
		pb.VerificationMaterial = &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: chain}}
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("signature material: %v", err)
	}
	if err := m.fits(b); err != nil {
		return nil, err
	}
	res, err := v.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(payload)), policy...))
	if err != nil {
		return nil, explain(b, m, err)
	}
	return res, nil
}

// fits refuses, with a plain reason, material of the other kind: a key signature for a
// keyless requirement, a certificate for a key.
func (m material) fits(b *bundle.Bundle) error {
	vc, err := b.VerificationContent()
	if err != nil {
		return fmt.Errorf("signature material: %v", err)
	}
	switch {
	case m.key && vc.Certificate() != nil:
		return errors.New("signed with a certificate (keyless), not with the trusted key")
	case !m.key && vc.Certificate() == nil:
		return errors.New("signed with a key, not with a certificate for the trusted identity")
	}
	return nil
}

const (
	bundleMediaType02 = "application/vnd.dev.sigstore.bundle+json;version=0.2"
	bundleMediaType03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// verifyBundle checks a Sigstore bundle layer against the target digest.
func verifyBundle(ctx context.Context, reg Registry, repo string, target artifact, l Layer, v *verify.Verifier, policy []verify.PolicyOption, m material) (*verify.VerificationResult, error) {
	raw, err := readBlob(ctx, reg, repo, l.Digest)
	if err != nil {
		return nil, err
	}
	b, err := ParseBundle(raw)
	if err != nil {
		return nil, err
	}
	if err := m.fits(b); err != nil {
		return nil, err
	}
	digest, err := hex.DecodeString(target.digest.Hex)
	if err != nil {
		return nil, fmt.Errorf("target digest: %v", err)
	}
	res, err := v.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), policy...))
	if err != nil {
		return nil, explain(b, m, err)
	}
	return res, nil
}

// ParseBundle reads a Sigstore bundle (v0.1 to v0.3) as sigstore-go validates it.
func ParseBundle(raw []byte) (*bundle.Bundle, error) {
	if len(raw) > MaxBlobBytes {
		return nil, fmt.Errorf("bundle is %d bytes, more than %d", len(raw), MaxBlobBytes)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("not a valid Sigstore bundle: %v", err)
	}
	return &b, nil
}

// explain shortens sigstore-go's errors to what an operator acts on.
func explain(b *bundle.Bundle, m material, err error) error {
	msg := err.Error()
	if vc, verr := b.VerificationContent(); verr == nil && !m.tlog {
		// Without a log entry the certificate is checked at the current time: say so
		// when that is why it failed.
		if c := vc.Certificate(); c != nil {
			now := time.Now()
			switch {
			case now.After(c.NotAfter):
				return fmt.Errorf("certificate expired at %s (no transparency log entry dates the signature): %w", c.NotAfter.UTC().Format(time.RFC3339), err)
			case now.Before(c.NotBefore):
				return fmt.Errorf("certificate is not valid before %s: %w", c.NotBefore.UTC().Format(time.RFC3339), err)
			}
		}
	}
	for _, c := range []struct{ has, say string }{
		{"failed to verify certificate identity", "certificate identity does not match"},
		{"expected key signature, not certificate", "signed with a certificate (keyless), not with the trusted key"},
		{"can't verify certificate identities: entity was not signed with a certificate", "signed with a key, not a certificate for the trusted identity"},
		{"failed to verify leaf certificate", "certificate does not chain to the trusted root at the signature's time (expired, not yet valid, or another CA)"},
	} {
		if bytes.Contains([]byte(msg), []byte(c.has)) {
			return fmt.Errorf("%s: %w", c.say, err)
		}
	}
	if bytes.Contains([]byte(msg), []byte("failed to verify signature")) {
		return fmt.Errorf("signature does not verify (another key, or the payload or signature was altered): %w", err)
	}
	return err
}
