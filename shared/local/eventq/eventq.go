// Package eventq delivers a local AWS stand-in's events (the local ECR's, the local ECS's)
// to one subscriber, in order, on a goroutine of its own, so a subscriber that calls back
// into the server never deadlocks it; and lets a caller wait until what was emitted so far
// (and what running background work will emit) has been delivered.
package eventq

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
)

// Queue is one subscriber's queue. Deliver nil drops every event.
type Queue struct {
	mu        sync.Mutex
	cond      *sync.Cond
	pending   [][]byte
	enqueued  uint64
	delivered uint64
	// producing counts background work (scans) that will push an event: waiters wait for
	// it too, or work finishing after the wait would emit into a settled stack.
	producing int
	closed    bool
	deliver   func(ctx context.Context, event []byte)
	// Done is closed when Run returns.
	Done chan struct{}
	// what names the events in errors ("ECR events").
	what string
}

// New returns a queue delivering to deliver; what names the events in errors.
func New(what string, deliver func(ctx context.Context, event []byte)) *Queue {
	q := &Queue{deliver: deliver, Done: make(chan struct{}), what: what}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Push queues ev.
func (q *Queue) Push(ev []byte) {
	if q.deliver == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.pending = append(q.pending, ev)
	q.enqueued++
	q.cond.Broadcast()
}

// Run delivers events until Close; ctx is handed to the subscriber.
func (q *Queue) Run(ctx context.Context) {
	defer close(q.Done)
	for {
		q.mu.Lock()
		for len(q.pending) == 0 && !q.closed {
			q.cond.Wait()
		}
		if q.closed {
			q.mu.Unlock()
			return
		}
		ev := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		q.mu.Unlock()

		q.deliver(ctx, ev)

		q.mu.Lock()
		q.delivered++
		q.cond.Broadcast()
		q.mu.Unlock()
	}
}

// Wait blocks until every event queued before the call, and every event pushed by work
// running meanwhile (Produce), has been delivered.
func (q *Queue) Wait(ctx context.Context) error {
	q.mu.Lock()
	target := q.enqueued
	q.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	producing := false
	for !q.closed {
		if q.producing > 0 {
			producing = true
		} else {
			if producing {
				target, producing = max(target, q.enqueued), false
			}
			if q.delivered >= target {
				return nil
			}
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for %d undelivered %s: %w", target-min(target, q.delivered), q.what, err)
		}
		q.cond.Wait()
	}
	return nil
}

// Produce marks background work that will push events; call the returned func when done.
func (q *Queue) Produce() func() {
	q.mu.Lock()
	q.producing++
	q.mu.Unlock()
	return func() {
		q.mu.Lock()
		q.producing--
		q.cond.Broadcast()
		q.mu.Unlock()
	}
}

// Close stops delivery and drops what is pending.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.pending = nil
	q.cond.Broadcast()
	q.mu.Unlock()
}

// NewID is a random (version 4) UUID, as EventBridge event ids are.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
