package main

import (
	"context"
	"testing"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
)

// TestRollbackIsRecordedWithTheCaller: `regflow rollback --local` records a stored rollback
// with the caller's identity before the promoter applies it, and applies it once.
func TestRollbackIsRecordedWithTheCaller(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local stack")
	}
	f := startStack(t)
	ctx := context.Background()
	shaA, shaB := "a1a1a1a1a1b2b2b2b2b2c3c3c3c3c3d4d4d4d4d4", "e5e5e5e5e5f6f6f6f6f60707070707181818181a"
	digA, digB := f.push(t, shaA), f.push(t, shaB)
	f.promote(t, f.scan(t, digA), "U0ALICE")
	f.promote(t, f.scan(t, digB), "U0ALICE")

	var out rolledBack
	f.okJSON(t, &out, "rollback", "staging", repo, "--as", "oncall@example.com")
	if out.Rollback == "" || out.To != digA {
		t.Fatalf("rollback --json: %+v; want the stored rollback's id and %s", out, digA)
	}
	rb, err := f.st.Store.GetRollback(ctx, out.Rollback)
	if err != nil {
		t.Fatalf("the CLI must record its rollback: %v", err)
	}
	if rb.By != "oncall@example.com" || rb.Via != regflow.ViaCLI || rb.From != digB || rb.Status != regflow.RollbackApplied || rb.Result != digA {
		t.Fatalf("stored rollback = %+v", rb)
	}
	// Delivering that stored rollback again (a bus redelivery) moves nothing.
	f.settle(t)
	n := len(f.events(event.TypeReleaseRolledBack))
	raw, _ := event.Message{Detail: event.RollbackRequested{RollbackID: rb.ID, Env: "staging", Repository: repo, From: digB, By: "mallory"}, Key: "again", At: f.st.Clock.Now()}.Encode()
	if res, err := f.st.Promoter.Invoke(ctx, raw); err != nil || res.Outcome != "already-rolled-back" {
		t.Fatalf("redelivery: %+v, %v", res, err)
	}
	f.settle(t)
	if rel, _ := f.st.Store.GetRelease(ctx, "staging", repo); rel.Digest != digA || len(f.events(event.TypeReleaseRolledBack)) != n {
		t.Fatalf("a redelivered stored rollback moved %s again", rel.Digest)
	}
}
