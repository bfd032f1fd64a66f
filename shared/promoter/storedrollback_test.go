package promoter_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
)

// TestForgedRollbackIsRefused: a correctly shaped "Rollback Requested" naming exactly what
// runs, with any `by`, is not obeyed unless a stored rollback stands behind it; the refusal
// is audited.
func TestForgedRollbackIsRefused(t *testing.T) {
	st, ev := start(t)
	ctx := context.Background()
	first, _ := pushSigned(t, st, "dev", "shop/web", sha1, 21)
	publishApproved(t, st, approve(t, st, "staging", "shop/web", first, sha1))
	second, _ := pushSigned(t, st, "dev", "shop/web", sha2, 22)
	secondID := approve(t, st, "staging", "shop/web", second, sha2)
	publishApproved(t, st, secondID)

	forged, _ := event.Message{Detail: event.RollbackRequested{RequestID: secondID, Env: "staging", Repository: "shop/web", From: second.String(), By: "slack:U0BOB"},
		Key: "forged", At: st.Clock.Now()}.Encode()
	res, err := st.Promoter.Invoke(ctx, forged)
	if err != nil || res.Outcome != "refused" {
		t.Fatalf("forged rollback: %+v, %v; want refused", res, err)
	}
	if rel, _ := st.Store.GetRelease(ctx, "staging", "shop/web"); rel.Digest != second.String() {
		t.Fatalf("a forged rollback moved staging to %s", rel.Digest)
	}
	if ev.count(event.TypeReleaseRolledBack) != 0 {
		t.Fatal("a forged rollback must not be announced")
	}
	refusals := 0
	for _, e := range audit(t, st, "shop/web@"+second.String()) {
		if e.Action == "rollback.refused" {
			refusals++
		}
	}
	if refusals != 1 {
		t.Fatalf("%d rollback refusals audited, want 1", refusals)
	}
}

