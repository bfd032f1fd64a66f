package sweep

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

// Defaults of the fan-out.
const (
	// DefaultBatchSize is how many repositories one message carries: small enough for
	// a worker to finish well inside its timeout with ECR throttling it.
	DefaultBatchSize = 25
	// DefaultMaxAttempts is how often a batch is tried before its failures are
	// recorded and the batch counted, so the run still finishes (the queue's own
	// redrive comes after 3 receives).
	DefaultMaxAttempts = 3
	// KeepRunsFor is how long runs and their reports stay in the store.
	KeepRunsFor = 180 * 24 * time.Hour
	// finishClaimFor is how long the finisher holds the run before another may try.
	finishClaimFor = 15 * time.Minute
	// batchClaimFor outlasts the worker function's timeout (10 minutes).
	batchClaimFor = 15 * time.Minute
	// SummaryPart names the stored summary (totals, no decisions) of a finished run.
	SummaryPart = "summary"
	// IndexRun holds one part per run, named by the run's ID: where the finisher finds
	// runs that stopped making progress.
	IndexRun = "sweep-index"
	// planPrefix names the part recording a batch's repositories ("plan#" + batch).
	planPrefix = "plan#"
	// DefaultStallAfter: a run unfinished this long after it started stopped making
	// progress (a batch in the dead-letter queue, a planner killed) and is closed as
	// partial by the next planner. Three deliveries of a 10-minute worker, six
	// timeouts' visibility apart, take at most about 3 hours.
	DefaultStallAfter = 6 * time.Hour
	// indexFor is how long a run stays in the index.
	indexFor = 7 * 24 * time.Hour
	// Deadline reserve: a worker stops starting repositories this long before its
	// deadline (a fifth of the time left, within these bounds), to record what it did
	// and hand the rest on.
	minReserve = 200 * time.Millisecond
	maxReserve = 30 * time.Second
)

// Message is one batch of repositories of one registry, as sent to the workers.
type Message struct {
	Run          Run      `json:"run"`
	Batch        string   `json:"batch"`
	Target       Target   `json:"target"`
	Repositories []string `json:"repositories"`
	// Attempt is the delivery count (SQS ApproximateReceiveCount); not sent.
	Attempt int `json:"-"`
}

// ParseMessage decodes a message body and checks it names a run, a batch and a registry.
func ParseMessage(body []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("sweep message is not JSON: %w", err)
	}
	switch {
	case m.Run.ID == "" || m.Run.Now.IsZero():
		return m, errors.New("sweep message names no run (run.id, run.now)")
	case m.Batch == "":
		return m, errors.New("sweep message names no batch")
	case m.Target.Account == "" || m.Target.Region == "":
		return m, errors.New("sweep message names no registry (target.account, target.region)")
	}
	return m, nil
}

// Planner is the scheduled part of the fan-out: it lists every registry's
// repositories and sends them to the queue in batches.
type Planner struct {
	Targets    []Target
	Sweeper    *Sweeper // decides which repositories are managed
	Registries func(context.Context, Target) (Registry, error)
	Store      RunStore
	Queue      Queue
	Finisher   *Finisher
	BatchSize  int
	Now        func() time.Time
	Log        *slog.Logger
}

// Plan is what the planner did.
type Plan struct {
	Run            Run  `json:"run"`
	Batches        int  `json:"batches"`
	Repositories   int  `json:"repositories"`
	AlreadyPlanned bool `json:"alreadyPlanned,omitempty"`
	Finished       bool `json:"finished,omitempty"`
}

