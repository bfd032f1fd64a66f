package sweep

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/regflow/regflow/shared/event"
)

// Trigger is what starts a sweep: EventBridge's scheduled event, or a hand-made
// invocation whose detail asks for a dry run or another time.
type Trigger struct {
	ID         string             `json:"id,omitempty"`
	DetailType string             `json:"detail-type"`
	Time       time.Time          `json:"time"`
	Detail     event.SweepRequest `json:"detail"`
}

// TimeTolerance is how far a real run's time may be from its trigger's, and its
// trigger's from the clock: EventBridge stamps a scheduled event with the minute it fires.
const TimeTolerance = time.Minute

// RunFromEvent derives the run from a trigger event. The run ID comes from the
// event's time, so a redelivered schedule event names the same run and sweeps
// nothing twice. dryRun is the config's default (retention.dryRun); clock is now.
//
// A real run measures ages at its trigger's own time, and that time may not lie
// ahead of the clock: a later time makes every image look old and every pending
// request expired. A trigger delivered late still runs (an earlier time keeps more).
// A dry run may preview any time.
func RunFromEvent(raw []byte, dryRun bool, clock time.Time) (Run, error) {
	var t Trigger
	if err := json.Unmarshal(raw, &t); err != nil {
		return Run{}, fmt.Errorf("sweep trigger is not a scheduled event: %w", err)
	}
	if t.Time.IsZero() {
		return Run{}, fmt.Errorf("sweep trigger has no time: send EventBridge's scheduled event, or {\"time\": \"2026-11-27T03:00:00Z\", \"detail\": {\"dryRun\": true}}")
	}
	run := Run{Now: t.Time.UTC(), DryRun: dryRun}
	if t.Detail.DryRun != nil {
		run.DryRun = *t.Detail.DryRun
	}
	if !t.Detail.Now.IsZero() {
		run.Now = t.Detail.Now.UTC()
	}
	if !run.DryRun {
		if d := run.Now.Sub(t.Time); d > TimeTolerance || d < -TimeTolerance {
			return Run{}, fmt.Errorf("refusing a real sweep at %s: a sweep that deletes measures ages at its trigger's time (%s, ±%s); to preview another time send \"detail\": {\"dryRun\": true, \"now\": %q}",
				run.Now.Format(time.RFC3339), t.Time.UTC().Format(time.RFC3339), TimeTolerance, run.Now.Format(time.RFC3339))
		}
		if ahead := t.Time.Sub(clock); ahead > TimeTolerance {
			return Run{}, fmt.Errorf("refusing a real sweep triggered for %s: that is %s in the future of this function's clock (%s); a sweep that deletes runs at the time it is triggered, a preview needs \"detail\": {\"dryRun\": true}",
				t.Time.UTC().Format(time.RFC3339), ahead.Round(time.Second), clock.UTC().Format(time.RFC3339))
		}
	}
	run.ID = RunID(t.Time, run)
	return run, nil
}

// RunID names a run by when it was triggered, with the mode and any preview time,
// so a dry run and a real run of the same minute never share counters.
func RunID(triggered time.Time, run Run) string {
	id := "sweep-" + triggered.UTC().Format("20060102T150405Z")
	if !run.Now.Equal(triggered.UTC()) {
		id += "-at-" + run.Now.UTC().Format("20060102T150405Z")
	}
	if run.DryRun {
		id += "-dry"
	}
	return id
}
