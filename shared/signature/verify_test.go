package signature_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/signature"
)

const (
	ciIssuer  = "https://token.actions.githubusercontent.com"
	ciSubject = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
)

// world is what the matrix signs with: keys and CAs made here, and the policies trusting them.
type world struct {
	key, otherKey *sign.EphemeralKeypair
	fulcio, other *testCA
	notaryCA      *testCA
	notaryKey     crypto.PrivateKey
	notaryChain   []*x509.Certificate
	keyPolicy     config.SignatureRequirement
	keyless       config.SignatureRequirement
	notation      config.SignatureRequirement
}

func newWorld(t testing.TB) *world {
	w := &world{key: keypair(t), otherKey: keypair(t), fulcio: newCA(t, "test fulcio"), other: newCA(t, "another CA"), notaryCA: newCA(t, "acme signing CA")}
	nk := ecKey(t)
	w.notaryKey = nk
	leaf := w.notaryCA.issue(t, nk.Public(), leafOpts{subject: pkix.Name{CommonName: "regflow CI", Organization: []string{"Acme"}, Country: []string{"US"}, Province: []string{"WA"}, Locality: []string{"Seattle"}}})
	w.notaryChain = []*x509.Certificate{leaf, w.notaryCA.cert}
	w.keyPolicy = config.SignatureRequirement{Name: "ci-key", CosignKey: &config.CosignKey{PublicKey: pubPEM(t, w.key)}}
	w.keyless = config.SignatureRequirement{Name: "ci-keyless", CosignKeyless: &config.CosignKeyless{
		Issuer: ciIssuer, Subject: "https://github.com/acme/app/*@refs/heads/main", TrustedRoot: trustedRoot(t, w.fulcio)}}
	policy, _ := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []map[string]any{{
		"name": "acme", "registryScopes": []string{"*"}, "signatureVerification": map[string]string{"level": "strict"},
		"trustStores": []string{"ca:acme"}, "trustedIdentities": []string{"x509.subject: CN=regflow CI, O=Acme, C=US, ST=WA, L=Seattle"}}}})
	w.notation = config.SignatureRequirement{Name: "acme-notary", Notation: &config.NotationTrust{TrustPolicy: policy, TrustStore: map[string][]string{"ca:acme": {w.notaryCA.pem()}}}}
	return w
}

func (w *world) keylessCert(t testing.TB, kp *sign.EphemeralKeypair, ca *testCA, o leafOpts) (cert, chain string) {
	if o.san == "" {
		o.san = ciSubject
	}
	if o.issuer == "" {
		o.issuer = ciIssuer
	}
	return certPEM(ca.issue(t, kp.GetPublicKey(), o)), ca.pem()
}

