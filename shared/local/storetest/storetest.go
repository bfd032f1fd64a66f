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

	"github.com/regflow/regflow/shared/event"
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
	RunWorkflow(t, newStore)
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
	return regflow.AuditEntry{Subject: subject, ID: id, Time: at, Action: event.ActionTagRemoved, Actor: "tagguard", Reason: "why " + id, Details: map[string]string{"tag": "latest"}}
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
	// A short lease renewed after the effect keeps the key long.
	if ok, _ := s.Claim(ctx, "renewed", t0, t0.Add(time.Minute)); !ok {
		t.Fatal("claim renewed")
	}
	if err := s.Renew(ctx, "renewed", t0.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Claim(ctx, "renewed", t0.Add(time.Hour), t0.Add(2*time.Hour)); ok {
		t.Fatal("a renewed claim must outlive its first lease")
	}
	testOnce(t, s)
}

func testOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	runs := 0
	fail := errors.New("slack is down")
	if ran, err := store.Once(ctx, s, "once", t0, time.Minute, 24*time.Hour, func() error { runs++; return fail }); ran || !errors.Is(err, fail) {
		t.Fatalf("failed effect: ran=%v err=%v", ran, err)
	}
	if ran, err := store.Once(ctx, s, "once", t0, time.Minute, 24*time.Hour, func() error { runs++; return nil }); !ran || err != nil {
		t.Fatalf("retry after a failure must run: ran=%v err=%v", ran, err)
	}
	if ran, _ := store.Once(ctx, s, "once", t0.Add(time.Hour), time.Minute, 24*time.Hour, func() error { runs++; return nil }); ran {
		t.Fatal("a done effect must not run again within keep")
	}
	// A worker that died mid-effect holds only the lease.
	if ok, _ := s.Claim(ctx, "crashed", t0, t0.Add(time.Minute)); !ok {
		t.Fatal("claim crashed")
	}
	if ran, _ := store.Once(ctx, s, "crashed", t0.Add(2*time.Minute), time.Minute, 24*time.Hour, func() error { runs++; return nil }); !ran {
		t.Fatal("after the lease, a retry must take over a crashed worker's effect")
	}
	if runs != 3 {
		t.Fatalf("effect ran %d times, want 3", runs)
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

// RunWorkflow exercises approval requests, release pointers and verifications.
func RunWorkflow(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("RequestLifecycle", func(t *testing.T) { testRequestLifecycle(t, newStore(t)) })
	t.Run("RequestConcurrentApprovals", func(t *testing.T) { testRequestConcurrent(t, newStore(t)) })
	t.Run("Releases", func(t *testing.T) { testReleases(t, newStore(t)) })
	t.Run("Verification", func(t *testing.T) { testVerification(t, newStore(t)) })
	t.Run("Scan", func(t *testing.T) { testScan(t, newStore(t)) })
	t.Run("ChangeRequestConcurrent", func(t *testing.T) { testChangeRequest(t, newStore(t)) })
	t.Run("ChangeReleaseConcurrent", func(t *testing.T) { testChangeRelease(t, newStore(t)) })
}

// testChangeRelease: concurrent pointer moves through store.Change all land, starting from
// a pointer never written.
func testChangeRelease(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if _, err := store.Change(ctx, store.ReleaseItem(s, "prod", "app"), func(cur regflow.Release) (regflow.Release, bool, error) {
				next := cur
				next.Version++
				next.Previous = append([]string{fmt.Sprintf("sha256:%064d", i)}, cur.Previous...)
				return next, true, nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetRelease(ctx, "prod", "app")
	if err != nil || got.Version != 6 || len(got.Previous) != 6 {
		t.Fatalf("after 6 concurrent moves: version %d, %d previous, %v", got.Version, len(got.Previous), err)
	}
}

// testChangeRequest: concurrent read-modify-writes through ChangeRequest all land.
func testChangeRequest(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := request("prod")
	r.Required = 100
	if _, err := s.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := store.ChangeRequest(ctx, s, r.ID, func(cur regflow.ApprovalRequest) (regflow.ApprovalRequest, bool) {
				next, err := cur.Approve(fmt.Sprintf("U%d", i), t0)
				return next, err == nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := s.GetRequest(ctx, r.ID)
	if err != nil || len(got.Approvals) != 6 || got.Version != 7 {
		t.Fatalf("after 6 concurrent changes: %d approvals, version %d, %v", len(got.Approvals), got.Version, err)
	}
}

func testScan(t *testing.T, s store.Store) {
	ctx := context.Background()
	sc := regflow.Scan{Env: "dev", Repository: "app", Digest: digest, Status: "COMPLETE", Counts: map[string]int{"HIGH": 3}, At: t0}
	if _, err := s.GetScan(ctx, "dev", "app", digest); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("none yet: %v", err)
	}
	if err := s.PutScan(ctx, sc); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetScan(ctx, "dev", "app", digest)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sc, got); diff != "" {
		t.Fatalf("scan round trip:\n%s", diff)
	}
	if _, err := s.GetImage(ctx, "app", digest); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a scan record is not an image record: %v", err)
	}
}

func request(env string) regflow.ApprovalRequest {
	return regflow.ApprovalRequest{
		ID: regflow.RequestID(env, "app", digest), Env: env, Repository: "app", Digest: digest, Tag: "t", Commit: "c",
		Status: regflow.StatusPending, RequestedBy: "U0REQ", Required: 2, CreatedAt: t0, ExpiresAt: t0.Add(72 * time.Hour),
		Findings: map[string]int{"HIGH": 2}, Version: 1,
	}
}

func testRequestLifecycle(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := request("prod")
	if _, err := s.GetRequest(ctx, r.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRequest of nothing = %v", err)
	}
	for i, want := range []bool{true, false} {
		created, err := s.CreateRequest(ctx, r)
		if err != nil || created != want {
			t.Fatalf("create #%d = %v, %v; want %v", i+1, created, err, want)
		}
	}
	got, err := s.GetRequest(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Fatalf("request round trip:\n%s", diff)
	}
	staging := request("staging")
	if _, err := s.CreateRequest(ctx, staging); err != nil {
		t.Fatal(err)
	}
	pending, err := s.Requests(ctx, regflow.StatusPending)
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending = %d, %v", len(pending), err)
	}
	next, err := got.Approve("U0A", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	next.SlackChannel, next.SlackTS = "C0PROD", "1.2"
	if err := s.UpdateRequest(ctx, next); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRequest(ctx, next); !errors.Is(err, regflow.ErrConflict) {
		t.Fatalf("a stale version must conflict, got %v", err)
	}
	done, err := next.Approve("U0B", t0.Add(2*time.Hour))
	if err != nil || done.Status != regflow.StatusApproved {
		t.Fatalf("second approval: %+v, %v", done, err)
	}
	if err := s.UpdateRequest(ctx, done); err != nil {
		t.Fatal(err)
	}
	pending, _ = s.Requests(ctx, regflow.StatusPending)
	if len(pending) != 1 || pending[0].Env != "staging" {
		t.Fatalf("pending after approval = %+v", pending)
	}
	approved, _ := s.Requests(ctx, regflow.StatusApproved)
	if len(approved) != 1 || approved[0].DecidedBy != "U0B" || len(approved[0].Approvals) != 2 || approved[0].SlackTS != "1.2" {
		t.Fatalf("approved = %+v", approved)
	}
}

func testRequestConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := request("prod")
	r.Required = 1
	if _, err := s.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cur, err := s.GetRequest(ctx, r.ID)
			if err != nil {
				t.Error(err)
				return
			}
			next, err := cur.Approve(fmt.Sprintf("U%d", i), t0)
			if err != nil {
				return // already decided by the time this reader looked
			}
			switch err := s.UpdateRequest(ctx, next); {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, regflow.ErrConflict):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent approvals won; want exactly 1", wins.Load())
	}
}

