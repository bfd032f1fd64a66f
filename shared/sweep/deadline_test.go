package sweep_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/sweep"
)

// slowEstate is ten repositories of four expired images each in one local ECR whose
// DescribeImages takes 100 ms, with a planner and a worker over the embedded store;
// the queue only collects what is sent.
type slowEstate struct {
	srv      *localecr.Server
	store    *embedded.Store
	queue    *collectQueue
	worker   *sweep.Worker
	planner  *sweep.Planner
	finisher *sweep.Finisher
	posted   *[]string
}

type collectQueue struct {
	mu   sync.Mutex
	msgs []sweep.Message
}

func (q *collectQueue) Send(_ context.Context, msgs []sweep.Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, msgs...)
	return nil
}

func (q *collectQueue) take() []sweep.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.msgs
	q.msgs = nil
	return out
}

func newSlowEstate(t *testing.T, clock func() time.Time) *slowEstate {
	t.Helper()
	srv := sweeptest.StartECR(t, localecr.Options{Clock: localecr.FixedClock(now)})
	for r := range 10 {
		for i := range 4 {
			sweeptest.Seed(t, srv, fmt.Sprintf("r%02d", r), localecr.SeedImage{Manifest: sweeptest.Plain(fmt.Sprint(r, "/", i)), PushedAt: now.Add(-200 * day)})
		}
	}
	srv.SetFault("DescribeImages", localecr.Fault{Latency: 100 * time.Millisecond})
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &slowEstate{srv: srv, store: st, queue: &collectQueue{}, posted: &[]string{}}
	reg := ecr.SweepRegistry(ecr.New(sweeptest.Client(srv), ""))
	registries := func(context.Context, sweep.Target) (sweep.Registry, error) { return reg, nil }
	s := &sweep.Sweeper{Retention: retentionConfig(), Audit: st, Cache: st, Protection: st, Environments: []string{"prod"}, Concurrency: 1}
	var mu sync.Mutex
	e.finisher = &sweep.Finisher{Store: st, Now: clock, Notifier: notifierFunc(func(s string) { mu.Lock(); *e.posted = append(*e.posted, s); mu.Unlock() })}
	e.worker = &sweep.Worker{Sweeper: s, Registries: registries, Protection: st, Store: st, Finisher: e.finisher, Queue: e.queue, Now: clock}
	e.planner = &sweep.Planner{Targets: []sweep.Target{target}, Sweeper: s, Registries: registries, Store: st, Queue: e.queue,
		Finisher: e.finisher, BatchSize: 10, Now: clock}
	return e
}

// TestWorkerStopsBeforeItsDeadline: a batch of ten slow repositories handed to a
// worker with 700 ms left stops in time, records the repositories it swept and
// sends the rest as a new batch; the run finishes, with one summary, only when
// that batch is done, and every repository is swept exactly once.
func TestWorkerStopsBeforeItsDeadline(t *testing.T) {
	e := newSlowEstate(t, time.Now)
	ctx := context.Background()
	run := sweep.Run{ID: "deadline", Now: now}
	if _, err := e.planner.Plan(ctx, run); err != nil {
		t.Fatal(err)
	}
	msgs := e.queue.take()
	if len(msgs) != 1 || len(msgs[0].Repositories) != 10 {
		t.Fatalf("planned %+v, want one batch of 10", msgs)
	}
	msgs[0].Attempt = 1
	short, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	deadline, _ := short.Deadline()
	err := e.worker.Handle(short, msgs[0])
	if err != nil {
		t.Fatalf("the worker failed instead of stopping in time: %v", err)
	}
	if left := time.Until(deadline); left <= 0 {
		t.Fatalf("the worker returned %s after its deadline", -left)
	}
	rest := e.queue.take()
	if len(rest) != 1 || len(rest[0].Repositories) == 0 || len(rest[0].Repositories) >= 10 {
		t.Fatalf("re-enqueued %+v: want one batch with the repositories not swept", rest)
	}
	sr, err := e.store.GetSweepRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sr.Finished() || sr.Total != 2 || sr.Done() != 1 || sr.Repositories != 10-len(rest[0].Repositories) || sr.FailedRepositories != 0 {
		t.Fatalf("after the first part: %+v; want 1 of 2 batches, %d repositories swept, none failed", sr, 10-len(rest[0].Repositories))
	}
	if len(*e.posted) != 0 {
		t.Fatalf("summary posted before the run finished: %q", *e.posted)
	}
	rest[0].Attempt = 1
	if err := e.worker.Handle(ctx, rest[0]); err != nil {
		t.Fatal(err)
	}
	if sr, err = e.store.GetSweepRun(ctx, run.ID); err != nil || !sr.Finished() {
		t.Fatalf("run %+v not finished (%v)", sr, err)
	}
	if sr.Repositories != 10 || sr.Deleted != 40 || sr.FailedRepositories != 0 {
		t.Fatalf("counters %+v: want 10 repositories swept once, 40 images deleted", sr.SweepCounts)
	}
	if len(*e.posted) != 1 || !strings.Contains((*e.posted)[0], "Deleted 40 of 40 images in 10 repositories") {
		t.Fatalf("summaries %q, want exactly one", *e.posted)
	}
	if n := len(e.queue.take()); n != 0 {
		t.Fatalf("%d more batches sent", n)
	}
}