func verifier(t testing.TB, any bool, reqs ...config.SignatureRequirement) *signature.Verifier {
	t.Helper()
	v, err := signature.New("environments.prod.requireSignature", config.SignaturePolicy{Any: any, Require: reqs})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The matrix of issue 15 on the local ECR: each case pushes its own image, attaches what
// it names, and checks the verdict and that the reason says what was checked.
func TestVerifyMatrixOnLocalECR(t *testing.T) {
	e := startECR(t)
	w := newWorld(t)
	ctx := context.Background()
	expired := leafOpts{notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)}

	tests := []struct {
		name   string
		policy []config.SignatureRequirement
		any    bool
		// setup pushes what the case needs and returns the target.
		setup    func(t *testing.T, seed uint64) signature.Target
		verified bool
		// reason must contain each of these.
		reason []string
		kind   signature.Kind
	}{
		{"cosign key, tag form: signed passes", []config.SignatureRequirement{w.keyPolicy}, false, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			e.attachCosign(t, img, cosignSig{keypair: w.key})
			return e.target(img.Digest)
		}, true, []string{`"ci-key": signed by key SHA256:`, "tag sha256-"}, signature.KindCosign},
		{"cosign key, referrer form: signed passes", []config.SignatureRequirement{w.keyPolicy}, false, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			e.attachCosign(t, img, cosignSig{keypair: w.key, referrer: true})
			return e.target(img.Digest)
		}, true, []string{"signed by key SHA256:"}, signature.KindCosign},
		{"unsigned is blocked", []config.SignatureRequirement{w.keyPolicy}, false, func(t *testing.T, s uint64) signature.Target {
			return e.target(e.pushImage(t, s).Digest)
		}, false, []string{"no signature on sha256:", "referrers API", ".sig"}, ""},
		{"another key is blocked", []config.SignatureRequirement{w.keyPolicy}, false, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			e.attachCosign(t, img, cosignSig{keypair: w.otherKey})
			return e.target(img.Digest)
		}, false, []string{`"ci-key": not met`, "signature does not verify"}, ""},
		{"signature over another digest is blocked", []config.SignatureRequirement{w.keyPolicy}, false, func(t *testing.T, s uint64) signature.Target {
			img, other := e.pushImage(t, s), e.pushImage(t, s+1000)
			e.attachCosign(t, img, cosignSig{keypair: w.key, signs: other.Digest})
			return e.target(img.Digest)
		}, false, []string{"payload signs " + "sha256:"}, ""},
		{"tampered payload is blocked", []config.SignatureRequirement{w.keyPolicy}, false, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			e.attachCosign(t, img, cosignSig{keypair: w.key, tamperPayload: true})
			return e.target(img.Digest)
		}, false, []string{"signature does not verify"}, ""},
		{"tampered signature is blocked", []config.SignatureRequirement{w.keyPolicy}, false, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			e.attachCosign(t, img, cosignSig{keypair: w.key, tamperSig: true})
			return e.target(img.Digest)
		}, false, []string{"signature does not verify"}, ""},
		{"bundle with key passes", []config.SignatureRequirement{w.keyPolicy}, false, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			e.attachBundle(t, img, img.Digest, w.key, nil)
			return e.target(img.Digest)
		}, true, []string{"sigstore-bundle signature"}, signature.KindBundle},
		{"bundle over another digest is blocked", []config.SignatureRequirement{w.keyPolicy}, false, func(t *testing.T, s uint64) signature.Target {
			img, other := e.pushImage(t, s), e.pushImage(t, s+1000)
			e.attachBundle(t, img, other.Digest, w.key, nil)
			return e.target(img.Digest)
		}, false, []string{"not met"}, ""},
		{"keyless cosign: trusted identity passes", []config.SignatureRequirement{w.keyless}, false, func(t *testing.T, s uint64) signature.Target {
			img, kp := e.pushImage(t, s), keypair(t)
			cert, chain := w.keylessCert(t, kp, w.fulcio, leafOpts{})
			e.attachCosign(t, img, cosignSig{keypair: kp, cert: cert, chain: chain})
			return e.target(img.Digest)
		}, true, []string{"signed by " + ciSubject + " (issuer " + ciIssuer + ")"}, signature.KindCosign},
		{"keyless cosign: another identity is blocked", []config.SignatureRequirement{w.keyless}, false, func(t *testing.T, s uint64) signature.Target {
			img, kp := e.pushImage(t, s), keypair(t)
			cert, chain := w.keylessCert(t, kp, w.fulcio, leafOpts{san: "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main"})
			e.attachCosign(t, img, cosignSig{keypair: kp, cert: cert, chain: chain})
			return e.target(img.Digest)
		}, false, []string{"certificate identity does not match"}, ""},
		{"keyless cosign: another issuer is blocked", []config.SignatureRequirement{w.keyless}, false, func(t *testing.T, s uint64) signature.Target {
			img, kp := e.pushImage(t, s), keypair(t)
			cert, chain := w.keylessCert(t, kp, w.fulcio, leafOpts{issuer: "https://accounts.example"})
			e.attachCosign(t, img, cosignSig{keypair: kp, cert: cert, chain: chain})
			return e.target(img.Digest)
		}, false, []string{"certificate identity does not match"}, ""},
		{"keyless cosign: another CA is blocked", []config.SignatureRequirement{w.keyless}, false, func(t *testing.T, s uint64) signature.Target {
			img, kp := e.pushImage(t, s), keypair(t)
			cert, chain := w.keylessCert(t, kp, w.other, leafOpts{})
			e.attachCosign(t, img, cosignSig{keypair: kp, cert: cert, chain: chain})
			return e.target(img.Digest)
		}, false, []string{"does not chain to the trusted root"}, ""},
		{"keyless cosign: expired certificate is blocked", []config.SignatureRequirement{w.keyless}, false, func(t *testing.T, s uint64) signature.Target {
			img, kp := e.pushImage(t, s), keypair(t)
			cert, chain := w.keylessCert(t, kp, w.fulcio, expired)
			e.attachCosign(t, img, cosignSig{keypair: kp, cert: cert, chain: chain})
			return e.target(img.Digest)
		}, false, []string{"certificate expired at"}, ""},
		{"keyless bundle passes", []config.SignatureRequirement{w.keyless}, false, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			e.attachBundle(t, img, img.Digest, keypair(t), caProvider{t, w.fulcio, leafOpts{san: ciSubject, issuer: ciIssuer}})
			return e.target(img.Digest)
		}, true, []string{"signed by " + ciSubject}, signature.KindBundle},
		{"keyless bundle with an expired certificate is blocked", []config.SignatureRequirement{w.keyless}, false, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			o := expired
			o.san, o.issuer = ciSubject, ciIssuer
			e.attachBundle(t, img, img.Digest, keypair(t), caProvider{t, w.fulcio, o})
			return e.target(img.Digest)
		}, false, []string{"certificate expired at"}, ""},
		{"key signature does not meet a keyless requirement", []config.SignatureRequirement{w.keyless}, false, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			e.attachCosign(t, img, cosignSig{keypair: w.key})
			return e.target(img.Digest)
		}, false, []string{`"ci-keyless": not met`, "signed with a key, not with a certificate"}, ""},
		{"keyless signature does not meet a key requirement", []config.SignatureRequirement{w.keyPolicy}, false, func(t *testing.T, s uint64) signature.Target {
			img, kp := e.pushImage(t, s), keypair(t)
			cert, chain := w.keylessCert(t, kp, w.fulcio, leafOpts{})
			e.attachCosign(t, img, cosignSig{keypair: kp, cert: cert, chain: chain})
			return e.target(img.Digest)
		}, false, []string{`"ci-key": not met`, "signed with a certificate (keyless)"}, ""},
		{"notation: trusted signer passes", []config.SignatureRequirement{w.notation}, false, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			e.attachNotation(t, img, nil, w.notaryKey, w.notaryChain)
			return e.target(img.Digest)
		}, true, []string{`"acme-notary": signed by CN=regflow CI`}, signature.KindNotation},
		{"notation: another CA is blocked", []config.SignatureRequirement{w.notation}, false, func(t *testing.T, s uint64) signature.Target {
			img, kp := e.pushImage(t, s), ecKey(t)
			leaf := w.other.issue(t, kp.Public(), leafOpts{subject: pkix.Name{CommonName: "regflow CI", Organization: []string{"Acme"}, Country: []string{"US"}, Province: []string{"WA"}, Locality: []string{"Seattle"}}})
			e.attachNotation(t, img, nil, kp, []*x509.Certificate{leaf, w.other.cert})
			return e.target(img.Digest)
		}, false, []string{"notation authenticity check failed"}, ""},
		{"notation: envelope over another digest is blocked", []config.SignatureRequirement{w.notation}, false, func(t *testing.T, s uint64) signature.Target {
			img, other := e.pushImage(t, s), e.pushImage(t, s+1000)
			e.attachNotation(t, img, &other, w.notaryKey, w.notaryChain)
			return e.target(img.Digest)
		}, false, []string{"signs another artifact"}, ""},
		{"all of key and notation, only key: blocked", []config.SignatureRequirement{w.keyPolicy, w.notation}, false, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			e.attachCosign(t, img, cosignSig{keypair: w.key})
			return e.target(img.Digest)
		}, false, []string{"all of 2", `"ci-key": signed by`, `"acme-notary": not met`}, ""},
		{"one of key and notation, only notation: passes", []config.SignatureRequirement{w.keyPolicy, w.notation}, true, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			e.attachNotation(t, img, nil, w.notaryKey, w.notaryChain)
			return e.target(img.Digest)
		}, true, []string{"one of 2", `"acme-notary": signed by`}, signature.KindNotation},
		{"all of key and notation, both: passes", []config.SignatureRequirement{w.keyPolicy, w.notation}, false, func(t *testing.T, s uint64) signature.Target {
			img := e.pushImage(t, s)
			e.attachCosign(t, img, cosignSig{keypair: w.key, referrer: true})
			e.attachNotation(t, img, nil, w.notaryKey, w.notaryChain)
			return e.target(img.Digest)
		}, true, []string{`"ci-key": signed by`, `"acme-notary": signed by`}, signature.KindCosign},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.setup(t, uint64(100+i))
			res, err := verifier(t, tt.any, tt.policy...).Verify(ctx, e.reg, target)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			t.Log(res.Reason)
			if res.Verified != tt.verified {
				t.Fatalf("Verified = %v, want %v; reason: %s", res.Verified, tt.verified, res.Reason)
			}
			for _, want := range tt.reason {
				if !strings.Contains(res.Reason, want) {
					t.Errorf("reason %q should say %q", res.Reason, want)
				}
			}
			if res.Kind != tt.kind {
				t.Errorf("Kind = %q, want %q", res.Kind, tt.kind)
			}
			if tt.verified && (res.Identity == "" || !strings.HasPrefix(res.SignatureDigest, "sha256:")) {
				t.Errorf("a verified result names its identity and signature: %+v", res)
			}
			again, err := verifier(t, tt.any, tt.policy...).Verify(ctx, e.reg, target)
			if err != nil || again.Verified != res.Verified || again.Reason != res.Reason {
				t.Errorf("a second check must give the same verdict: %+v, %v", again, err)
			}
		})
	}
}

