package approvals

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// Clicks arrive together: each defers its follow-up and a caller (the local stack, `regflow
// invoke`) waits for the follow-ups while others are being deferred. Waiting must never
// race deferring (a WaitGroup reused that way panics) and must see what was deferred before.
func TestBackgroundWaitsWhileOthersDefer(t *testing.T) {
	var ran atomic.Int64
	b := &Background{Run: func(context.Context, FollowUp) error {
		ran.Add(1)
		return nil
	}}
	var wg sync.WaitGroup
	for range 2000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Defer(context.Background(), FollowUp{}); err != nil {
				t.Error(err)
			}
			b.Wait()
		}()
	}
	wg.Wait()
	b.Wait()
	if ran.Load() != 2000 {
		t.Fatalf("%d follow-ups ran, want 2000", ran.Load())
	}
}