// TestStalledRunIsClosedAsPartial: a batch whose message ends in the dead-letter
// queue (its worker killed three times) never completes; the next scheduled run
// closes the stalled one with exactly one summary, marked partial, naming the
// repositories not swept, and a late redelivery of the lost batch changes nothing.
func TestStalledRunIsClosedAsPartial(t *testing.T) {
	clock := &struct {
		sync.Mutex
		t time.Time
	}{t: now}
	nowFn := func() time.Time { clock.Lock(); defer clock.Unlock(); return clock.t }
	e := newSlowEstate(t, nowFn)
	e.planner.BatchSize = 5
	ctx := context.Background()
	first := sweep.Run{ID: "day-1", Now: now}
	if _, err := e.planner.Plan(ctx, first); err != nil {
		t.Fatal(err)
	}
	msgs := e.queue.take()
	if len(msgs) != 2 {
		t.Fatalf("planned %d batches, want 2", len(msgs))
	}
	msgs[0].Attempt = 1
	if err := e.worker.Handle(ctx, msgs[0]); err != nil {
		t.Fatal(err)
	}
	lost := msgs[1] // three receives, three kills: in the dead-letter queue
	clock.Lock()
	clock.t = now.Add(24 * time.Hour)
	clock.Unlock()
	second := sweep.Run{ID: "day-2", Now: now.Add(24 * time.Hour), DryRun: true}
	if _, err := e.planner.Plan(ctx, second); err != nil {
		t.Fatal(err)
	}
	sr, err := e.store.GetSweepRun(ctx, first.ID)
	if err != nil || !sr.Finished() || sr.FailedRepositories != 5 {
		t.Fatalf("stalled run after the next schedule: %+v, %v; want it finished with 5 repositories failed", sr, err)
	}
	var summaries []string
	for _, p := range *e.posted {
		if !strings.HasPrefix(p, "Dry run") {
			summaries = append(summaries, p)
		}
	}
	if len(summaries) != 1 || !strings.Contains(summaries[0], "partial") || !strings.Contains(summaries[0], lost.Repositories[0]) {
		t.Fatalf("summaries of the stalled run %q: want one, partial, naming %s", summaries, lost.Repositories[0])
	}
	rep, err := sweep.LoadReport(ctx, e.store, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sel, _ := rep.Totals(); len(sel.Failed) != 5 || !strings.Contains(sel.Failed[0].Error, "dead-letter") {
		t.Fatalf("failed %+v: want the lost batch's 5 repositories, saying why", sel.Failed)
	}
	// The lost message, redriven from the dead-letter queue by an operator.
	lost.Attempt = 1
	before := len(*e.posted)
	if err := e.worker.Handle(ctx, lost); err != nil {
		t.Fatal(err)
	}
	if len(*e.posted) != before {
		t.Fatal("a redelivered batch of a closed run posted another summary")
	}
	if sr2, _ := e.store.GetSweepRun(ctx, first.ID); sr2.Repositories != sr.Repositories || sr2.Deleted != sr.Deleted {
		t.Fatalf("a closed run's counters moved: %+v → %+v", sr.SweepCounts, sr2.SweepCounts)
	}
	if imgs, _ := ecr.New(sweeptest.Client(e.srv), "").ListImages(ctx, lost.Repositories[0]); len(imgs) != 4 {
		t.Fatalf("%s holds %d images: a closed run's batch swept it", lost.Repositories[0], len(imgs))
	}
	_ = regflow.ShortDigest
}

// TestWorkerSweepsAsTheStoredRunSays: a message naming a dry run but claiming a real
// one a year later (hand-made, or tampered with on the queue) sweeps as the stored
// run says: a dry run at its own time, nothing deleted.
func TestWorkerSweepsAsTheStoredRunSays(t *testing.T) {
	e := newSlowEstate(t, time.Now)
	e.srv.SetFault("DescribeImages", localecr.Fault{})
	ctx := context.Background()
	if _, err := e.planner.Plan(ctx, sweep.Run{ID: "dry", Now: now.Add(-199 * day), DryRun: true}); err != nil {
		t.Fatal(err)
	}
	msgs := e.queue.take()
	if len(msgs) != 1 {
		t.Fatalf("planned %d batches", len(msgs))
	}
	forged := msgs[0]
	forged.Run.DryRun, forged.Run.Now, forged.Attempt = false, now.Add(365*day), 1
	if err := e.worker.Handle(ctx, forged); err != nil {
		t.Fatal(err)
	}
	sr, err := e.store.GetSweepRun(ctx, "dry")
	if err != nil || sr.Deleted != 0 || sr.Selected != 0 {
		t.Fatalf("run %+v (%v): the forged message deleted or selected by its own time", sr.SweepCounts, err)
	}
	for r := range 10 {
		if imgs, _ := ecr.New(sweeptest.Client(e.srv), "").ListImages(ctx, fmt.Sprintf("r%02d", r)); len(imgs) != 4 {
			t.Fatalf("r%02d holds %d images after a dry run", r, len(imgs))
		}
	}
}
