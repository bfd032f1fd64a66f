package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

// RunSweep exercises an adapter's store.SweepStore against the contract. newStore must
// return an empty store that also implements store.SweepStore.
func RunSweep(t *testing.T, newAny func(t *testing.T) store.Store) {
	newStore := func(t *testing.T) store.SweepStore {
		s, ok := newAny(t).(store.SweepStore)
		if !ok {
			t.Fatalf("%T does not implement store.SweepStore", s)
		}
		return s
	}
	t.Run("SweepRunOnce", func(t *testing.T) { testSweepRunOnce(t, newStore(t)) })
	t.Run("SweepTotal", func(t *testing.T) { testSweepTotal(t, newStore(t)) })
	t.Run("SweepBatchCountedOnce", func(t *testing.T) { testSweepBatchOnce(t, newStore(t)) })
	t.Run("SweepBatchesConcurrent", func(t *testing.T) { testSweepConcurrent(t, newStore(t)) })
	t.Run("SweepParts", func(t *testing.T) { testSweepParts(t, newStore(t)) })
	t.Run("SweepContinue", func(t *testing.T) { testSweepContinue(t, newStore(t)) })
	t.Run("ManifestInfos", func(t *testing.T) { testManifestInfos(t, newStore(t)) })
	t.Run("AppendAudits", func(t *testing.T) { testAppendAudits(t, newAny(t)) })
	t.Run("AppendAuditsNeverOverwrite", func(t *testing.T) { testAppendAuditsNeverOverwrite(t, newAny(t)) })
	t.Run("AuditNeverOverwritten", func(t *testing.T) { testAuditNeverOverwritten(t, newAny(t)) })
}

// testAuditNeverOverwritten: an audit entry, once written, keeps its content whatever
// later writes under its key say, alone or in bulk (IAM cannot refuse an overwriting
// PutItem, so the store's condition is what keeps the trail).
func testAuditNeverOverwritten(t *testing.T, s store.Store) {
	ctx := context.Background()
	ss := s.(store.SweepStore)
	orig := regflow.AuditEntry{Subject: "team/app@" + digest, ID: "promote/1", Time: t0, Action: event.ActionImagePromoted,
		Actor: "U0ALICE", Reason: "approved by U0ALICE", Details: map[string]string{"env": "prod"}}
	forged := orig
	forged.Actor, forged.Reason, forged.Details = "U0MALLORY", "approved by U0MALLORY", map[string]string{"env": "prod", "forged": "yes"}
	cases := []struct {
		name  string
		write func() error
	}{
		{"one entry", func() error {
			created, err := s.AppendAudit(ctx, forged)
			if created {
				return fmt.Errorf("AppendAudit reports it created an entry that existed")
			}
			return err
		}},
		{"in bulk", func() error { return ss.AppendAudits(ctx, []regflow.AuditEntry{forged}) }},
		{"in bulk among new entries", func() error {
			var batch []regflow.AuditEntry
			for i := range 30 {
				e := forged
				e.ID = fmt.Sprintf("other/%d", i)
				batch = append(batch, e)
			}
			return ss.AppendAudits(ctx, append(batch[:12:12], append([]regflow.AuditEntry{forged}, batch[12:]...)...))
		}},
	}
	if ok, err := s.AppendAudit(ctx, orig); err != nil || !ok {
		t.Fatalf("first append: %v %v", ok, err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.write(); err != nil {
				t.Fatal(err)
			}
			trail, err := s.Audit(ctx, orig.Subject)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range trail {
				if e.ID == orig.ID {
					if diff := cmp.Diff(orig, e); diff != "" {
						t.Fatalf("the stored entry changed (-first +now):\n%s", diff)
					}
					return
				}
			}
			t.Fatalf("the entry is gone: %v", trail)
		})
	}
}

func sweepRun(id string) store.SweepRun {
	return store.SweepRun{ID: id, Now: t0, DryRun: true, StartedAt: t0.Add(time.Second), Expires: t0.Add(90 * 24 * time.Hour)}
}

// sameRun compares what a store must keep of a run (Expires is write-only: a TTL).
func sameRun(t *testing.T, want, got store.SweepRun) {
	t.Helper()
	want.Expires, got.Expires = time.Time{}, time.Time{}
	slices.Sort(want.Batches)
	slices.Sort(got.Batches)
	if len(want.Batches) == 0 {
		want.Batches = nil
	}
	if len(got.Batches) == 0 {
		got.Batches = nil
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sweep run (-want +got):\n%s", diff)
	}
}

