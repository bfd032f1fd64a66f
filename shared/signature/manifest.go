package signature

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Kind is a signature format.
type Kind string

// The signature formats regflow verifies.
const (
	// KindCosign is cosign's simple-signing form: a manifest (tag sha256-<hex>.sig, or an
	// OCI 1.1 referrer) whose layers are signed payloads naming the image digest.
	KindCosign Kind = "cosign"
	// KindBundle is a Sigstore bundle pushed as an OCI 1.1 referrer (cosign --new-bundle-format).
	KindBundle Kind = "sigstore-bundle"
	// KindNotation is a Notary Project signature (notation, AWS Signer): a referrer whose
	// layer is a JWS or COSE envelope.
	KindNotation Kind = "notation"
)

// Media types and annotations of the formats, as their specifications name them.
const (
	MediaCosignSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	MediaCosignSigArtifact   = "application/vnd.dev.cosign.artifact.sig.v1+json"
	MediaBundlePrefix        = "application/vnd.dev.sigstore.bundle"
	MediaNotationSignature   = "application/vnd.cncf.notary.signature"
	MediaJWS                 = "application/jose+json"
	MediaCOSE                = "application/cose"

	AnnotationCosignSignature   = "dev.cosignproject.cosign/signature"
	AnnotationCosignCertificate = "dev.sigstore.cosign/certificate"
	AnnotationCosignChain       = "dev.sigstore.cosign/chain"
	AnnotationCosignRekorBundle = "dev.sigstore.cosign/bundle"
)

// Limits keep a hostile registry from making regflow read without end.
const (
	MaxManifestBytes = 4 << 20
	MaxBlobBytes     = 1 << 20
	MaxLayers        = 64
)

// ErrNotSignature marks a referrer that is some other artifact (an SBOM, an attestation):
// skipped, not an error.
var ErrNotSignature = errors.New("not a signature manifest")

// ErrMalformed marks a manifest that claims to be a signature but cannot be one.
var ErrMalformed = errors.New("malformed signature manifest")

// Manifest is a parsed signature manifest.
type Manifest struct {
	Kind Kind
	// Subject is the digest the manifest's subject field names; nil for cosign's tag form.
	Subject *v1.Hash
	Layers  []Layer
}

// Layer is one signature of a manifest: for cosign a signed payload and its signature,
// for a bundle the bundle blob, for notation the envelope blob.
type Layer struct {
	Digest    v1.Hash
	Size      int64
	MediaType string
	// Signature is cosign's raw signature (decoded from the annotation).
	Signature []byte
	// Certificate and Chain are cosign's PEM annotations, for keyless signatures.
	Certificate, Chain string
	// HasRekorBundle says the cosign layer carries a Rekor bundle annotation.
	HasRekorBundle bool
}

// ParseManifest reads a manifest and says which signature format it is. It returns
// ErrNotSignature for other artifacts and ErrMalformed for broken signatures.
func ParseManifest(raw []byte) (*Manifest, error) {
	if len(raw) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(raw), MaxManifestBytes)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		// An index or a non-JSON body is not a signature manifest; a JSON body that looks like
		// one but has, say, truncated digests is broken.
		if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '{' && looksLikeSignature(raw) {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrNotSignature, err)
	}
	kind, ok := kindOf(m)
	if !ok {
		return nil, ErrNotSignature
	}
	if len(m.Layers) == 0 {
		return nil, fmt.Errorf("%w: %s manifest has no layers", ErrMalformed, kind)
	}
	if len(m.Layers) > MaxLayers {
		return nil, fmt.Errorf("%w: %d layers, more than %d", ErrMalformed, len(m.Layers), MaxLayers)
	}
	out := &Manifest{Kind: kind}
	if m.Subject != nil {
		d := m.Subject.Digest
		out.Subject = &d
	}
	for i, l := range m.Layers {
		if l.Digest.Algorithm != "sha256" {
			return nil, fmt.Errorf("%w: layer %d digest %s is not sha256", ErrMalformed, i, l.Digest)
		}
		if l.Size < 0 || l.Size > MaxBlobBytes {
			return nil, fmt.Errorf("%w: layer %d size %d is outside 0..%d", ErrMalformed, i, l.Size, MaxBlobBytes)
		}
		layer := Layer{Digest: l.Digest, Size: l.Size, MediaType: string(l.MediaType)}
		switch kind {
		case KindCosign:
			if string(l.MediaType) != MediaCosignSimpleSigning {
				continue // cosign may add other layers; only simple-signing ones are signatures
			}
			sig := l.Annotations[AnnotationCosignSignature]
			if sig == "" {
				return nil, fmt.Errorf("%w: layer %d has no %s annotation", ErrMalformed, i, AnnotationCosignSignature)
			}
			b, err := base64.StdEncoding.DecodeString(sig)
			if err != nil {
				return nil, fmt.Errorf("%w: layer %d signature is not base64: %v", ErrMalformed, i, err)
			}
			layer.Signature = b
			layer.Certificate = l.Annotations[AnnotationCosignCertificate]
			layer.Chain = l.Annotations[AnnotationCosignChain]
			layer.HasRekorBundle = l.Annotations[AnnotationCosignRekorBundle] != ""
		case KindBundle:
			if !strings.HasPrefix(string(l.MediaType), MediaBundlePrefix) {
				return nil, fmt.Errorf("%w: layer %d media type %q is not a Sigstore bundle", ErrMalformed, i, l.MediaType)
			}
		case KindNotation:
			if mt := string(l.MediaType); mt != MediaJWS && mt != MediaCOSE {
				return nil, fmt.Errorf("%w: layer %d media type %q is neither %s nor %s", ErrMalformed, i, mt, MediaJWS, MediaCOSE)
			}
		}
		out.Layers = append(out.Layers, layer)
	}
	if len(out.Layers) == 0 {
		return nil, fmt.Errorf("%w: cosign manifest has no %s layer", ErrMalformed, MediaCosignSimpleSigning)
	}
	return out, nil
}

func kindOf(m *v1.Manifest) (Kind, bool) {
	at, cfg := string(m.ArtifactType), string(m.Config.MediaType)
	switch {
	case at == MediaNotationSignature || cfg == MediaNotationSignature:
		return KindNotation, true
	case strings.HasPrefix(at, MediaBundlePrefix):
		return KindBundle, true
	case at == MediaCosignSigArtifact || cfg == MediaCosignSigArtifact:
		return KindCosign, true
	}
	// cosign's tag form carries a plain image config; its layers say what it is.
	for _, l := range m.Layers {
		if string(l.MediaType) == MediaCosignSimpleSigning {
			return KindCosign, true
		}
	}
	return "", false
}

// looksLikeSignature tells a broken signature manifest from an unrelated document.
func looksLikeSignature(raw []byte) bool {
	for _, s := range []string{MediaCosignSimpleSigning, MediaCosignSigArtifact, MediaBundlePrefix, MediaNotationSignature} {
		if bytes.Contains(raw, []byte(s)) {
			return true
		}
	}
	return false
}
