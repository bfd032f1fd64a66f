package sweep_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/retention"
	"github.com/regflow/regflow/shared/sweep"
)

// onFirstDelete runs change once, right after the first delete call of the sweep:
// the store moves while the sweep is between two batches.
type onFirstDelete struct {
	sweep.Registry
	change func()
	calls  int
}

func (o *onFirstDelete) DeleteImages(ctx context.Context, repo string, ds []string) (sweep.Deletion, error) {
	d, err := o.Registry.DeleteImages(ctx, repo, ds)
	if o.calls++; o.calls == 1 {
		o.change()
	}
	return d, err
}

// laterBatches are deleted digests the dry run puts after the first batch.
func laterBatches(t *testing.T, e *estate, ds ...string) {
	t.Helper()
	dry := e.run(t, e.sweeper(), e.registry(), sweep.Run{ID: "dry", Now: now, DryRun: true})
	batch := map[string]int{}
	for _, d := range dry.Registries[0].Report.Decisions {
		batch[d.Digest] = d.Batch
	}
	for _, d := range ds {
		if batch[d] < 2 {
			t.Fatalf("%s is in batch %d: the test needs it in a later one", d, batch[d])
		}
	}
}

// TestSweepRereadsProtectionsBeforeEachDelete: a rollback and a new approval request
// made while the sweep is between delete calls keep their images; each is reported
// as skipped with what protects it now, and has no deletion in its audit trail.
func TestSweepRereadsProtectionsBeforeEachDelete(t *testing.T) {
	e := newEstate(t)
	ctx := context.Background()
	// v3 (3 releases back, past keepReleases) and one expired untagged build are
	// selected; mid-sweep prod rolls back to v3 and a request opens for the build.
	rolledBack, requested := e.deleted[1600], e.deleted[1500]
	laterBatches(t, e, rolledBack, requested)
	reg := &onFirstDelete{Registry: e.registry(), change: func() {
		rel, err := e.store.GetRelease(ctx, "prod", e.repo)
		if err != nil {
			t.Error(err)
			return
		}
		next := rel.MoveTo(rolledBack, "v3", "U0CAROL", now, 5)
		if err := e.store.PutRelease(ctx, next); err != nil {
			t.Error(err)
		}
		if _, err := e.store.CreateRequest(ctx, regflow.ApprovalRequest{ID: "req-mid", Env: "prod", Repository: e.repo, Digest: requested, Status: regflow.StatusPending, CreatedAt: now}); err != nil {
			t.Error(err)
		}
	}}
	rep := e.run(t, e.sweeper(), reg, sweep.Run{ID: "mid", Now: now})
	rr := rep.Registries[0]
	got := e.present(t)
	for d, why := range map[string]string{rolledBack: "kept: prod current", requested: "kept: awaiting approval for prod"} {
		if !got[d] {
			t.Errorf("%s was deleted though %s since the selection", d, why)
		}
		var skipped *sweep.NotDeleted
		for i := range rr.Skipped {
			if rr.Skipped[i].Digest == d {
				skipped = &rr.Skipped[i]
			}
		}
		if skipped == nil || !strings.HasPrefix(skipped.Reason, why) {
			t.Errorf("%s: skipped %+v, want the reason %q", d, skipped, why)
		}
		trail, _ := e.store.Audit(ctx, e.repo+"@"+d)
		for _, a := range trail {
			if a.Action == event.ActionImageDeleted {
				t.Errorf("%s kept but audited as deleted: %+v", d, a)
			}
		}
	}
	if rr.Outcome.Skipped != 2 || gone(rr.Outcome) != len(e.deleted)-2 {
		t.Errorf("outcome %+v: want %d removed and 2 skipped", rr.Outcome, len(e.deleted)-2)
	}
	if !strings.Contains(rep.Summary(), "2 kept: protected since") {
		t.Errorf("summary %q does not say 2 were kept", rep.Summary())
	}
}

// failAt fails the n-th delete call as a whole, as BatchDeleteImage does on a 5xx
// after the SDK's retries or a dropped connection.
type failAt struct {
	sweep.Registry
	n, calls int
}

func (f *failAt) DeleteImages(ctx context.Context, repo string, ds []string) (sweep.Deletion, error) {
	if f.calls++; f.calls == f.n {
		return sweep.Deletion{}, errors.New("InternalServerError: the service is unavailable")
	}
	return f.Registry.DeleteImages(ctx, repo, ds)
}

// TestSweepAuditsWhatTheDeleteDid: a delete call that fails as a whole leaves no
// "image.deleted" entry for its images (a failure entry each instead); the batch
// retried (the same run again) deletes the rest and writes exactly one entry per
// image, and a third attempt, finding everything gone, writes nothing new.
func TestSweepAuditsWhatTheDeleteDid(t *testing.T) {
	e := newEstate(t)
	ctx := context.Background()
	reg := &failAt{Registry: e.registry(), n: 2}
	rep := e.run(t, e.sweeper(), reg, sweep.Run{ID: "r", Now: now})
	rr := rep.Registries[0]
	if len(rr.Report.Failed) != 1 {
		t.Fatalf("failed %+v: want the repository failed by its second delete call", rr.Report.Failed)
	}
	got := e.present(t)
	var stayed []string
	for _, d := range e.deleted {
		if got[d] {
			stayed = append(stayed, d)
		}
	}
	if len(stayed) == 0 {
		t.Fatal("everything went: the failure was not injected")
	}
	for _, d := range stayed {
		trail, _ := e.store.Audit(ctx, e.repo+"@"+d)
		for _, a := range trail {
			if a.Action == event.ActionImageDeleted {
				t.Fatalf("%s is still there but audited as deleted: %+v", d, a)
			}
		}
	}
	count := func() int {
		n := 0
		for _, d := range append(append([]string{}, e.deleted...), e.kept...) {
			trail, _ := e.store.Audit(ctx, e.repo+"@"+d)
			n += len(trail)
		}
		return n
	}
	// The same run again (the worker's retry): the rest goes, one image.deleted each.
	listing, err := e.registry().ListImages(ctx, e.repo)
	if err != nil {
		t.Fatal(err)
	}
	e.run(t, e.sweeper(), e.registry(), sweep.Run{ID: "r", Now: now})
	for _, d := range e.deleted {
		trail, _ := e.store.Audit(ctx, e.repo+"@"+d)
		deleted := 0
		for _, a := range trail {
			if a.Action == event.ActionImageDeleted {
				deleted++
			}
		}
		if deleted != 1 {
			t.Fatalf("%s: %d image.deleted entries, want 1: %+v", d, deleted, trail)
		}
	}
	before := count()
	// Once more from the listing the retry started with: every delete finds its image gone.
	e.run(t, e.sweeper(), &staleListing{e.registry(), listing}, sweep.Run{ID: "r", Now: now})
	if after := count(); after != before {
		t.Fatalf("a retried batch wrote %d new audit entries", after-before)
	}
}

// staleListing lists what the registry held earlier, as a retried batch's first
// attempt saw it: the deletes of images gone since answer ImageNotFound.
type staleListing struct {
	sweep.Registry
	imgs []retention.Image
}

func (s *staleListing) ListImages(context.Context, string) ([]retention.Image, error) {
	return append([]retention.Image{}, s.imgs...), nil
}