func testSweepRunOnce(t *testing.T, s store.SweepStore) {
	ctx := context.Background()
	if _, err := s.GetSweepRun(ctx, "r1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSweepRun of nothing = %v, want ErrNotFound", err)
	}
	run := sweepRun("r1")
	if ok, err := s.CreateSweepRun(ctx, run); err != nil || !ok {
		t.Fatalf("first create = %v, %v", ok, err)
	}
	other := run
	other.DryRun, other.Now = false, t0.Add(time.Hour)
	if ok, err := s.CreateSweepRun(ctx, other); err != nil || ok {
		t.Fatalf("second create = %v, %v; want false", ok, err)
	}
	got, err := s.GetSweepRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	sameRun(t, run, got)
}

func testSweepTotal(t *testing.T, s store.SweepStore) {
	ctx := context.Background()
	if _, err := s.SetSweepTotal(ctx, "missing", 3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("total of a missing run = %v, want ErrNotFound", err)
	}
	if _, err := s.CreateSweepRun(ctx, sweepRun("r1")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := s.SetSweepTotal(ctx, "r1", 3)
		if err != nil {
			t.Fatal(err)
		}
		if got.Total != 3 || got.Finished() {
			t.Fatalf("after total: %+v", got)
		}
	}
	if _, err := s.SetSweepTotal(ctx, "r1", 4); err == nil {
		t.Fatal("a different total must be refused")
	}
	if got, _ := s.GetSweepRun(ctx, "r1"); got.Total != 3 {
		t.Fatalf("total = %d after a refused change", got.Total)
	}
}

func testSweepBatchOnce(t *testing.T, s store.SweepStore) {
	ctx := context.Background()
	c := store.SweepCounts{Repositories: 2, Images: 10, Kept: 7, Selected: 3, Deleted: 2, AlreadyGone: 1, BytesReclaimed: 1 << 40}
	if _, _, err := s.CompleteSweepBatch(ctx, "missing", "b0", c); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("batch of a missing run = %v, want ErrNotFound", err)
	}
	if _, err := s.GetSweepRun(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a batch of a missing run created it: %v", err)
	}
	run := sweepRun("r1")
	if _, err := s.CreateSweepRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	got, counted, err := s.CompleteSweepBatch(ctx, "r1", "b0", c)
	if err != nil || !counted {
		t.Fatalf("first completion = %v, %v", counted, err)
	}
	want := run
	want.Batches, want.SweepCounts = []string{"b0"}, c
	sameRun(t, want, got)
	got, counted, err = s.CompleteSweepBatch(ctx, "r1", "b0", c)
	if err != nil || counted {
		t.Fatalf("second completion of b0 = %v, %v; want not counted", counted, err)
	}
	sameRun(t, want, got)
	got, counted, err = s.CompleteSweepBatch(ctx, "r1", "b1", store.SweepCounts{NotDeleted: 1, FailedRepositories: 1})
	if err != nil || !counted {
		t.Fatalf("b1 = %v, %v", counted, err)
	}
	want.Batches = []string{"b0", "b1"}
	want.NotDeleted, want.FailedRepositories = 1, 1
	sameRun(t, want, got)
	if got.Finished() {
		t.Fatal("finished without a total")
	}
	got, err = s.SetSweepTotal(ctx, "r1", 2)
	if err != nil || !got.Finished() {
		t.Fatalf("after total 2 with 2 batches done: %+v, %v", got, err)
	}
}

// testSweepConcurrent completes 24 batches, each delivered twice, from concurrent
// callers: the counters add up exactly and exactly one counted completion sees the
// run finished.
func testSweepConcurrent(t *testing.T, s store.SweepStore) {
	ctx := context.Background()
	const n = 24
	if _, err := s.CreateSweepRun(ctx, sweepRun("r1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetSweepTotal(ctx, "r1", n); err != nil {
		t.Fatal(err)
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		finishers []string
		counted   int
	)
	for i := range 2 * n {
		wg.Go(func() {
			b := fmt.Sprintf("b%02d", i%n)
			run, ok, err := s.CompleteSweepBatch(ctx, "r1", b, store.SweepCounts{Repositories: 1, Images: i%n + 1, Deleted: 1, BytesReclaimed: 1000})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				counted++
				if run.Finished() {
					finishers = append(finishers, b)
				}
			}
		})
	}
	wg.Wait()
	if counted != n {
		t.Errorf("%d completions counted, want %d", counted, n)
	}
	if len(finishers) != 1 {
		t.Errorf("counted completions that saw the run finished: %v, want exactly one", finishers)
	}
	got, err := s.GetSweepRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	want := store.SweepCounts{Repositories: n, Images: n * (n + 1) / 2, Deleted: n, BytesReclaimed: n * 1000}
	if diff := cmp.Diff(want, got.SweepCounts); diff != "" || got.Done() != n {
		t.Errorf("counts after concurrent batches (done %d) (-want +got):\n%s", got.Done(), diff)
	}
}