func testReleases(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.GetRelease(ctx, "prod", "app"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRelease of nothing = %v", err)
	}
	r1 := regflow.Release{Env: "prod", Repository: "app"}.MoveTo("sha256:a", "ta", "U0A", t0, 3)
	if err := s.PutRelease(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRelease(ctx, r1); !errors.Is(err, regflow.ErrConflict) {
		t.Fatalf("replaying a pointer move must conflict, got %v", err)
	}
	r2 := r1.MoveTo("sha256:b", "tb", "U0B", t0.Add(time.Hour), 3)
	if err := s.PutRelease(ctx, r2); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRelease(ctx, "prod", "app")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r2, got); diff != "" {
		t.Fatalf("release round trip:\n%s", diff)
	}
	if got.Digest != "sha256:b" || !cmp.Equal(got.Previous, []string{"sha256:a"}) {
		t.Fatalf("pointer = %+v", got)
	}
	if err := s.PutRelease(ctx, regflow.Release{Env: "staging", Repository: "app"}.MoveTo("sha256:b", "tb", "x", t0, 3)); err != nil {
		t.Fatal(err)
	}
	all, err := s.Releases(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("releases = %+v, %v", all, err)
	}
}

func testVerification(t *testing.T, s store.Store) {
	ctx := context.Background()
	v := regflow.Verification{Env: "staging", Repository: "app", Digest: digest, Passed: true, URL: "https://ci/1", By: "U0A", At: t0}
	if _, err := s.GetVerification(ctx, "staging", "app", digest); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("none yet: %v", err)
	}
	if err := s.PutVerification(ctx, v); err != nil {
		t.Fatal(err)
	}
	v.Passed = false
	if err := s.PutVerification(ctx, v); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetVerification(ctx, "staging", "app", digest)
	if err != nil || got.Passed || got.URL != "https://ci/1" {
		t.Fatalf("verification = %+v, %v", got, err)
	}
}
