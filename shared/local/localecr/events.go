package localecr

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/regflow/regflow/shared/event"
)

// Actions the local ECR reports in "ECR Image Action" events, spelled as ECR does.
const (
	actionPush   = "PUSH"
	actionDelete = "DELETE"
)

// ImageActionDetail is the detail of an "ECR Image Action" event. ImageTag is
// omitted for a manifest pushed or deleted without a tag.
type ImageActionDetail struct {
	Result         string `json:"result"`
	RepositoryName string `json:"repository-name"`
	ImageDigest    string `json:"image-digest"`
	ActionType     string `json:"action-type"`
	ImageTag       string `json:"image-tag,omitempty"`
}

// ImageScanDetail is the detail of an "ECR Image Scan" (basic scan) event.
// FindingSeverityCounts lists only the severities that have findings.
type ImageScanDetail struct {
	ScanStatus            string         `json:"scan-status"`
	RepositoryName        string         `json:"repository-name"`
	FindingSeverityCounts map[string]int `json:"finding-severity-counts"`
	ImageDigest           string         `json:"image-digest"`
	ImageTags             []string       `json:"image-tags"`
}

// eventQueue delivers events to one subscriber in order on its own goroutine,
// so a subscriber that calls back into the server never deadlocks it.
type eventQueue struct {
	mu        sync.Mutex
	cond      *sync.Cond
	pending   [][]byte
	enqueued  uint64
	delivered uint64
	// producing counts background work (scans) that will enqueue an event: waiters wait
	// for it too, or a scan finishing after the wait would emit into a settled stack.
	producing int
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

// run delivers events until close; ctx is handed to the subscriber.
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

// wait blocks until every event queued before the call has been delivered.
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
	// A scan still running enqueues its event before it finishes: once none runs, wait for
	// what they enqueued too.
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
			return fmt.Errorf("waiting for %d undelivered ECR events: %w", target-min(target, q.delivered), err)
		}
		q.cond.Wait()
	}
	return nil
}

// produce marks background work that will enqueue events; call the returned func when done.
func (q *eventQueue) produce() func() {
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

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.pending = nil
	q.cond.Broadcast()
	q.mu.Unlock()
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (s *Server) emit(detailType string, resources []string, detail any) {
	if s.opts.OnEvent == nil {
		return
	}
	d, err := json.Marshal(detail)
	if err != nil {
		s.log.Error("encode ECR event detail", "err", err)
		return
	}
	if resources == nil {
		resources = []string{}
	}
	// Whole seconds in the clock's zone, as RFC 3339 without fractions.
	ev, err := json.Marshal(event.Envelope{
		Version:    "0",
		ID:         newEventID(),
		DetailType: detailType,
		Source:     event.SourceECR,
		AccountID:  s.account,
		Time:       s.clock.Now().Truncate(time.Second),
		Region:     s.region,
		Resources:  resources,
		Detail:     d,
	})
	if err != nil {
		s.log.Error("encode ECR event", "err", err)
		return
	}
	s.events.push(ev)
}

func (s *Server) emitImageAction(action, repo, digest, tag string) {
	s.emit(event.TypeImageAction, nil, ImageActionDetail{
		Result: "SUCCESS", RepositoryName: repo, ImageDigest: digest, ActionType: action, ImageTag: tag,
	})
}

func (s *Server) emitScan(repo, digest string, tags []string, counts map[string]int) {
	nonZero := map[string]int{}
	for sev, n := range counts {
		if n > 0 {
			nonZero[sev] = n
		}
	}
	if tags == nil {
		tags = []string{}
	}
	s.emit(event.TypeImageScan, []string{s.repoARN(repo)}, ImageScanDetail{
		ScanStatus: "COMPLETE", RepositoryName: repo, FindingSeverityCounts: nonZero, ImageDigest: digest, ImageTags: tags,
	})
}

// WaitEvents blocks until every event emitted before the call has been handed
// to OnEvent (and OnEvent returned), or ctx ends.
func (s *Server) WaitEvents(ctx context.Context) error { return s.events.wait(ctx) }
