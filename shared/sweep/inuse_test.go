package sweep_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/retention"
	"github.com/regflow/regflow/shared/sweep"
)

// running is a fake InUse (the port of a pure use case): what the account runs, or an
// error, and how often it was read.
type running struct {
	uses  []sweep.Use
	err   error
	reads atomic.Int32
}

func (r *running) Running(context.Context) ([]sweep.Use, error) {
	r.reads.Add(1)
	return r.uses, r.err
}

func (r *running) source() sweep.InUseSource {
	return func(context.Context, sweep.Target) (sweep.InUse, error) { return r, nil }
}

// TestSweepKeepsWhatRuns: expired images no pointer protects survive when an ECS task
// runs them (by digest), a service's task definition names them by tag, or a Lambda
// alias runs them; the reason says where; the report lists them as drift; a failed read
// deletes nothing in the registry; a setup without reads sweeps as before and says so.
func TestSweepKeepsWhatRuns(t *testing.T) {
	tests := []struct {
		name string
		// uses get the estate's digests by tag name (v3, v4, v6 are expired, unprotected).
		uses   func(d map[string]string) []sweep.Use
		err    error
		dryRun bool
		kept   map[string]string // tag → reason
		// followers are kept with what runs (v4's signature).
		followers int
		drift     int
		failed    bool
		notRead   bool
	}{
		{
			name: "ECS task, service by tag, Lambda",
			uses: func(d map[string]string) []sweep.Use {
				return []sweep.Use{
					{Repository: "team/app", Digest: d["v3"], Where: "ECS service prod/web", Tasks: 1},
					{Repository: "team/app", Digest: d["v3"], Where: "ECS service prod/web", Tasks: 1},
					{Repository: "team/app", Digest: d["v3"], Where: "ECS service prod/web", Tasks: 1},
					{Repository: "team/app", Digest: d["v3"], Where: "ECS service prod/web"},
					{Repository: "team/app", Tag: "v4", Where: "ECS service prod/worker"},
					{Repository: "team/app", Digest: d["v6"], Where: "Lambda function api:live"},
					{Repository: "team/app", Digest: d["v1"], Where: "ECS service prod/api", Tasks: 2}, // the current release: no drift
					{Repository: "team/app", Tag: "nope", Where: "ECS service prod/gone"},              // a tag the listing lacks
					{Repository: "team/other", Digest: d["v5"], Where: "ECS service prod/elsewhere"},   // another repository
				}
			},
			kept: map[string]string{
				"v3": "kept: running in ECS service prod/web, 3 tasks",
				"v4": "kept: running in ECS service prod/worker",
				"v6": "kept: running in Lambda function api:live",
			},
			drift:     3,
			followers: 1,
		},
		{
			name: "the dry run's report is the same",
			uses: func(d map[string]string) []sweep.Use {
				return []sweep.Use{{Repository: "team/app", Digest: d["v3"], Where: "ECS task batch/report", Tasks: 1}}
			},
			dryRun: true,
			kept:   map[string]string{"v3": "kept: running in ECS task batch/report, 1 task"},
			drift:  1,
		},
		{
			name:   "a failed read deletes nothing",
			err:    errors.New("AccessDeniedException: not authorized to perform ecs:ListTasks"),
			failed: true,
		},
		{
			name:    "no reads in this setup: swept as before, and said",
			err:     fmt.Errorf("local dev: %w", sweep.ErrNoInUse),
			notRead: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			d := map[string]string{}
			for _, img := range e.listing(t) {
				for _, tag := range img.Tags {
					d[tag] = img.Digest
				}
			}
			r := &running{err: tc.err}
			if tc.uses != nil {
				r.uses = tc.uses(d)
			}
			s := e.sweeper()
			s.InUse = r.source()
			rep := e.run(t, s, e.registry(), sweep.Run{ID: "inuse", Now: now, DryRun: tc.dryRun})
			rr := rep.Registries[0]
			present := e.present(t)
			if tc.failed {
				if rr.Outcome.Removed != 0 || len(present) != len(e.kept)+len(e.protected)+len(e.deleted) {
					t.Fatalf("removed %d with what runs unknown", rr.Outcome.Removed)
				}
				if len(rr.Report.Failed) != 1 || !strings.Contains(rr.Report.Failed[0].Error, "deletes nothing") || !strings.Contains(rr.Report.Failed[0].Error, "ecs:ListTasks") {
					t.Fatalf("failures %+v: want team/app failed, saying why", rr.Report.Failed)
				}
				return
			}
			if len(rr.Report.Failed) != 0 {
				t.Fatalf("failed: %+v", rr.Report.Failed)
			}
			if got := rr.InUseNotRead != ""; got != tc.notRead {
				t.Errorf("in use not read = %q", rr.InUseNotRead)
			}
			byDigest := map[string]retention.Decision{}
			for _, dec := range rr.Report.Decisions {
				byDigest[dec.Digest] = dec
			}
			for tag, why := range tc.kept {
				dec := byDigest[d[tag]]
				if dec.Action != retention.Keep || dec.Code != retention.CodeInUse || dec.Reason != why {
					t.Errorf("%s: %s %s %q, want kept %q", tag, dec.Action, dec.Code, dec.Reason, why)
				}
				if !present[d[tag]] {
					t.Errorf("%s was deleted while it runs", tag)
				}
			}
			wantGone := len(e.deleted) - len(tc.kept) - tc.followers
			if tc.dryRun {
				wantGone = 0
			}
			if got := gone(rr.Outcome); got != wantGone {
				t.Errorf("removed %d, want %d", got, wantGone)
			}
			if len(rr.Drift) != tc.drift {
				t.Errorf("drift %+v, want %d entries", rr.Drift, tc.drift)
			}
			if tc.drift > 0 && !strings.Contains(rep.Summary(), "no release pointer names (drift)") {
				t.Errorf("summary %q does not mention drift", rep.Summary())
			}
			if r.reads.Load() != 1 {
				t.Errorf("read what runs %d times, want once per registry", r.reads.Load())
			}
		})
	}
}

