// Package storetest is the one contract every store.Store adapter must pass.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

// Run exercises s against the contract. newStore must return an empty store.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("ImageRoundTrip", func(t *testing.T) { testImageRoundTrip(t, newStore(t)) })
	t.Run("AuditOnce", func(t *testing.T) { testAuditOnce(t, newStore(t)) })
	t.Run("AuditConcurrent", func(t *testing.T) { testAuditConcurrent(t, newStore(t)) })
	t.Run("Claim", func(t *testing.T) { testClaim(t, newStore(t)) })
	t.Run("ClaimConcurrent", func(t *testing.T) { testClaimConcurrent(t, newStore(t)) })
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func testImageRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.GetImage(ctx, "team/app", digest); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetImage of nothing = %v, want ErrNotFound", err)
	}
	img := regflow.Image{Repository: "team/app", Digest: digest, Tags: []string{"a", "b"}, Commit: "c0ffee", PushedAt: t0, RecordedAt: t0.Add(time.Second)}
	if err := s.PutImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetImage(ctx, "team/app", digest)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(img, got); diff != "" {
		t.Errorf("image round trip (-put +got):\n%s", diff)
	}
	img.Tags = []string{"b"}
	if err := s.PutImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetImage(ctx, "team/app", digest)
	if diff := cmp.Diff([]string{"b"}, got.Tags); diff != "" {
		t.Errorf("second PutImage must replace tags:\n%s", diff)
	}
	if _, err := s.GetImage(ctx, "team/app", "sha256:2222"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another digest must not be found: %v", err)
	}
}

func entry(subject, id string, at time.Time) regflow.AuditEntry {
	return regflow.AuditEntry{Subject: subject, ID: id, Time: at, Action: regflow.ActionTagRemoved, Actor: "tagguard", Reason: "why " + id, Details: map[string]string{"tag": "latest"}}
}

func testAuditOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	subj := "app@" + digest
	first := entry(subj, "evt-1/tag-removed", t0)
	created, err := s.AppendAudit(ctx, first)
	if err != nil || !created {
		t.Fatalf("first append = %v, %v", created, err)
	}
	dup := first
	dup.Reason = "a redelivery must not overwrite"
	created, err = s.AppendAudit(ctx, dup)
	if err != nil || created {
		t.Fatalf("duplicate append = %v, %v; want false, nil", created, err)
	}
	later := entry(subj, "evt-2/tag-removed", t0.Add(time.Minute))
	earlier := entry(subj, "evt-0/tag-removed", t0.Add(-time.Minute))
	for _, e := range []regflow.AuditEntry{later, earlier, entry("other@"+digest, "x", t0)} {
		if _, err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Audit(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]regflow.AuditEntry{earlier, first, later}, got); diff != "" {
		t.Errorf("audit trail oldest first, without other subjects or the duplicate (-want +got):\n%s", diff)
	}
	if got, _ := s.Audit(ctx, "nobody"); len(got) != 0 {
		t.Errorf("unknown subject has %d entries", len(got))
	}
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wins atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.AppendAudit(ctx, entry("app", "same", t0))
			if err != nil {
				errs <- err
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent appends of one entry reported created; want exactly 1", wins.Load())
	}
}

func testClaim(t *testing.T, s store.Store) {
	ctx := context.Background()
	ok, err := s.Claim(ctx, "alert/evt-1", t0, t0.Add(time.Hour))
	if err != nil || !ok {
		t.Fatalf("first claim = %v, %v", ok, err)
	}
	if ok, _ := s.Claim(ctx, "alert/evt-1", t0.Add(time.Minute), t0.Add(2*time.Hour)); ok {
		t.Fatal("an unexpired claim must not be taken twice")
	}
	if ok, _ := s.Claim(ctx, "alert/evt-2", t0, t0.Add(time.Hour)); !ok {
		t.Fatal("another key is free")
	}
	if ok, _ := s.Claim(ctx, "alert/evt-1", t0.Add(2*time.Hour), t0.Add(3*time.Hour)); !ok {
		t.Fatal("an expired claim can be taken again")
	}
	if err := s.Release(ctx, "alert/evt-1"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Claim(ctx, "alert/evt-1", t0.Add(2*time.Hour), t0.Add(3*time.Hour)); !ok {
		t.Fatal("a released claim can be taken again")
	}
	if err := s.Release(ctx, "never-claimed"); err != nil {
		t.Fatalf("releasing a free key is a no-op, got %v", err)
	}
}

func testClaimConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.Claim(ctx, "k", t0, t0.Add(time.Hour))
			if err != nil {
				t.Error(fmt.Errorf("claimer %d: %w", i, err))
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of 32 concurrent claims won; want exactly 1", wins.Load())
	}
}
