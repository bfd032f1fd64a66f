package sweep_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/sweep"
)

type countingBus struct {
	mu sync.Mutex
	n  map[string]int
}

func (b *countingBus) Publish(_ context.Context, m event.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n[m.DetailType()]++
	return nil
}

type flakyNotifier struct {
	mu           sync.Mutex
	fail, posted int
}

func (n *flakyNotifier) Notify(context.Context, regflow.Alert) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail > 0 {
		n.fail--
		return errors.New("post alert to Slack: context deadline exceeded")
	}
	n.posted++
	return nil
}

// A run's end is announced once and posted once, even when the post fails after the event
// went out and the finish is tried again (found by the chaos test: two summaries).
func TestRunEndAnnouncedOnceWhenThePostFails(t *testing.T) {
	ctx := context.Background()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := func() time.Time { return now }
	bus, slack := &countingBus{n: map[string]int{}}, &flakyNotifier{fail: 1}
	f := &sweep.Finisher{Store: st, Publisher: bus, Notifier: slack, Now: clock}
	p := &sweep.Planner{Store: st, Finisher: f, Queue: &sweep.InlineQueue{}, Now: clock}
	run := sweep.Run{ID: "run-once", Now: now}
	if _, err := p.Plan(ctx, run); err == nil {
		t.Fatal("the failed post must be retried")
	}
	if _, err := p.Plan(ctx, run); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Plan(ctx, run); err != nil {
		t.Fatal(err)
	}
	if n := bus.n[event.TypeRetentionSweepCompleted]; n != 1 || slack.posted != 1 {
		t.Fatalf("%d Retention Sweep Completed events, %d summaries posted; want 1 and 1", n, slack.posted)
	}
}
