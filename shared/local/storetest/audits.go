package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

// testAppendAuditsNeverOverwrite: audit entries are created, never overwritten. A
// retried sweep batch appends entries with the IDs it wrote before (the first
// attempt's "image.deleted", now "already gone"): whatever was written first stays,
// and nothing new appears; entries not written before are added.
func testAppendAuditsNeverOverwrite(t *testing.T, s store.Store) {
	ctx := context.Background()
	ss := s.(store.SweepStore)
	entry := func(i int, action, reason string) regflow.AuditEntry {
		return regflow.AuditEntry{
			Subject: fmt.Sprintf("team/app@sha256:%064x", i), ID: fmt.Sprintf("run1#111111111111/us-east-1#%d", i),
			Time: t0, Action: action, Actor: "regflow/sweeper", Reason: reason, Details: map[string]string{"run": "run1"},
		}
	}
	var first, retry []regflow.AuditEntry
	for i := range 40 {
		first = append(first, entry(i, event.ActionImageDeleted, "delete: pushed 100 days ago"))
		retry = append(retry, entry(i, event.ActionImageGone, "already gone"))
	}
	if err := ss.AppendAudits(ctx, first); err != nil {
		t.Fatal(err)
	}
	// The retry also carries 5 entries the first attempt never wrote.
	for i := 40; i < 45; i++ {
		retry = append(retry, entry(i, event.ActionImageGone, "already gone"))
	}
	if err := ss.AppendAudits(ctx, retry); err != nil {
		t.Fatal(err)
	}
	for i := range 45 {
		want := first
		if i >= 40 {
			want = retry
		}
		got, err := s.Audit(ctx, want[i].Subject)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]regflow.AuditEntry{want[i]}, got); diff != "" {
			t.Fatalf("trail of entry %d after a retried append (-want +got):\n%s", i, diff)
		}
	}
	// Concurrent appends of the same entries (two deliveries of one batch) create each once.
	more := make([]regflow.AuditEntry, 30)
	for i := range more {
		more[i] = entry(100+i, event.ActionImageDeleted, "delete")
		more[i].Time = t0.Add(time.Minute)
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- ss.AppendAudits(ctx, more) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range more {
		if got, err := s.Audit(ctx, e.Subject); err != nil || len(got) != 1 {
			t.Fatalf("trail of %s: %d entries, %v", e.Subject, len(got), err)
		}
	}
}
