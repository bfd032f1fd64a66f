package signature

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/regflow/regflow/shared/config"
)

// notationRequirement trusts Notary Project signatures under notation's own trust policy.
type notationRequirement struct {
	name     string
	verifier notation.Verifier
}

// memoryTrustStore serves the config's certificates to notation-go (which otherwise reads
// them from a directory layout a Lambda does not have).
type memoryTrustStore map[string][]*x509.Certificate

func (s memoryTrustStore) GetCertificates(_ context.Context, t truststore.Type, name string) ([]*x509.Certificate, error) {
	certs, ok := s[string(t)+":"+name]
	if !ok {
		return nil, truststore.TrustStoreError{Msg: fmt.Sprintf("trust store %q of type %q is not in the config's trustStore", name, t)}
	}
	return certs, nil
}

func newNotationRequirement(name, field string, n *config.NotationTrust) (*notationRequirement, error) {
	var doc trustpolicy.Document
	dec := json.NewDecoder(strings.NewReader(string(n.TrustPolicy)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, &config.FieldError{Field: field + ".trustPolicy", Rule: fmt.Sprintf("is not a notation trust policy: %v", err)}
	}
	store := memoryTrustStore{}
	for sname, certs := range n.TrustStore {
		for i, c := range certs {
			b, err := config.ReadPEM(c)
			if err != nil {
				return nil, &config.FieldError{Field: fmt.Sprintf("%s.trustStore.%s[%d]", field, sname, i), Rule: err.Error()}
			}
			parsed, err := config.ParseCertificates(b)
			if err != nil {
				return nil, &config.FieldError{Field: fmt.Sprintf("%s.trustStore.%s[%d]", field, sname, i), Rule: err.Error()}
			}
			if err := truststore.ValidateCertificates(parsed); err != nil {
				return nil, &config.FieldError{Field: fmt.Sprintf("%s.trustStore.%s[%d]", field, sname, i), Rule: fmt.Sprintf("notation refuses it: %v", err)}
			}
			store[sname] = append(store[sname], parsed...)
		}
	}
	// No plugin manager: AWS Signer's plugin is a binary a Lambda does not ship, so
	// signatures that demand a plugin fail with notation's own reason.
	v, err := verifier.New(&doc, store, nil)
	if err != nil {
		return nil, &config.FieldError{Field: field + ".trustPolicy", Rule: fmt.Sprintf("notation refuses it: %v", err)}
	}
	return &notationRequirement{name: name, verifier: v}, nil
}

func (r *notationRequirement) label() string { return r.name }

func (r *notationRequirement) accepts(k Kind) bool { return k == KindNotation }

func (r *notationRequirement) verify(ctx context.Context, reg Registry, repo string, sig found) (string, error) {
	target := sig.subject
	desc := ocispec.Descriptor{MediaType: target.mediaType, Digest: digest.Digest(target.digest.String()), Size: target.size}
	var errs []error
	for _, l := range sig.manifest.Layers {
		env, err := readBlob(ctx, reg, repo, l.Digest)
		if err != nil {
			if isRegistryError(err) {
				return "", err
			}
			errs = append(errs, err)
			continue
		}
		out, err := r.verifier.Verify(ctx, desc, env, notation.VerifierVerifyOptions{
			ArtifactReference:  repo + "@" + target.digest.String(),
			SignatureMediaType: l.MediaType,
		})
		if err != nil {
			errs = append(errs, notationReason(out, err))
			continue
		}
		if out.EnvelopeContent == nil || len(out.EnvelopeContent.SignerInfo.CertificateChain) == 0 {
			errs = append(errs, errors.New("notation verified no signer certificate"))
			continue
		}
		return out.EnvelopeContent.SignerInfo.CertificateChain[0].Subject.String(), nil
	}
	return "", errors.Join(errs...)
}

// notationReason names the check that failed (integrity, authenticity, expiry, ...).
func notationReason(out *notation.VerificationOutcome, err error) error {
	if out != nil {
		for _, r := range out.VerificationResults {
			if r.Error != nil {
				return fmt.Errorf("notation %s check failed: %w", r.Type, r.Error)
			}
		}
	}
	if err.Error() == "content descriptor mismatch" {
		return fmt.Errorf("the envelope signs another artifact (%w)", err)
	}
	return err
}
