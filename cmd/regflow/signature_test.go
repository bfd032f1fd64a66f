package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/regflow/regflow/shared/local/ocitest"
	sigverify "github.com/regflow/regflow/shared/signature"
)

// attachCosignReferrer signs digest d in dev with kp, as `cosign sign --registry-referrers-mode=oci-1-1`
// attaches a signature.
func (f *fixture) attachCosignReferrer(t *testing.T, d string, kp *sign.EphemeralKeypair) {
	t.Helper()
	h, err := v1.NewHash(d)
	if err != nil {
		t.Fatal(err)
	}
	repoRef, err := name.NewRepository(f.st.Info().Environments["dev"].Registry+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(fmt.Sprintf(`{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, repoRef.String(), d))
	sig, _, err := kp.SignData(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	desc := func(mt string, b []byte) v1.Descriptor {
		dd, n, _ := v1.SHA256(strings.NewReader(string(b)))
		return v1.Descriptor{MediaType: types.MediaType(mt), Digest: dd, Size: n}
	}
	cfg := []byte(`{}`)
	layer := desc(sigverify.MediaCosignSimpleSigning, payload)
	layer.Annotations = map[string]string{sigverify.AnnotationCosignSignature: base64.StdEncoding.EncodeToString(sig)}
	subject := v1.Descriptor{MediaType: types.DockerManifestSchema2, Digest: h}
	m := map[string]any{"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "config": desc(sigverify.MediaCosignSigArtifact, cfg),
		"layers": []v1.Descriptor{layer}, "subject": subject}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	a := ocitest.Artifact{Manifest: ocitest.Raw{Bytes: b, Type: types.OCIManifestSchema1}, Blobs: [][]byte{cfg, payload}}
	if _, err := a.Push(context.Background(), repoRef, ""); err != nil {
		t.Fatal(err)
	}
}

// `regflow verify-signature` against the local stack: prod trusts the CI key; a signed
// digest in dev would be accepted, an unsigned one refused with the reason, non-zero exit.
func TestVerifySignatureCommand(t *testing.T) {
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.GetPublicKeyPem()
	if err != nil {
		t.Fatal(err)
	}
	q, _ := json.Marshal(pub)
	f := startStackWith(t, variant(t, "    requireVerification: true\n",
		"    requireVerification: true\n    requireSignature:\n      require:\n        - {name: ci, cosignKey: {publicKey: "+string(q)+"}}\n"))
	signed := f.push(t, strings.Repeat("a", 40))
	unsigned := f.push(t, strings.Repeat("b", 40))
	f.attachCosignReferrer(t, signed, kp)

	// By default the digest is read where prod promotes from, staging, which does not have it yet.
	stdout, _, err := f.cli("verify-signature", "prod", repo+"@"+signed)
	if !errors.Is(err, errSignatureRefused) || !strings.Contains(stdout, "(read in staging)") || !strings.Contains(stdout, "does not exist") {
		t.Errorf("default --in: err %v, output:\n%s", err, stdout)
	}
	out := f.ok(t, "verify-signature", "prod", repo+"@"+signed, "--in", "dev")
	for _, want := range []string{"prod would accept shop/web@", "(read in dev)", "Signed by key SHA256:", `"ci": signed by`} {
		if !strings.Contains(out, want) {
			t.Errorf("output should say %q:\n%s", want, out)
		}
	}
	stdout, _, err = f.cli("verify-signature", "prod", repo+"@"+unsigned, "--in", "dev")
	if !errors.Is(err, errSignatureRefused) || !strings.Contains(stdout, "prod would refuse") || !strings.Contains(stdout, "no signature on") {
		t.Errorf("unsigned: err %v, output:\n%s", err, stdout)
	}
	var js signatureCheck
	f.okJSON(t, &js, "verify-signature", "prod", repo+"@"+signed, "--in", "dev")
	if !js.Status.Verified || js.Status.Kind != "cosign" || js.In != "dev" {
		t.Errorf("--json: %+v", js)
	}
	if _, _, err := f.cli("verify-signature", "staging", repo+"@"+signed); err == nil || !strings.Contains(err.Error(), "sets no requireSignature") {
		t.Errorf("an environment without a policy: %v", err)
	}
}