// For an index, a signature on the index digest counts, for the index and for the
// platforms it lists; a signature only on a platform covers that platform only.
func TestVerifyIndexAndPlatforms(t *testing.T) {
	e := startECR(t)
	w := newWorld(t)
	ctx := context.Background()
	v := verifier(t, false, w.keyPolicy)
	check := func(t *testing.T, target signature.Target, want bool, says string) {
		t.Helper()
		res, err := v.Verify(ctx, e.reg, target)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verified != want || !strings.Contains(res.Reason, says) {
			t.Errorf("%s: Verified = %v (want %v), reason %q should say %q", target.Digest, res.Verified, want, res.Reason, says)
		}
	}

	t.Run("signature only on the index", func(t *testing.T) {
		idx, platforms := e.pushIndex(t, 300)
		e.attachCosign(t, idx, cosignSig{keypair: w.key})
		check(t, e.target(idx.Digest), true, "signed by key")
		check(t, e.target(platforms[0].Digest, idx.Digest), true, "signed by key")
		check(t, e.target(platforms[0].Digest), false, "no signature on")
		// An index that does not list the platform lends it nothing.
		other, _ := e.pushIndex(t, 301)
		e.attachCosign(t, other, cosignSig{keypair: w.key})
		check(t, e.target(platforms[0].Digest, other.Digest), false, "no signature on")
	})
	t.Run("signature only on a platform", func(t *testing.T) {
		idx, platforms := e.pushIndex(t, 302)
		e.attachCosign(t, platforms[1], cosignSig{keypair: w.key, referrer: true})
		check(t, e.target(platforms[1].Digest), true, "signed by key")
		check(t, e.target(idx.Digest), false, "a signature on a platform does not cover the index")
		check(t, e.target(platforms[0].Digest, idx.Digest), false, "no signature on")
	})
}

func TestVerifyMissingDigest(t *testing.T) {
	e := startECR(t)
	w := newWorld(t)
	res, err := verifier(t, false, w.keyPolicy).Verify(context.Background(), e.reg,
		e.target(v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}))
	if err != nil || res.Verified || !strings.Contains(res.Reason, "does not exist") {
		t.Fatalf("a digest not in the registry: %+v, %v", res, err)
	}
}