// Plan starts run: at most once per run ID, so a redelivered schedule event adds nothing.
func (p *Planner) Plan(ctx context.Context, run Run) (Plan, error) {
	out := Plan{Run: run}
	now := p.Now()
	// Earlier runs that stopped making progress end here, each with its one summary; a
	// failure to close them must not keep today's sweep from running.
	if err := p.Finisher.CloseStalled(ctx, run.ID); err != nil {
		p.log().Error("cannot close stalled sweep runs", "error", err)
	}
	if _, err := p.Store.CreateSweepRun(ctx, store.SweepRun{ID: run.ID, Now: run.Now, DryRun: run.DryRun, StartedAt: now, Expires: now.Add(KeepRunsFor)}); err != nil {
		return out, err
	}
	if err := p.Store.PutSweepPart(ctx, IndexRun, store.SweepPart{Name: run.ID, Data: []byte(run.ID), Expires: now.Add(indexFor)}); err != nil {
		return out, fmt.Errorf("index sweep run %s: %w", run.ID, err)
	}
	sr, err := p.Store.GetSweepRun(ctx, run.ID)
	if err != nil {
		return out, err
	}
	if sr.Total > 0 {
		out.AlreadyPlanned, out.Batches = true, sr.Total
		out.Finished, err = p.Finisher.MaybeFinish(ctx, sr)
		return out, err
	}
	// A redelivery after a partial send plans again from the stored run's time and
	// mode, so every batch of the run means the same thing.
	run = Run{ID: sr.ID, Now: sr.Now, DryRun: sr.DryRun}
	out.Run = run
	size := p.BatchSize
	if size <= 0 {
		size = DefaultBatchSize
	}
	var msgs []Message
	done := 0
	for _, t := range p.Targets {
		reg, err := p.Registries(ctx, t)
		var repos []string
		if err == nil {
			repos, err = reg.Repositories(ctx)
		}
		if err != nil {
			// Record the registry as failed and count it as a batch, so the run finishes and says so.
			rr := newRegistryReport(t, run)
			rr.AddFailure("*", fmt.Errorf("list repositories of %s: %w", t, err))
			if err := completeBatch(ctx, p.Store, run, "list "+t.Key(), rr, false); err != nil {
				return out, err
			}
			done++
			continue
		}
		repos = p.Sweeper.Select(repos)
		out.Repositories += len(repos)
		// What runs is read once per registry and run, here, and every batch keeps it: a
		// failed read records the registry's repositories failed and sends none of them.
		if len(repos) > 0 {
			if err := putRunning(ctx, p.Store, p.Sweeper.InUse, run, t); err != nil {
				rr := newRegistryReport(t, run)
				for _, repo := range repos {
					rr.AddFailure(repo, err)
				}
				if err := completeBatch(ctx, p.Store, run, "inuse "+t.Key(), rr, false); err != nil {
					return out, err
				}
				done++
				continue
			}
		}
		for i, chunk := range chunks(repos, size) {
			msgs = append(msgs, Message{Run: run, Batch: fmt.Sprintf("%s#%05d", t.Key(), i), Target: t, Repositories: chunk})
		}
	}
	if len(msgs) == 0 && done == 0 {
		// Nothing to sweep: one empty batch lets the run finish like any other.
		if err := completeBatch(ctx, p.Store, run, "empty", newRegistryReport(Target{Name: "none"}, run), false); err != nil {
			return out, err
		}
		done++
	}
	for _, m := range msgs {
		if err := putPlan(ctx, p.Store, m); err != nil {
			return out, err
		}
	}
	if err := p.Queue.Send(ctx, msgs); err != nil {
		return out, fmt.Errorf("send sweep batches: %w", err)
	}
	out.Batches = len(msgs) + done
	if sr, err = p.Store.SetSweepTotal(ctx, run.ID, out.Batches); err != nil {
		return out, err
	}
	p.log().Info("sweep planned", "run", run.ID, "batches", out.Batches, "repositories", out.Repositories, "dryRun", run.DryRun)
	out.Finished, err = p.Finisher.MaybeFinish(ctx, sr)
	return out, err
}

func (p *Planner) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

func chunks(s []string, n int) [][]string {
	var out [][]string
	for c := range slices.Chunk(s, n) {
		out = append(out, c)
	}
	return out
}