func testSweepParts(t *testing.T, s store.SweepStore) {
	ctx := context.Background()
	if parts, err := s.SweepParts(ctx, "r1"); err != nil || len(parts) != 0 {
		t.Fatalf("parts of nothing = %v, %v", parts, err)
	}
	exp := t0.Add(24 * time.Hour)
	big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 300_000/4) // binary, near the limit
	for _, p := range []store.SweepPart{
		{Name: "b02", Data: []byte("two"), Expires: exp},
		{Name: "b01", Data: big, Expires: exp},
		{Name: "b02", Data: []byte("two again"), Expires: exp},
	} {
		if err := s.PutSweepPart(ctx, "r1", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutSweepPart(ctx, "r2", store.SweepPart{Name: "b01", Data: []byte("other run"), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSweepPart(ctx, "r1", store.SweepPart{Name: "huge", Data: make([]byte, store.MaxSweepPartBytes+1)}); err == nil {
		t.Fatal("a part over MaxSweepPartBytes must be refused")
	}
	parts, err := s.SweepParts(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].Name != "b01" || !bytes.Equal(parts[0].Data, big) || parts[1].Name != "b02" || string(parts[1].Data) != "two again" {
		names := []string{}
		for _, p := range parts {
			names = append(names, fmt.Sprintf("%s(%d bytes)", p.Name, len(p.Data)))
		}
		t.Fatalf("parts = %v", names)
	}
}

func testManifestInfos(t *testing.T, s store.SweepStore) {
	ctx := context.Background()
	var infos []store.ManifestInfo
	var digests []string
	for i := range 230 { // more than a DynamoDB batch of reads (100) and of writes (25)
		d := fmt.Sprintf("sha256:%064x", i)
		digests = append(digests, d)
		info := store.ManifestInfo{Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Expires: t0.Add(time.Hour)}
		switch i % 3 {
		case 1:
			info = store.ManifestInfo{Digest: d, MediaType: "application/vnd.oci.image.index.v1+json", Index: true, Children: []string{digests[0], digests[i-1]}}
		case 2:
			info.ArtifactType, info.Subject = "application/vnd.dev.cosign.artifact.sig.v1+json", digests[0]
		}
		infos = append(infos, info)
	}
	infos = append(infos, store.ManifestInfo{Digest: "sha256:" + fmt.Sprintf("%064x", 999), MediaType: "application/vnd.oci.image.index.v1+json", Index: true})
	if err := s.PutManifestInfos(ctx, infos); err != nil {
		t.Fatal(err)
	}
	if err := s.PutManifestInfos(ctx, infos[:3]); err != nil {
		t.Fatal(err)
	}
	ask := append(slices.Clone(digests), infos[len(infos)-1].Digest, "sha256:"+fmt.Sprintf("%064x", 1000))
	got, err := s.ManifestInfos(ctx, ask)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(infos) {
		t.Fatalf("got %d infos, want %d (the unknown digest absent)", len(got), len(infos))
	}
	for _, want := range infos {
		g := got[want.Digest]
		want.Expires, g.Expires = time.Time{}, time.Time{}
		if diff := cmp.Diff(want, g); diff != "" {
			t.Fatalf("info %s (-want +got):\n%s", want.Digest, diff)
		}
	}
	if got, err := s.ManifestInfos(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("no digests: %v, %v", got, err)
	}
}

// testAppendAudits writes entries in bulk, twice, next to one written alone: each
// subject ends up with each entry once, in time order.
func testAppendAudits(t *testing.T, s store.Store) {
	ctx := context.Background()
	ss := s.(store.SweepStore)
	var entries []regflow.AuditEntry
	for i := range 60 {
		entries = append(entries, regflow.AuditEntry{
			Subject: fmt.Sprintf("team/app@sha256:%064x", i%30), ID: fmt.Sprintf("run1#%d", i),
			Time: t0.Add(time.Duration(i) * time.Second), Action: event.ActionImageDeleted, Actor: "regflow/sweeper",
			Reason: "delete: pushed 100 days ago", Details: map[string]string{"run": "run1"},
		})
	}
	if ok, err := s.AppendAudit(ctx, entries[0]); err != nil || !ok {
		t.Fatalf("single append: %v %v", ok, err)
	}
	for range 2 {
		if err := ss.AppendAudits(ctx, append(entries, entries[5])); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.AppendAudit(ctx, entries[7]); err != nil || ok {
		t.Fatalf("single append of a bulk-written entry: %v %v, want false", ok, err)
	}
	for i := range 30 {
		got, err := s.Audit(ctx, entries[i].Subject)
		if err != nil {
			t.Fatal(err)
		}
		want := []regflow.AuditEntry{entries[i], entries[i+30]}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("trail of %s (-want +got):\n%s", entries[i].Subject, diff)
		}
	}
	if err := ss.AppendAudits(ctx, nil); err != nil {
		t.Fatal(err)
	}
}
