package regflow_test

import (
	"testing"
	"time"

	"github.com/regflow/regflow/shared/regflow"
)

func TestReleaseSupersedes(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	req := func(id string, decided time.Time) regflow.ApprovalRequest {
		return regflow.ApprovalRequest{ID: id, Digest: "sha256:" + id, DecidedAt: decided, CreatedAt: t0.Add(-time.Hour)}
	}
	holding := regflow.Release{}.Promote(req("b", t0), "U0BOB", t0, 3)
	rolledBack := holding.MoveTo("sha256:older", "", "U0CAROL", t0.Add(time.Hour), 3)
	for _, tc := range []struct {
		name string
		rel  regflow.Release
		req  regflow.ApprovalRequest
		want bool
	}{
		{"an empty pointer holds nothing", regflow.Release{}, req("a", t0), false},
		{"a pointer from before approvals were recorded", regflow.Release{Digest: "sha256:x", Version: 4}, req("a", t0), false},
		{"an older approval", holding, req("a", t0.Add(-time.Second)), true},
		{"a newer approval", holding, req("c", t0.Add(time.Second)), false},
		{"the same instant is not older", holding, req("a", t0), false},
		{"the approval it holds", holding, req("b", t0), false},
		{"a rollback keeps the newest approval", rolledBack, req("a", t0.Add(-time.Second)), true},
		{"undecided requests order by creation", holding, regflow.ApprovalRequest{ID: "a", CreatedAt: t0.Add(-time.Minute)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rel.Supersedes(tc.req.Mark()); got != tc.want {
				t.Fatalf("Supersedes = %v, want %v (pointer %+v)", got, tc.want, tc.rel)
			}
		})
	}
	if rolledBack.ApprovalID != "b" || rolledBack.RollbackID != "" {
		t.Fatalf("a rollback must keep the approval mark: %+v", rolledBack)
	}
}