// Worker sweeps one batch per message.
type Worker struct {
	Sweeper    *Sweeper
	Registries func(context.Context, Target) (Registry, error)
	Protection Protection
	Store      RunStore
	Finisher   *Finisher
	// Queue takes the rest of a batch that stopped before its deadline; without one
	// the rest is recorded as not swept.
	Queue Queue
	// MaxAttempts: after this many deliveries a batch that cannot start is recorded as
	// failed and counted. Default DefaultMaxAttempts.
	MaxAttempts int
	Now         func() time.Time
	Log         *slog.Logger
}

// Handle sweeps the message's repositories once per run and batch, adds the
// results to the run's counters, and finishes the run if this was the last batch.
// An error means "deliver again".
func (w *Worker) Handle(ctx context.Context, msg Message) error {
	sr, err := w.Store.GetSweepRun(ctx, msg.Run.ID)
	if err != nil {
		return fmt.Errorf("sweep batch %s: %w", msg.Batch, err)
	}
	// The stored run says when and how it sweeps, not the message: a hand-made message
	// cannot move a run's time or turn a dry run real.
	msg.Run = Run{ID: sr.ID, Now: sr.Now, DryRun: sr.DryRun}
	if !slices.Contains(sr.Batches, msg.Batch) {
		// One delivery at a time sweeps a batch: a duplicate arriving meanwhile would
		// find the images gone and overwrite the report with a smaller one.
		now := time.Now()
		if w.Now != nil {
			now = w.Now()
		}
		key := "sweep-batch#" + msg.Run.ID + "#" + msg.Batch
		won, err := w.Store.Claim(ctx, key, now, now.Add(batchClaimFor))
		if err != nil {
			return err
		}
		if !won {
			return fmt.Errorf("sweep batch %s of run %s: %w", msg.Batch, msg.Run.ID, ErrBatchBusy)
		}
		if err := w.complete(ctx, msg); err != nil {
			if rerr := w.Store.Release(ctx, key); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return err
		}
		if sr, err = w.Store.GetSweepRun(ctx, msg.Run.ID); err != nil {
			return err
		}
	}
	_, err = w.Finisher.MaybeFinish(ctx, sr)
	return err
}

// ErrBatchBusy means another delivery of the same batch is sweeping it: deliver again later.
var ErrBatchBusy = errors.New("another delivery is sweeping this batch")

// complete sweeps the batch within the deadline budget and counts it; what the
// budget left unswept goes on as a new batch.
func (w *Worker) complete(ctx context.Context, msg Message) error {
	work, cancel := budget(ctx)
	defer cancel()
	rr, rest, err := w.sweep(work, msg)
	if err != nil {
		limit := w.MaxAttempts
		if limit <= 0 {
			limit = DefaultMaxAttempts
		}
		if msg.Attempt < limit {
			return err
		}
		rr, rest = newRegistryReport(msg.Target, msg.Run), nil
		for _, repo := range msg.Repositories {
			rr.AddFailure(repo, fmt.Errorf("gave up after %d attempts: %w", msg.Attempt, err))
		}
	}
	continued := len(rest) > 0 && w.Queue != nil
	if len(rest) > 0 && !continued {
		for _, repo := range rest {
			rr.AddFailure(repo, errors.New("not swept: the worker reached its deadline and has no queue to hand the rest to"))
		}
	}
	var next Message
	if continued {
		// The rest's plan is stored before the batch counts as continued, so a
		// continuation lost in sending is closed with its repositories named.
		next = Message{Run: msg.Run, Batch: nextBatch(msg.Batch), Target: msg.Target, Repositories: rest}
		if err := putPlan(ctx, w.Store, next); err != nil {
			return err
		}
	}
	if err := completeBatch(ctx, w.Store, msg.Run, msg.Batch, rr, continued); err != nil {
		return err
	}
	c := rr.Counts()
	w.log().Info("sweep batch done", "run", msg.Run.ID, "batch", msg.Batch, "registry", msg.Target.Name,
		"repositories", c.Repositories, "images", c.Images, "selected", c.Selected, "deleted", c.Deleted,
		"failedRepositories", c.FailedRepositories, "handedOn", len(rest))
	if continued {
		if err := w.Queue.Send(ctx, []Message{next}); err != nil {
			// The batch is counted: a redelivery would not resend. The stalled-run
			// finisher closes the run with these repositories named.
			w.log().Error("cannot hand the rest of a sweep batch on", "run", msg.Run.ID, "batch", next.Batch, "repositories", len(rest), "error", err)
		}
	}
	return nil
}