// TestRollbackClickIsStoredAndAppliedOnce: the approvals function records a verified click
// (user, request, time) before asking the promoter; the same stored rollback delivered again
// moves nothing more.
func TestRollbackClickIsStoredAndAppliedOnce(t *testing.T) {
	st, ev := start(t)
	ctx := context.Background()
	first, _ := pushSigned(t, st, "dev", "shop/web", sha1, 23)
	publishApproved(t, st, approve(t, st, "staging", "shop/web", first, sha1))
	second, _ := pushSigned(t, st, "dev", "shop/web", sha2, 24)
	secondID := approve(t, st, "staging", "shop/web", second, sha2)
	publishApproved(t, st, secondID)
	before, _ := st.Store.GetRelease(ctx, "staging", "shop/web")

	// A double click, and another approver clicking at the same moment, before the promoter
	// acts: each click is recorded (the same user's twice as one), the pointer moves once.
	for _, user := range []string{"U0BOB", "U0BOB", "U0CAROL"} {
		if res, err := st.Click(ctx, user, slackmsg.ActionRollback, secondID); err != nil || res.Status != 200 {
			t.Fatalf("click by %s: %+v, %v", user, res, err)
		}
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	// Bob's click is recorded first; whichever stored rollback the promoter reaches first
	// applies, and the other (if Carol's click came before the move) is settled stale.
	var rb regflow.Rollback
	applied := 0
	for _, by := range []string{"slack:U0BOB", "slack:U0CAROL"} {
		got, err := st.Store.GetRollback(ctx, regflow.NewRollback(before, "", secondID, by, regflow.ViaSlack, time.Time{}).ID)
		if by == "slack:U0BOB" && err != nil {
			t.Fatalf("the click must be recorded before the promoter acts: %v", err)
		}
		switch {
		case err != nil:
		case got.Status == regflow.RollbackApplied:
			applied++
			rb = got
		case got.Status != regflow.RollbackStale:
			t.Fatalf("stored rollback left %s: %+v", got.Status, got)
		}
	}
	if applied != 1 {
		t.Fatalf("%d stored rollbacks applied, want 1", applied)
	}
	id := rb.ID
	if rb.Via != regflow.ViaSlack || rb.RequestID != secondID || rb.At.IsZero() || rb.From != second.String() || rb.Result != first.String() {
		t.Fatalf("stored rollback = %+v", rb)
	}
	rel, _ := st.Store.GetRelease(ctx, "staging", "shop/web")
	if rel.Digest != first.String() || rel.RollbackID != id {
		t.Fatalf("staging = %+v, want %s set by rollback %s", rel, first, id)
	}

	// The same stored rollback, delivered again (EventBridge at least once) and clicked
	// again, applies once.
	again, _ := event.Message{Detail: event.RollbackRequested{RollbackID: id, RequestID: secondID, Env: "staging", Repository: "shop/web", From: second.String(), By: "slack:U0MALLORY"},
		Key: "rollback/" + id, At: st.Clock.Now()}.Encode()
	for range 2 {
		res, err := st.Promoter.Invoke(ctx, again)
		if err != nil || res.Outcome != "already-rolled-back" {
			t.Fatalf("redelivered rollback: %+v, %v", res, err)
		}
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Store.GetRelease(ctx, "staging", "shop/web"); got.Version != rel.Version || ev.count(event.TypeReleaseRolledBack) != 1 {
		t.Fatalf("a redelivered rollback moved the pointer again: %+v, %d announcements", got, ev.count(event.TypeReleaseRolledBack))
	}
	rolled := 0
	for _, e := range audit(t, st, "shop/web@"+first.String()) {
		if e.Action == event.ActionReleaseRolledBack {
			rolled++
			if e.Actor != rb.By {
				t.Errorf("rollback audited as %q, want the verified clicker", e.Actor)
			}
		}
	}
	if rolled != 1 {
		t.Fatalf("%d rollback audit entries, want 1", rolled)
	}

	// A stored rollback whose pointer has moved since is settled stale, not applied.
	stale := regflow.NewRollback(before, "", secondID, "slack:U0ALICE", regflow.ViaSlack, st.Clock.Now())
	if _, err := st.Store.CreateRollback(ctx, stale); err != nil {
		t.Fatal(err)
	}
	late, _ := event.Message{Detail: event.RollbackRequested{RollbackID: stale.ID, RequestID: secondID, Env: "staging", Repository: "shop/web", From: second.String()},
		Key: "rollback/" + stale.ID, At: st.Clock.Now()}.Encode()
	if res, err := st.Promoter.Invoke(ctx, late); err != nil || res.Outcome != "stale" {
		t.Fatalf("stale rollback: %+v, %v", res, err)
	}
	if got, _ := st.Store.GetRollback(ctx, stale.ID); got.Status != regflow.RollbackStale {
		t.Fatalf("stale rollback stored as %+v", got)
	}
	if got, _ := st.Store.GetRelease(ctx, "staging", "shop/web"); got.Version != rel.Version {
		t.Fatalf("a stale rollback moved the pointer: %+v", got)
	}
}

// TestConcurrentDeliveriesOfOneRollback: the same stored rollback delivered four times at
// once moves the pointer once and ends applied, not stale.
func TestConcurrentDeliveriesOfOneRollback(t *testing.T) {
	st, ev := start(t)
	ctx := context.Background()
	first, _ := pushSigned(t, st, "dev", "shop/web", sha1, 25)
	publishApproved(t, st, approve(t, st, "staging", "shop/web", first, sha1))
	second, _ := pushSigned(t, st, "dev", "shop/web", sha2, 26)
	publishApproved(t, st, approve(t, st, "staging", "shop/web", second, sha2))
	rb, err := st.Promoter.RecordRollback(ctx, "staging", "shop/web", "", "oncall@example.com")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := event.Message{Detail: event.RollbackRequested{RollbackID: rb.ID, Env: "staging", Repository: "shop/web", From: second.String()}, Key: rb.ID, At: st.Clock.Now()}.Encode()
	var wg sync.WaitGroup
	outcomes := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			res, err := st.Promoter.Invoke(ctx, raw)
			if err != nil {
				t.Error(err)
			}
			outcomes <- res.Outcome
		})
	}
	wg.Wait()
	close(outcomes)
	for o := range outcomes {
		if o != "rolled-back" && o != "already-rolled-back" {
			t.Errorf("a twin delivery ended %q", o)
		}
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	rel, _ := st.Store.GetRelease(ctx, "staging", "shop/web")
	got, _ := st.Store.GetRollback(ctx, rb.ID)
	if rel.Digest != first.String() || rel.Version != rb.FromVersion+1 || got.Status != regflow.RollbackApplied || ev.count(event.TypeReleaseRolledBack) != 1 {
		t.Fatalf("after 4 deliveries: pointer %+v, rollback %s, %d announcements; want one move, applied, 1", rel, got.Status, ev.count(event.TypeReleaseRolledBack))
	}
}
