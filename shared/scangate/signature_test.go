package scangate_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/signature/ocisig"
)

// startSigned runs the local stack with staging requiring a cosign signature by key.
func startSigned(t *testing.T, key *ocitest.CosignKey) *localstack.Stack {
	t.Helper()
	pub, err := key.PublicPEM()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "ci.pub")
	if err := os.WriteFile(keyFile, []byte(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "regflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(string(raw), "    gate: {CRITICAL: 0}\n", "    gate: {CRITICAL: 0}\n    requireSignature:\n      require:\n        - name: ci\n          cosignKey: {publicKey: "+keyFile+"}\n", 1)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Environments["staging"].RequireSignature == nil {
		t.Fatal("staging requires no signature: regflow.yaml changed shape")
	}
	st, err := localstack.Start(context.Background(), localstack.Options{Config: cfg, Dir: t.TempDir(),
		Clock: localecr.FixedClock(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// Signed-only promotion: the gate records who signed and shows it; an unsigned build or one
// signed by another key is blocked with the reason; the promoter checks again before the
// copy, and the copy in staging still verifies.
func TestSignedOnlyPromotion(t *testing.T) {
	ctx := context.Background()
	ci, err := ocitest.NewCosignKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ocitest.NewCosignKey()
	st := startSigned(t, ci)
	repo, _ := name.NewRepository(st.Info().Environments["dev"].Registry+"/shop/web", name.Insecure)
	build := func(tag string, signer *ocitest.CosignKey) string {
		t.Helper()
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(repo.Tag(tag), img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		if signer != nil {
			if _, err := signer.Sign(ctx, repo, d); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.ECR["dev"].InjectScan("shop/web", d.String()); err != nil {
			t.Fatal(err)
		}
		if err := st.Settle(ctx); err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	signed := build(strings.Repeat("1", 40), ci)
	unsigned := build(strings.Repeat("2", 40), nil)
	foreign := build(strings.Repeat("3", 40), other)

	r := request(t, st, "staging", signed)
	if r.Status != regflow.StatusPending || r.Signature == nil || !r.Signature.Verified || r.Signature.Identity == "" {
		t.Fatalf("signed build: %s (%s), signature %+v", r.Status, r.Reason, r.Signature)
	}
	found := false
	for _, m := range messages(st, "C0STAGING") {
		found = found || strings.Contains(slacklocal.Render(m, 200), "Signed by "+r.Signature.Identity)
	}
	if !found {
		t.Fatalf("the approval message does not say who signed")
	}
	for name, d := range map[string]string{"unsigned": unsigned, "signed by another key": foreign} {
		r := request(t, st, "staging", d)
		if r.Status != regflow.StatusBlocked || r.Signature == nil || r.Signature.Verified || !strings.Contains(r.Reason, "Signature not verified") {
			t.Errorf("%s build: %s (%s), signature %+v; want blocked naming the signature", name, r.Status, r.Reason, r.Signature)
		}
	}

	// The promoter checks again: an approval of the unsigned build (however it came about)
	// ends failed, nothing copied; the signed one is copied and still verifies in staging.
	forged := regflow.ApprovalRequest{ID: regflow.RequestID("staging", "shop/web", unsigned), Env: "staging", Repository: "shop/web", Digest: unsigned,
		Tag: strings.Repeat("2", 40), Status: regflow.StatusApproved, Required: 1, Approvals: []regflow.Vote{{User: "U0BOB", At: st.Clock.Now()}},
		CreatedAt: st.Clock.Now(), ExpiresAt: st.Clock.Now().Add(time.Hour), Version: 99}
	cur := request(t, st, "staging", unsigned)
	forged.Version = cur.Version + 1
	if err := st.Store.UpdateRequest(ctx, forged); err != nil {
		t.Fatal(err)
	}
	if res, err := st.Promoter.Promote(ctx, forged.ID); err != nil || res.Outcome != "failed" || !strings.Contains(res.Reason, "signature") {
		t.Fatalf("promoting the unsigned build: %+v, %v; want failed for its signature", res, err)
	}
	if _, err := st.Registry("staging").DescribeImage(ctx, "shop/web", unsigned); err == nil {
		t.Fatal("the unsigned build was copied")
	}
	approved := request(t, st, "staging", signed)
	approved.Status, approved.Approvals, approved.Version = regflow.StatusApproved, []regflow.Vote{{User: "U0BOB", At: st.Clock.Now()}}, approved.Version+1
	if err := st.Store.UpdateRequest(ctx, approved); err != nil {
		t.Fatal(err)
	}
	if res, err := st.Promoter.Promote(ctx, approved.ID); err != nil || res.Outcome != "promoted" {
		t.Fatalf("promoting the signed build: %+v, %v", res, err)
	}
	stagingRepo, _ := name.NewRepository(st.Info().Environments["staging"].Registry+"/shop/web", name.Insecure)
	if _, err := remote.Head(stagingRepo.Tag("sha256-" + strings.TrimPrefix(signed, "sha256:") + ".sig")); err != nil {
		t.Fatalf("the signature was not copied with the image: %v", err)
	}
	v, err := ocisig.Checker(st.Config, localstack.Registries(st.Config, st.Info().Environments))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.VerifySignature(ctx, regflow.SignatureCheck{Env: "staging", Repository: "shop/web", Digest: signed}); err != nil || !got.Verified {
		t.Fatalf("staging's copy does not verify: %+v, %v", got, err)
	}
}

func request(t *testing.T, st *localstack.Stack, env, digest string) regflow.ApprovalRequest {
	t.Helper()
	r, err := st.Store.GetRequest(context.Background(), regflow.RequestID(env, "shop/web", digest))
	if err != nil {
		t.Fatalf("%s's request for %s: %v", env, digest, err)
	}
	return r
}