// TestFanOutReadsWhatRunsOncePerRegistry: the planner reads what runs once per registry
// and every batch keeps it; when that read fails the registry sends no batch and deletes
// nothing, and the report says why.
func TestFanOutReadsWhatRunsOncePerRegistry(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprint("fail=", fail), func(t *testing.T) {
			e := newEstate(t)
			d := map[string]string{}
			for _, img := range e.listing(t) {
				for _, tag := range img.Tags {
					d[tag] = img.Digest
				}
			}
			r := &running{uses: []sweep.Use{{Repository: "team/app", Digest: d["v3"], Where: "ECS service prod/web", Tasks: 2}}}
			if fail {
				r.err = errors.New("ThrottlingException: Rate exceeded")
			}
			ctx := context.Background()
			var got *sweep.Report
			finisher := &sweep.Finisher{Store: e.store, Notifier: notifierFunc(func(string) {}), Now: time.Now, OnFinish: func(rep *sweep.Report) { got = rep }}
			registries := func(context.Context, sweep.Target) (sweep.Registry, error) { return e.registry(), nil }
			s := e.sweeper()
			s.InUse = r.source()
			worker := &sweep.Worker{Sweeper: s, Registries: registries, Protection: e.store, Store: e.store, Finisher: finisher}
			planner := &sweep.Planner{
				Targets: []sweep.Target{target}, Sweeper: s, Registries: registries, Store: e.store,
				Queue: &sweep.InlineQueue{Worker: worker, Concurrency: 1}, Finisher: finisher, Now: time.Now,
			}
			if _, err := planner.Plan(ctx, sweep.Run{ID: "fan-inuse", Now: now}); err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("the run did not finish")
			}
			if r.reads.Load() != 1 {
				t.Errorf("read what runs %d times, want once", r.reads.Load())
			}
			rr := got.Registries[0]
			if fail {
				if rr.Outcome.Removed != 0 || len(e.present(t)) != len(e.kept)+len(e.protected)+len(e.deleted) {
					t.Fatal("deleted with what runs unknown")
				}
				if len(rr.Report.Failed) != 1 || !strings.Contains(rr.Report.Failed[0].Error, "deletes nothing") {
					t.Fatalf("failures %+v", rr.Report.Failed)
				}
				return
			}
			if !e.present(t)[d["v3"]] || gone(rr.Outcome) != len(e.deleted)-1 || len(rr.Drift) != 1 {
				t.Fatalf("outcome %+v drift %+v: want all but v3 deleted, v3 as drift", rr.Outcome, rr.Drift)
			}
		})
	}
}

// listing is the estate's repository as ECR lists it.
func (e *estate) listing(t *testing.T) []retention.Image {
	t.Helper()
	imgs, err := e.registry().ListImages(context.Background(), e.repo)
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}
