package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

// RunRollbacks exercises an adapter's store.RollbackStore, and the release pointer's
// approval mark, against the contract. newAny must return an empty store that also
// implements store.RollbackStore.
func RunRollbacks(t *testing.T, newAny func(t *testing.T) store.Store) {
	newStore := func(t *testing.T) store.RollbackStore {
		s := newAny(t)
		rs, ok := s.(store.RollbackStore)
		if !ok {
			t.Fatalf("%T does not implement store.RollbackStore", s)
		}
		return rs
	}
	t.Run("RollbackOnce", func(t *testing.T) { testRollbackOnce(t, newStore(t)) })
	t.Run("RollbackSettledOnce", func(t *testing.T) { testRollbackSettledOnce(t, newStore(t)) })
	t.Run("ReleaseApprovalMark", func(t *testing.T) { testReleaseMark(t, newAny(t)) })
}

func rollbackOf() regflow.Rollback {
	cur := regflow.Release{Env: "prod", Repository: "team/app", Digest: digest, Version: 3}
	return regflow.NewRollback(cur, "", "req-1", "slack:U0BOB", regflow.ViaSlack, t0)
}

func testRollbackOnce(t *testing.T, s store.RollbackStore) {
	ctx := context.Background()
	rb := rollbackOf()
	if _, err := s.GetRollback(ctx, rb.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRollback of nothing = %v, want ErrNotFound", err)
	}
	created, err := s.CreateRollback(ctx, rb)
	if err != nil || !created {
		t.Fatalf("create = %v, %v", created, err)
	}
	again := rb
	again.By = "slack:U0MALLORY"
	if created, err := s.CreateRollback(ctx, again); err != nil || created {
		t.Fatalf("second create = %v, %v; want false, nil", created, err)
	}
	got, err := s.GetRollback(ctx, rb.ID)
	rb.Version = 1
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rb, got); diff != "" {
		t.Fatalf("rollback round trip (-want +got); the first record must stand:\n%s", diff)
	}
	stale := got
	if err := s.UpdateRollback(ctx, stale); err == nil {
		t.Fatal("an update that does not advance the version must fail")
	}
}

// testRollbackSettledOnce: many workers settle the same rollback; exactly one write wins.
func testRollbackSettledOnce(t *testing.T, s store.RollbackStore) {
	ctx := context.Background()
	rb := rollbackOf()
	if _, err := s.CreateRollback(ctx, rb); err != nil {
		t.Fatal(err)
	}
	rb.Version = 1
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			err := s.UpdateRollback(ctx, rb.Settle(regflow.RollbackApplied, "sha256:prev", "", t0.Add(time.Minute)))
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, regflow.ErrConflict):
				t.Errorf("update = %v, want nil or ErrConflict", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d settles won, want 1", won.Load())
	}
	got, _ := s.GetRollback(ctx, rb.ID)
	if got.Status != regflow.RollbackApplied || got.Version != 2 || !got.AppliedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("settled rollback = %+v", got)
	}
}

func testReleaseMark(t *testing.T, s store.Store) {
	ctx := context.Background()
	req := regflow.ApprovalRequest{ID: "req-1", Digest: digest, Tag: "v1", DecidedAt: t0}
	rel := regflow.Release{Env: "prod", Repository: "team/app"}.Promote(req, "U0BOB", t0, 3)
	rel.RollbackID = "rb-1"
	if err := s.PutRelease(ctx, rel); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRelease(ctx, "prod", "team/app")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rel, got); diff != "" {
		t.Fatalf("release round trip (-put +got):\n%s", diff)
	}
}