// budget is ctx ending a reserve before its deadline (a Lambda invocation's): the
// time to record what was done and hand the rest on.
func budget(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := min(max(time.Until(dl)/5, minReserve), maxReserve)
	return context.WithDeadline(ctx, dl.Add(-reserve))
}

// nextBatch names a batch's continuation: b+1, b+2, ...
func nextBatch(b string) string {
	if i := strings.LastIndexByte(b, '+'); i >= 0 {
		if n, err := strconv.Atoi(b[i+1:]); err == nil {
			return b[:i+1] + strconv.Itoa(n+1)
		}
	}
	return b + "+1"
}

// sweep fails only when the batch cannot start (no registry, no protection data);
// failures of single repositories are in the report, and repositories the budget
// left unswept are returned.
func (w *Worker) sweep(ctx context.Context, msg Message) (*RegistryReport, []string, error) {
	reg, err := w.Registries(ctx, msg.Target)
	if err != nil {
		return nil, nil, fmt.Errorf("reach registry %s: %w", msg.Target, err)
	}
	prot, err := LoadProtections(ctx, w.Protection, msg.Run.Now)
	if err != nil {
		return nil, nil, err
	}
	s := *w.Sweeper
	if s.running, err = getRunning(ctx, w.Store, msg.Run, msg.Target); err != nil {
		return nil, nil, err
	}
	// The planner filtered already; the worker checks again so a hand-made message
	// cannot reach an unmanaged repository.
	rr, rest := s.RegistryWithin(ctx, msg.Run, msg.Target, reg, s.Select(msg.Repositories), prot)
	return rr, rest, nil
}

func (w *Worker) log() *slog.Logger {
	if w.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Log
}

// partEnvelope wraps each stored part. Token ties the parts of one attempt
// together: part 0 is written last, so it names the attempt whose parts count.
type partEnvelope struct {
	Token  string          `json:"token"`
	Index  int             `json:"index"`
	Of     int             `json:"of"`
	Report *RegistryReport `json:"report"`
}

// completeBatch stores a batch's report parts, then counts it (once) in the run;
// continued counts it as handing its rest to one more batch.
func completeBatch(ctx context.Context, st RunStore, run Run, batch string, rr *RegistryReport, continued bool) error {
	rr.Sort()
	parts, err := encodeParts(rr, store.MaxSweepPartBytes-1024)
	if err != nil {
		return err
	}
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	expires := run.Now.Add(KeepRunsFor)
	for i := len(parts) - 1; i >= 0; i-- {
		env, err := json.Marshal(partEnvelope{Token: token, Index: i, Of: len(parts)})
		if err != nil {
			return err
		}
		// Data is the envelope line, then the gzipped report.
		data := append(append(env, '\n'), parts[i]...)
		if err := st.PutSweepPart(ctx, run.ID, store.SweepPart{Name: fmt.Sprintf("%s.%04d", batch, i), Data: data, Expires: expires}); err != nil {
			return fmt.Errorf("store report of batch %s: %w", batch, err)
		}
	}
	count := st.CompleteSweepBatch
	if continued {
		count = st.ContinueSweepBatch
	}
	if _, _, err := count(ctx, run.ID, batch, rr.Counts()); err != nil {
		return err
	}
	return nil
}

// runningRun names where a run keeps what runs in each of its registries (one part per
// registry, named by its key), apart from its report parts.
func runningRun(runID string) string { return runID + "#running" }

