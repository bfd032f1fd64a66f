package signature_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ocicopy"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/signature"
)

// The checker behind regflow.SignatureVerifier: prod requires the CI key and notation (one
// of them); a digest copied from dev to prod with ocicopy still verifies in prod, and a
// signature swapped after a check is seen by the next check (the promoter's re-check).
func TestCheckerAfterCopyBetweenLocalECRs(t *testing.T) {
	dev, prod := startECR(t), startECR(t)
	w := newWorld(t)
	ctx := context.Background()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
promotionPath: [dev, prod]
environments:
  dev: {account: "111111111111"}
  prod:
    account: "333333333333"
    promotionRole: arn:aws:iam::333333333333:role/promote
    externalId: xid
    requireSignature:
      any: true
      require:
        - {name: ci, cosignKey: {publicKey: %q}}
        - name: acme-notary
          notation: {trustPolicy: %s, trustStore: {"ca:acme": [%q]}}
`, pubPEM(t, w.key), w.notation.Notation.TrustPolicy, w.notaryCA.pem())))
	if err != nil {
		t.Fatal(err)
	}
	envs := map[string]*ecrEnv{"dev": dev, "prod": prod}
	checker, err := signature.NewChecker(cfg, func(_ context.Context, env string) (signature.Registry, string, error) {
		return envs[env].reg, envs[env].srv.Host(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var _ regflow.SignatureVerifier = checker

	img := dev.pushImage(t, 700)
	dev.attachCosign(t, img, cosignSig{keypair: w.key})
	dev.attachNotation(t, img, nil, w.notaryKey, w.notaryChain)
	unsigned := dev.pushImage(t, 701)

	auth := func(e *ecrEnv) authn.Authenticator {
		u, p := e.srv.Credentials()
		return authn.FromConfig(authn.AuthConfig{Username: u, Password: p})
	}
	for _, d := range []string{img.Digest.String(), unsigned.Digest.String()} {
		if _, err := ocicopy.Copy(ctx, dev.repo.Digest(d).String(), prod.repo.String(),
			ocicopy.WithAuth(dev.srv.Host(), auth(dev)), ocicopy.WithAuth(prod.srv.Host(), auth(prod))); err != nil {
			t.Fatalf("copy %s: %v", d, err)
		}
	}

	check := func(env, in, d string) regflow.SignatureStatus {
		t.Helper()
		st, err := checker.VerifySignature(ctx, regflow.SignatureCheck{Env: env, In: in, Repository: "team/app", Digest: d})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := check("dev", "", img.Digest.String()); st.Required || st.Verified {
		t.Errorf("dev requires no signature: %+v", st)
	}
	// The gate's and the promoter's pre-copy check: prod's policy, dev's registry.
	if st := check("prod", "dev", img.Digest.String()); !st.Verified {
		t.Fatalf("signed in dev for prod: %+v", st)
	}
	if st := check("prod", "dev", unsigned.Digest.String()); st.Verified || !strings.Contains(st.Reason, "no signature on") {
		t.Fatalf("unsigned in dev is blocked for prod: %+v", st)
	}
	st := check("prod", "", img.Digest.String())
	if !st.Required || !st.Verified || st.Kind != "cosign" || !strings.HasPrefix(st.Identity, "key SHA256:") || !strings.HasPrefix(st.SignatureDigest, "sha256:") {
		t.Fatalf("the copy in prod must still verify: %+v", st)
	}
	if !strings.Contains(st.Reason, `"acme-notary": signed by CN=regflow CI`) {
		t.Errorf("both signatures travelled with the copy; reason %q", st.Reason)
	}
	if st := check("prod", "prod", unsigned.Digest.String()); !st.Required || st.Verified || !strings.Contains(st.Reason, "no signature on") {
		t.Errorf("an unsigned copy is blocked with a reason: %+v", st)
	}

	// Swap the cosign signature in prod for one by another key, and drop the notation
	// signature's trust by checking against key-only: the next check refuses.
	prod.attachCosign(t, img, cosignSig{keypair: w.otherKey})
	keyOnly := *cfg
	keyOnly.Environments = map[string]config.Environment{"prod": cfg.Environments["prod"]}
	p := *keyOnly.Environments["prod"].RequireSignature
	p.Any, p.Require = false, p.Require[:1]
	env := keyOnly.Environments["prod"]
	env.RequireSignature = &p
	keyOnly.Environments["prod"] = env
	strict, err := signature.NewChecker(&keyOnly, func(_ context.Context, env string) (signature.Registry, string, error) {
		return envs[env].reg, envs[env].srv.Host(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := strict.VerifySignature(ctx, regflow.SignatureCheck{Env: "prod", Repository: "team/app", Digest: img.Digest.String()})
	if err != nil {
		t.Fatal(err)
	}
	if got.Verified || !strings.Contains(got.Reason, "signature does not verify") {
		t.Errorf("a swapped signature must be refused at the next check: %+v", got)
	}
}

// A policy the config accepts but a library refuses fails NewChecker, naming its field.
func TestCheckerNamesTheFieldALibraryRefuses(t *testing.T) {
	w := newWorld(t)
	cfg, err := config.Parse([]byte(`
promotionPath: [dev, prod]
environments:
  dev: {account: "111111111111"}
  prod:
    account: "333333333333"
    promotionRole: arn:aws:iam::333333333333:role/promote
    externalId: xid
    requireSignature:
      require:
        - cosignKey: {kmsKey: "arn:aws:kms:us-east-1:333333333333:alias/ci"}
        - notation:
            trustPolicy: {version: "1.0", trustPolicies: [{name: a, registryScopes: ["not a scope"], signatureVerification: {level: strict}, trustStores: ["ca:acme"], trustedIdentities: ["*"]}]}
            trustStore: {"ca:acme": [` + fmt.Sprintf("%q", w.notaryCA.pem()) + `]}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = signature.NewChecker(cfg, nil)
	for _, want := range []string{
		"environments.prod.requireSignature.require[0].cosignKey.kmsKey: KMS keys are not read yet",
		"environments.prod.requireSignature.require[1].notation.trustPolicy: notation refuses it",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v should say %q", err, want)
		}
	}
}
