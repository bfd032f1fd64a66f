package storetest

import (
	"context"
	"testing"

	"github.com/regflow/regflow/shared/store"
)

// testSweepContinue: a batch that hands its rest to a continuation counts once and
// raises the total by one in the same write, so the run finishes only with the
// continuation; before the planner set the total it is refused.
func testSweepContinue(t *testing.T, s store.SweepStore) {
	ctx := context.Background()
	if _, err := s.CreateSweepRun(ctx, sweepRun("cont")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ContinueSweepBatch(ctx, "cont", "a", store.SweepCounts{Repositories: 1}); err == nil {
		t.Fatal("continued a batch of a run whose total is not set")
	}
	if _, err := s.SetSweepTotal(ctx, "cont", 2); err != nil {
		t.Fatal(err)
	}
	c := store.SweepCounts{Repositories: 3, Images: 30, Deleted: 10}
	for i, want := range []bool{true, false} {
		run, counted, err := s.ContinueSweepBatch(ctx, "cont", "a", c)
		if err != nil || counted != want || run.Total != 3 || run.Done() != 1 || run.Repositories != 3 {
			t.Fatalf("continue #%d: counted %v (want %v), total %d, done %d, repositories %d, %v", i+1, counted, want, run.Total, run.Done(), run.Repositories, err)
		}
	}
	for _, b := range []string{"b", "a+1"} {
		run, counted, err := s.CompleteSweepBatch(ctx, "cont", b, c)
		if err != nil || !counted {
			t.Fatalf("complete %s: %v %v", b, counted, err)
		}
		if finished := b == "a+1"; run.Finished() != finished {
			t.Fatalf("after %s: finished %v, want %v (%d of %d)", b, run.Finished(), finished, run.Done(), run.Total)
		}
	}
	run, err := s.GetSweepRun(ctx, "cont")
	if err != nil || run.Images != 90 || run.Deleted != 30 || run.Total != 3 {
		t.Fatalf("run %+v, %v: want 3 batches adding to 90 images", run, err)
	}
}