// putRunning reads what runs in t's account and stores it for the run's batches.
func putRunning(ctx context.Context, st RunStore, src InUseSource, run Run, t Target) error {
	running, err := ReadRunning(ctx, src, t)
	if err != nil {
		return err
	}
	b, err := gzipJSON(running)
	if err != nil {
		return err
	}
	if len(b) > store.MaxSweepPartBytes {
		return fmt.Errorf("what runs in %s is %d bytes compressed, more than one stored part holds, so this registry deletes nothing", t, len(b))
	}
	if err := st.PutSweepPart(ctx, runningRun(run.ID), store.SweepPart{Name: t.Key(), Data: b, Expires: run.Now.Add(KeepRunsFor)}); err != nil {
		return fmt.Errorf("store what runs in %s: %w", t, err)
	}
	return nil
}

// getRunning is what the planner stored for t, or nil (a batch planned before the
// planner read it: the worker reads it itself).
func getRunning(ctx context.Context, st RunStore, run Run, t Target) (*Running, error) {
	parts, err := st.SweepParts(ctx, runningRun(run.ID))
	if err != nil {
		return nil, fmt.Errorf("read what runs in %s, stored for run %s: %w", t, run.ID, err)
	}
	for _, p := range parts {
		if p.Name != t.Key() {
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(p.Data))
		if err != nil {
			return nil, fmt.Errorf("what runs in %s, stored for run %s: %w", t, run.ID, err)
		}
		var r Running
		if err := json.NewDecoder(zr).Decode(&r); err != nil {
			return nil, fmt.Errorf("what runs in %s, stored for run %s: %w", t, run.ID, err)
		}
		return &r, nil
	}
	return nil, nil
}

// planned is what a plan part records: the repositories a batch was sent with.
type planned struct {
	Target       Target   `json:"target"`
	Repositories []string `json:"repositories"`
}

// putPlan records a batch's repositories before it is sent, so a batch that never
// completes can be closed with them named.
func putPlan(ctx context.Context, st RunStore, m Message) error {
	b, err := json.Marshal(planned{Target: m.Target, Repositories: m.Repositories})
	if err != nil {
		return err
	}
	if err := st.PutSweepPart(ctx, m.Run.ID, store.SweepPart{Name: planPrefix + m.Batch, Data: b, Expires: m.Run.Now.Add(KeepRunsFor)}); err != nil {
		return fmt.Errorf("record the plan of batch %s: %w", m.Batch, err)
	}
	return nil
}

// LoadReport assembles a run's report from the parts of its completed batches.
func LoadReport(ctx context.Context, st store.SweepStore, runID string) (*Report, error) {
	sr, err := st.GetSweepRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	parts, err := st.SweepParts(ctx, runID)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	for _, b := range sr.Batches {
		done[b] = true
	}
	type piece struct {
		env partEnvelope
		raw []byte
	}
	byBatch := map[string][]piece{}
	for _, p := range parts {
		i := strings.LastIndexByte(p.Name, '.')
		if i < 0 || !done[p.Name[:i]] {
			continue // the summary, or a part of a batch that never completed
		}
		line, raw, ok := strings.Cut(string(p.Data), "\n")
		var env partEnvelope
		if !ok || json.Unmarshal([]byte(line), &env) != nil {
			return nil, fmt.Errorf("report part %s of run %s is malformed", p.Name, runID)
		}
		byBatch[p.Name[:i]] = append(byBatch[p.Name[:i]], piece{env, []byte(raw)})
	}
	rep := &Report{Run: Run{ID: sr.ID, Now: sr.Now, DryRun: sr.DryRun}}
	for batch, ps := range byBatch {
		var token string
		for _, p := range ps {
			if p.env.Index == 0 {
				token = p.env.Token
			}
		}
		for _, p := range ps {
			if p.env.Token != token {
				continue // left over from an earlier attempt at the batch
			}
			rr, err := decodePart(p.raw)
			if err != nil {
				return nil, fmt.Errorf("report part of batch %s of run %s: %w", batch, runID, err)
			}
			rep.Add(rr)
		}
	}
	rep.Sort()
	return rep, nil
}

