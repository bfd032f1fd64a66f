package localruntime

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/regflow/regflow/shared/ecsevent"
	"github.com/regflow/regflow/shared/event"
)

// eventQueue delivers events to one subscriber in order on its own goroutine, so a
// subscriber that calls back into the server never deadlocks it.
type eventQueue struct {
	mu        sync.Mutex
	cond      *sync.Cond
	pending   [][]byte
	enqueued  uint64
	delivered uint64
	closed    bool
	deliver   func(ctx context.Context, event []byte)
	done      chan struct{}
}

func newEventQueue(deliver func(ctx context.Context, event []byte)) *eventQueue {
	q := &eventQueue{deliver: deliver, done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *eventQueue) push(ev []byte) {
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

func (q *eventQueue) run(ctx context.Context) {
	defer close(q.done)
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
		q.pending = q.pending[1:]
		q.mu.Unlock()
		q.deliver(ctx, ev)
		q.mu.Lock()
		q.delivered++
		q.cond.Broadcast()
		q.mu.Unlock()
	}
}

func (q *eventQueue) wait(ctx context.Context) error {
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
	for !q.closed && q.delivered < target {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for %d undelivered ECS events: %w", target-q.delivered, err)
		}
		q.cond.Wait()
	}
	return nil
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.pending = nil
	q.cond.Broadcast()
	q.mu.Unlock()
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// deploymentDetail is the detail ECS sends, field for field as in its samples.
type deploymentDetail struct {
	EventType    string `json:"eventType"`
	EventName    string `json:"eventName"`
	DeploymentID string `json:"deploymentId"`
	UpdatedAt    string `json:"updatedAt"`
	Reason       string `json:"reason"`
}

// emitDeployment queues an "ECS Deployment State Change" for a service (s.mu held).
func (s *Server) emitDeployment(serviceARN, name, deploymentID, reason string, at time.Time) {
	if s.opts.OnEvent == nil {
		return
	}
	typ := ecsevent.TypeInfo
	if name == ecsevent.Failed {
		typ = ecsevent.TypeError
	}
	d, err := json.Marshal(deploymentDetail{EventType: typ, EventName: name, DeploymentID: deploymentID, UpdatedAt: at.UTC().Format(time.RFC3339), Reason: reason})
	if err != nil {
		s.log.Error("encode ECS event detail", "err", err)
		return
	}
	ev, err := json.Marshal(event.Envelope{
		Version: "0", ID: newUUID(), DetailType: event.TypeECSDeployment, Source: event.SourceECS,
		AccountID: s.account, Time: at.UTC().Truncate(time.Second), Region: s.region,
		Resources: []string{serviceARN}, Detail: d,
	})
	if err != nil {
		s.log.Error("encode ECS event", "err", err)
		return
	}
	s.events.push(ev)
}
