package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

type published struct{ types []string }

func (p *published) Publish(_ context.Context, m event.Message) error {
	p.types = append(p.types, m.DetailType())
	return nil
}

// TestFunctionsKeepToTheirRights: inside a function's invocation the composition root
// refuses what IAM refuses that function in AWS (another function's detail-types, another
// function's item kinds), so the local stack and the tests fail where AWS would. Outside
// any function (the CLI, under the operator's own credentials) nothing is refused.
func TestFunctionsKeepToTheirRights(t *testing.T) {
	s, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pub := &published{}
	st, p := app.Rights(s, pub)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	const d = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	approved := event.PromotionDecision{RequestID: "req-1", Env: "prod", Repository: "app", Digest: d, Decision: regflow.StatusApproved}
	// Stated here, not taken from the code under test.
	cases := []struct {
		name, fn string
		do       func(ctx context.Context) error
		allowed  bool
	}{
		{"tagguard records an image", "tagguard", func(ctx context.Context) error {
			return st.PutImage(ctx, regflow.Image{Repository: "app", Digest: d, PushedAt: t0})
		}, true},
		{"tagguard records a scan", "tagguard", func(ctx context.Context) error {
			return st.PutScan(ctx, regflow.Scan{Env: "dev", Repository: "app", Digest: d})
		}, false},
		{"tagguard opens a request", "tagguard", func(ctx context.Context) error {
			_, err := st.CreateRequest(ctx, regflow.ApprovalRequest{ID: "req-x", Env: "prod", Repository: "app", Digest: d, Status: regflow.StatusPending, CreatedAt: t0})
			return err
		}, false},
		{"scangate records a verification", "scangate", func(ctx context.Context) error {
			return st.PutVerification(ctx, regflow.Verification{Env: "staging", Repository: "app", Digest: d, Passed: true, By: "ci"})
		}, true},
		{"scangate records an image", "scangate", func(ctx context.Context) error {
			return st.PutImage(ctx, regflow.Image{Repository: "app", Digest: d, PushedAt: t0})
		}, false},
		{"approvals moves a release pointer", "approvals", func(ctx context.Context) error {
			return st.PutRelease(ctx, regflow.Release{Env: "prod", Repository: "app", Digest: d, Version: 1})
		}, false},
		{"promoter moves a release pointer", "promoter", func(ctx context.Context) error {
			return st.PutRelease(ctx, regflow.Release{Env: "prod", Repository: "app", Digest: d, Version: 1})
		}, true},
		{"sweeper writes audit", "sweeper", func(ctx context.Context) error {
			return st.AppendAudits(ctx, []regflow.AuditEntry{{Subject: "app@" + d, ID: "s1", Time: t0, Action: "x", Actor: "sweeper"}})
		}, true},
		{"sweepworker opens a request", "sweepworker", func(ctx context.Context) error {
			_, err := st.CreateRequest(ctx, regflow.ApprovalRequest{ID: "req-y", Env: "prod", Repository: "app", Digest: d, Status: regflow.StatusPending, CreatedAt: t0})
			return err
		}, false},
		{"approvals continues a sweep batch", "approvals", func(ctx context.Context) error {
			_, _, err := st.ContinueSweepBatch(ctx, "r1", "b1", store.SweepCounts{})
			return err
		}, false},
		{"tagguard records a rollback", "tagguard", func(ctx context.Context) error {
			_, err := st.CreateRollback(ctx, regflow.NewRollback(regflow.Release{Env: "prod", Repository: "app", Digest: d, Previous: []string{"sha256:prev"}, Version: 2}, "", "", "U0ALICE", regflow.ViaCLI, t0))
			return err
		}, false},
		{"approvals records a rollback", "approvals", func(ctx context.Context) error {
			_, err := st.CreateRollback(ctx, regflow.NewRollback(regflow.Release{Env: "prod", Repository: "app", Digest: d, Previous: []string{"sha256:prev"}, Version: 2}, "", "", "U0ALICE", regflow.ViaCLI, t0))
			return err
		}, true},
		{"promoter caches manifest facts", "promoter", func(ctx context.Context) error {
			return st.PutManifestInfos(ctx, []store.ManifestInfo{{Digest: d}})
		}, false},
		{"approvals publishes an approval", "approvals", func(ctx context.Context) error {
			return p.Publish(ctx, event.Message{Detail: approved, Key: "k", At: t0})
		}, true},
		{"tagguard publishes an approval", "tagguard", func(ctx context.Context) error {
			return p.Publish(ctx, event.Message{Detail: approved, Key: "k", At: t0})
		}, false},
		{"promoter asks itself to roll back", "promoter", func(ctx context.Context) error {
			return p.Publish(ctx, event.Message{Detail: event.RollbackRequested{RequestID: "req-1", Env: "prod", Repository: "app", From: d, By: "x"}, Key: "k", At: t0})
		}, false},
		{"scangate publishes anything", "scangate", func(ctx context.Context) error {
			return p.Publish(ctx, event.Message{Detail: event.TagPolicyViolation{}, Key: "k", At: t0})
		}, false},
		{"the CLI moves a pointer", "", func(ctx context.Context) error {
			return st.PutRelease(ctx, regflow.Release{Env: "staging", Repository: "app", Digest: d, Version: 1})
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			if c.fn != "" {
				ctx = app.As(ctx, c.fn)
			}
			err := c.do(ctx)
			switch {
			case c.allowed && err != nil:
				t.Fatalf("refused: %v", err)
			case !c.allowed && !errors.Is(err, app.ErrNotPermitted):
				t.Fatalf("got %v, want ErrNotPermitted", err)
			}
		})
	}
}
