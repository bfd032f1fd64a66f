package sweep_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/retention"
	"github.com/regflow/regflow/shared/sweep"
)

func TestExpiredPendingRequestsProtectNothing(t *testing.T) {
	ctx := context.Background()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for _, r := range []regflow.ApprovalRequest{
		{ID: "open", Env: "prod", Repository: "app", Digest: "sha256:open", Status: regflow.StatusPending, ExpiresAt: at.Add(time.Hour)},
		{ID: "stale", Env: "prod", Repository: "app", Digest: "sha256:stale", Status: regflow.StatusPending, ExpiresAt: at.Add(-time.Hour)},
		{ID: "waiting", Env: "prod", Repository: "app", Digest: "sha256:waiting", Status: regflow.StatusWaiting, ExpiresAt: at.Add(-time.Hour)},
	} {
		if _, err := st.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	prot, err := sweep.LoadProtections(ctx, st, at)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, p := range prot["app"].Pending {
		got[p.Digest] = true
	}
	if !got["sha256:open"] || got["sha256:stale"] || !got["sha256:waiting"] {
		t.Fatalf("protected = %v: want the open and the waiting request, not the expired pending one", got)
	}
}

// A promotion that failed for good keeps its digest for the configured grace (someone may
// look into it and approve it again), then stops protecting it; both reads agree.
func TestFailedRequestsProtectForTheirGrace(t *testing.T) {
	ctx := context.Background()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for _, r := range []regflow.ApprovalRequest{
		{ID: "recent", Env: "prod", Repository: "app", Digest: "sha256:recent", Status: regflow.StatusFailed, ProtectedUntil: at.Add(time.Hour)},
		{ID: "old", Env: "prod", Repository: "app", Digest: "sha256:old", Status: regflow.StatusFailed, ProtectedUntil: at.Add(-time.Hour)},
	} {
		if _, err := st.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	prot, err := sweep.LoadProtections(ctx, st, at)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := sweep.RepositoryProtections(ctx, st, []string{"prod"}, "app", at)
	if err != nil {
		t.Fatal(err)
	}
	for name, pending := range map[string][]retention.Pending{"LoadProtections": prot["app"].Pending, "RepositoryProtections": fresh.Pending} {
		got := map[string]bool{}
		for _, p := range pending {
			got[p.Digest] = true
		}
		if !got["sha256:recent"] || got["sha256:old"] {
			t.Errorf("%s: protected = %v, want the failed request within its grace only", name, got)
		}
	}
}
