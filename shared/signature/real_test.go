package signature_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/signature"
)

func readReal(t *testing.T, dir, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Published signature manifests (../shared/testdata/real, see SOURCES.md) parse into their
// format, and the ones broken as published are refused as malformed, without a panic.
func TestParseManifestRealPayloads(t *testing.T) {
	dir := testenv.RealTestdata(t)
	tests := []struct {
		file    string
		kind    signature.Kind
		subject bool
		rekor   bool
		err     error
		says    string
	}{
		{"cosign-signature-manifest-sig-tag.harbor-source-comment.json", signature.KindCosign, false, false, nil, ""},
		{"cosign-signature-manifest-oci11-subject-bundle-annotation.harbor-source-comment.json", signature.KindCosign, true, true, nil, ""},
		{"notation-signature-manifest.notation-e2e-testdata.json", signature.KindNotation, true, false, nil, ""},
		{"notation-signature-manifest-artifacttype-subject.notary-spec.json", signature.KindNotation, true, false, nil, ""},
		{"notation-signature-manifest-config-mediatype-oci-v1.0.notary-spec.json", signature.KindNotation, true, false, nil, ""},
		{"notation-jws-signature-manifest-empty-config-data.notary-spec-jws.json", signature.KindNotation, true, false, nil, ""},
		// Invalid as published: placeholders and a trailing comma; truncated digests.
		{"cosign-signature-manifest-sig-tag.cosign-spec.json", "", false, false, signature.ErrMalformed, "invalid character"},
		{"cosign-bundle-referrer-manifest-dsse-annotations.cosign-bundle-spec.json", "", false, false, signature.ErrMalformed, "hash"},
		// Other artifacts and indexes are skipped, not errors.
		{"oci-referrer-sbom-artifact-with-annotations.regclient-testrepo.json", "", false, false, signature.ErrNotSignature, ""},
		{"cosign-bundle-referrers-response-index-annotations.cosign-bundle-spec.json", "", false, false, signature.ErrNotSignature, ""},
		{"notation-referrers-tag-schema-index.notation-e2e-testdata.json", "", false, false, signature.ErrNotSignature, ""},
		{"notation-signed-subject-manifest.notation-e2e-testdata.json", "", false, false, signature.ErrNotSignature, ""},
		{"SOURCES.md", "", false, false, signature.ErrNotSignature, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m, err := signature.ParseManifest(readReal(t, dir, tt.file))
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.says) {
					t.Fatalf("err = %v, want %v saying %q", err, tt.err, tt.says)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind != tt.kind || (m.Subject != nil) != tt.subject || len(m.Layers) != 1 {
				t.Fatalf("parsed %+v", m)
			}
			if tt.kind == signature.KindCosign && (len(m.Layers[0].Signature) < 64 || m.Layers[0].HasRekorBundle != tt.rekor) {
				t.Errorf("cosign layer %+v: want the decoded signature and rekor=%v", m.Layers[0], tt.rekor)
			}
		})
	}
}

// Published bundles and envelopes, attached to an image in the local ECR, are parsed and
// rejected with a reason: none of them is signed by what the test trusts, or for this image.
func TestRealSignaturesRejectedOnLocalECR(t *testing.T) {
	dir := testenv.RealTestdata(t)
	e := startECR(t)
	w := newWorld(t)
	ctx := context.Background()
	empty := []byte("{}")
	attach := func(t *testing.T, subject v1.Descriptor, artifactType, layerType string, b []byte) {
		sub := subject
		e.push(t, manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: artifactType,
			Config: blob("application/vnd.oci.empty.v1+json", empty), Layers: []v1.Descriptor{blob(layerType, b)}, Subject: &sub}, "", empty, b)
	}
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	tests := []struct {
		file, artifactType, layerType string
		policy                        config.SignatureRequirement
		says                          []string
	}{
		{"sigstore-bundle-v0.3-dsse-oci-attestation.cosign-testdata.json", bundleType, bundleType, w.keyless, []string{"sigstore-bundle signature"}},
		{"sigstore-bundle-v0.3-message-signature.sigstore-go-testdata.json", bundleType, bundleType, w.keyless, []string{"sigstore-bundle signature"}},
		{"sigstore-bundle-v0.3-message-signature.sigstore-go-testdata.json", bundleType, bundleType, w.keyPolicy, []string{"signed with a certificate (keyless)"}},
		{"cosign-rekor-bundle-annotation-value.cosign-spec.json", bundleType, bundleType, w.keyless, []string{"not a valid Sigstore bundle"}},
		{"notation-jws-signature-envelope.notation-e2e-testdata.json", signature.MediaNotationSignature, signature.MediaJWS, w.notation, []string{"notation"}},
		{"notation-jws-signature-envelope.notation-go-testdata.json", signature.MediaNotationSignature, signature.MediaJWS, w.notation, []string{"notation"}},
		{"notation-jws-envelope-template.notary-spec-jws.json", signature.MediaNotationSignature, signature.MediaJWS, w.notation, []string{"notation"}},
	}
	for i, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			img := e.pushImage(t, uint64(500+i))
			attach(t, img, tt.artifactType, tt.layerType, readReal(t, dir, tt.file))
			res, err := verifier(t, false, tt.policy).Verify(ctx, e.reg, e.target(img.Digest))
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res.Reason)
			if res.Verified {
				t.Fatal("a published signature must not verify for this image")
			}
			for _, s := range append(tt.says, "not met") {
				if !strings.Contains(res.Reason, s) {
					t.Errorf("reason %q should say %q", res.Reason, s)
				}
			}
		})
	}
}

// FuzzParseManifest: no input makes the signature-manifest parser panic, and what it
// accepts is within its limits. Seeded from the published samples.
func FuzzParseManifest(f *testing.F) {
	if dir, err := realDir(); err == nil {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, p := range files {
			base := filepath.Base(p)
			if strings.HasPrefix(base, "cosign-") || strings.HasPrefix(base, "notation-") || strings.HasPrefix(base, "sigstore-bundle-") || strings.HasPrefix(base, "oci-") {
				if b, err := os.ReadFile(p); err == nil {
					f.Add(b)
				}
			}
		}
	}
	f.Add([]byte(`{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"sha256:` + strings.Repeat("0", 64) + `","size":1,"annotations":{"dev.cosignproject.cosign/signature":"AA=="}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := signature.ParseManifest(b)
		if err != nil {
			if m != nil || (!errors.Is(err, signature.ErrMalformed) && !errors.Is(err, signature.ErrNotSignature)) {
				t.Fatalf("error %v must be ErrMalformed or ErrNotSignature, with no manifest", err)
			}
			return
		}
		if len(m.Layers) == 0 || len(m.Layers) > signature.MaxLayers {
			t.Fatalf("%d layers accepted", len(m.Layers))
		}
		for _, l := range m.Layers {
			if l.Size < 0 || l.Size > signature.MaxBlobBytes || l.Digest.Algorithm != "sha256" {
				t.Fatalf("layer %+v accepted", l)
			}
			if m.Kind == signature.KindCosign && len(l.Signature) == 0 {
				t.Fatalf("cosign layer without signature accepted")
			}
		}
		_, _ = signature.ParseBundle(b)
	})
}

// realDir finds the samples for fuzz seeds without skipping the fuzz test when absent.
func realDir() (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "..", "shared", "testdata", "real")
	_, err = os.Stat(dir)
	return dir, err
}