// Finisher stores the merged report and posts the summary, once per run.
type Finisher struct {
	Store    RunStore
	Notifier regflow.Notifier
	// Publisher is optional: with it the run ends with a "Retention Sweep Completed" event.
	Publisher event.Publisher
	Now       func() time.Time
	Log       *slog.Logger
	// OnFinish, when set, sees the merged report (tests, the CLI).
	OnFinish func(*Report)
	// StallAfter: an unfinished run this old stopped making progress (default DefaultStallAfter).
	StallAfter time.Duration
}

// CloseStalled finishes every indexed run but skip that stopped making progress:
// each batch that never completed (its message in the dead-letter queue, its worker
// killed, its continuation lost) is recorded with its repositories failed, so the
// run ends with its one summary, marked partial. A run finished but not announced
// (its finisher died) is announced. Runs still within StallAfter are left alone.
func (f *Finisher) CloseStalled(ctx context.Context, skip string) error {
	idx, err := f.Store.SweepParts(ctx, IndexRun)
	if err != nil {
		return fmt.Errorf("list sweep runs: %w", err)
	}
	stall := f.StallAfter
	if stall <= 0 {
		stall = DefaultStallAfter
	}
	var errs []error
	for _, p := range idx {
		if p.Name == skip {
			continue
		}
		sr, err := f.Store.GetSweepRun(ctx, p.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !sr.Finished() && f.Now().Sub(sr.StartedAt) >= stall {
			if sr, err = f.close(ctx, sr); err != nil {
				errs = append(errs, fmt.Errorf("close stalled sweep run %s: %w", sr.ID, err))
				continue
			}
		}
		if _, err := f.MaybeFinish(ctx, sr); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// close records every batch of sr that never completed as failed.
func (f *Finisher) close(ctx context.Context, sr store.SweepRun) (store.SweepRun, error) {
	run := Run{ID: sr.ID, Now: sr.Now, DryRun: sr.DryRun}
	parts, err := f.Store.SweepParts(ctx, sr.ID)
	if err != nil {
		return sr, err
	}
	done := map[string]bool{}
	for _, b := range sr.Batches {
		done[b] = true
	}
	why := fmt.Errorf("not swept: its batch stopped making progress (the message is in the sweep's dead-letter queue, or its worker was killed) and the run was closed %s after it started", f.Now().Sub(sr.StartedAt).Round(time.Minute))
	var missing []Message
	known := len(done)
	for _, p := range parts {
		batch, ok := strings.CutPrefix(p.Name, planPrefix)
		if !ok {
			continue
		}
		if !done[batch] {
			var pl planned
			if err := json.Unmarshal(p.Data, &pl); err != nil {
				return sr, fmt.Errorf("plan of batch %s is malformed: %w", batch, err)
			}
			missing = append(missing, Message{Batch: batch, Target: pl.Target, Repositories: pl.Repositories})
			known++
		}
	}
	if sr.Total == 0 {
		// The planner stopped before counting: what it planned, and one batch saying so.
		if sr, err = f.Store.SetSweepTotal(ctx, sr.ID, known+1); err != nil {
			return sr, err
		}
	}
	for _, m := range missing {
		rr := newRegistryReport(m.Target, run)
		for _, repo := range m.Repositories {
			rr.AddFailure(repo, why)
		}
		if err := completeBatch(ctx, f.Store, run, m.Batch, rr, false); err != nil {
			return sr, err
		}
	}
	if sr, err = f.Store.GetSweepRun(ctx, sr.ID); err != nil {
		return sr, err
	}
	// Batches with no plan (a planner killed mid-way) are closed by name.
	for i := 0; !sr.Finished(); i++ {
		rr := newRegistryReport(Target{Name: "unknown"}, run)
		rr.AddFailure("*", errors.New("not swept: the run stopped before some of its batches were planned or recorded"))
		if err := completeBatch(ctx, f.Store, run, fmt.Sprintf("stalled#%d", i), rr, false); err != nil {
			return sr, err
		}
		if sr, err = f.Store.GetSweepRun(ctx, sr.ID); err != nil {
			return sr, err
		}
	}
	if f.Log != nil {
		f.Log.Warn("closed a stalled sweep run", "run", sr.ID, "batchesClosed", len(missing))
	}
	return sr, nil
}

// MaybeFinish finishes sr if every batch is done and nobody else has: it returns
// true for the one caller that did.
func (f *Finisher) MaybeFinish(ctx context.Context, sr store.SweepRun) (bool, error) {
	if !sr.Finished() {
		return false, nil
	}
	// A short lease while finishing; once the summary is out the claim is kept as long as
	// the run, so a redelivered batch or planner never posts it twice.
	return store.Once(ctx, f.Store, "sweep-finish#"+sr.ID, f.Now(), finishClaimFor, KeepRunsFor, func() error { return f.finish(ctx, sr) })
}

func (f *Finisher) finish(ctx context.Context, sr store.SweepRun) error {
	rep, err := LoadReport(ctx, f.Store, sr.ID)
	if err != nil {
		return fmt.Errorf("assemble report of sweep run %s: %w", sr.ID, err)
	}
	summary := &Report{Run: rep.Run}
	for _, rr := range rep.Registries {
		s := *rr
		s.Report.Decisions = nil
		summary.Registries = append(summary.Registries, &s)
	}
	b, err := gzipJSON(summary)
	if err != nil {
		return err
	}
	if len(b) > store.MaxSweepPartBytes {
		return fmt.Errorf("summary of sweep run %s is %d bytes compressed, too large to store", sr.ID, len(b))
	}
	if err := f.Store.PutSweepPart(ctx, sr.ID, store.SweepPart{Name: SummaryPart, Data: b, Expires: sr.Now.Add(KeepRunsFor)}); err != nil {
		return err
	}
	if f.Publisher != nil {
		sel, out := rep.Totals()
		done := event.RetentionSweepCompleted{
			RunID: sr.ID, Now: sr.Now, DryRun: sr.DryRun, Repositories: sel.Repositories, Images: sel.Images, Kept: sel.Kept,
			Selected: sel.Deleted, Removed: out.Removed + out.AlreadyGone, Refused: out.Refused, FailedRepositories: len(sel.Failed),
			BytesReclaimedUpperBound: sel.BytesReclaimedUpperBound,
			Partial:                  rep.Partial(), Skipped: out.Skipped,
		}
		if done.Partial {
			done.NotSwept = rep.NotSwept(100)
		}
		// Each effect is claimed on its own: a post that fails after the event went out is
		// retried without announcing the run twice.
		if _, err := store.Once(ctx, f.Store, "sweep-finish-event#"+sr.ID, f.Now(), finishClaimFor, KeepRunsFor, func() error {
			return f.Publisher.Publish(ctx, event.Message{Detail: done, Key: sr.ID, At: sr.Now})
		}); err != nil {
			return fmt.Errorf("announce the end of sweep run %s: %w", sr.ID, err)
		}
	}
	if _, err := store.Once(ctx, f.Store, "sweep-finish-post#"+sr.ID, f.Now(), finishClaimFor, KeepRunsFor, func() error {
		return f.Notifier.Notify(ctx, rep.Alert())
	}); err != nil {
		return fmt.Errorf("post the summary of sweep run %s: %w", sr.ID, err)
	}
	if f.Log != nil {
		f.Log.Info("sweep finished", "run", sr.ID, "summary", rep.Summary())
	}
	if f.OnFinish != nil {
		f.OnFinish(rep)
	}
	return nil
}

// InlineQueue hands batches straight to a worker, Concurrency at a time: the
// fan-out path in one process, for estates that fit one invocation.
type InlineQueue struct {
	Worker      *Worker
	Concurrency int
}

// Send handles every message before returning; errors are joined.
func (q *InlineQueue) Send(ctx context.Context, msgs []Message) error {
	n := max(q.Concurrency, 1)
	sem := make(chan struct{}, n)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, m := range msgs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			m.Attempt = DefaultMaxAttempts // no redelivery inline: record failures and move on
			if err := q.Worker.Handle(ctx, m); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
