package scangate_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/regflow"
)

// A failed verification in an environment (a test run, or an ECS deployment the circuit
// breaker rolled back) keeps the next environment's approval closed even where that
// environment does not wait for verifications: the scan that arrives after it opens the
// request blocked, not pending.
func TestFailedVerificationBlocksWithoutRequireVerification(t *testing.T) {
	for _, c := range []struct {
		name   string
		passed *bool
		want   string
	}{
		{"failed", new(false), regflow.StatusBlocked},
		{"passed", new(true), regflow.StatusPending},
		{"none", nil, regflow.StatusPending},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			cfg, err := config.Load(filepath.Join("..", "..", "regflow.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			prod := cfg.Environments["prod"]
			prod.RequireVerification = false
			cfg.Environments["prod"] = prod
			st, err := localstack.Start(ctx, localstack.Options{Config: cfg, Dir: t.TempDir(),
				Clock: localecr.FixedClock(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			img, err := random.Image(512, 1)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := img.Digest()
			digest := d.String()
			repo, _ := name.NewRepository(st.Info().Environments["staging"].Registry+"/shop/web", name.Insecure)
			// Promoted into staging: the copy, its tag and the pointer (custody).
			if err := st.Store.PutRelease(ctx, regflow.Release{Env: "staging", Repository: "shop/web", Digest: digest, Tag: sha, By: "U0BOB", At: st.Clock.Now(), Version: 1}); err != nil {
				t.Fatal(err)
			}
			id := regflow.RequestID("prod", "shop/web", digest)
			if c.passed != nil {
				if _, err := st.Gate.Verify(ctx, regflow.Verification{Env: "staging", Repository: "shop/web", Digest: digest, Passed: *c.passed, By: "regflow/ecs-deployment", At: st.Clock.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			// Then the copy and its scan.
			if err := remote.Write(repo.Tag(sha), img); err != nil {
				t.Fatal(err)
			}
			if err := st.Settle(ctx); err != nil {
				t.Fatal(err)
			}
			if err := st.ECR["staging"].InjectScan("shop/web", digest); err != nil {
				t.Fatal(err)
			}
			if err := st.Settle(ctx); err != nil {
				t.Fatal(err)
			}
			if r, err := st.Store.GetRequest(ctx, id); err != nil || r.Status != c.want {
				t.Fatalf("prod's request: %+v, %v; want %s", r, err, c.want)
			}
		})
	}
}
