// Package faults is the fault table the local AWS stand-ins share (the local ECR, the local
// ECS, Lambda and SSM): per operation, a latency, throttling above a rate, server errors and
// cut connections, drawn from a seed so a failing run can be replayed; and request counters.
package faults

import (
	"maps"
	"math/rand/v2"
	"sync"
	"time"
)

// AllOps as an operation applies a fault to every operation without one of its own.
const AllOps = "*"

// Fault describes what goes wrong for one operation. Zero values disable each part.
type Fault struct {
	// Latency is added before the request is handled (a fixed round-trip cost).
	Latency time.Duration
	// Jitter adds a further random delay in [0, Jitter) per request, drawn from the seed.
	Jitter time.Duration
	// ThrottleAbove is the number of requests per (wall-clock) second the operation accepts;
	// the rest are throttled (each server answers in its protocol's words).
	ThrottleAbove int
	// ErrorRate is the fraction of requests answered with HTTP 500.
	ErrorRate float64
	// DropRate is the fraction of requests whose connection is closed (servers that stream
	// bodies; the others ignore it).
	DropRate float64
	// DropAfterBytes, with DropRate, sends that many bytes of the response body before
	// closing the connection: a cut in the middle of a download. Zero drops before any
	// response.
	DropAfterBytes int64
}

// Decision is what happens to one request.
type Decision struct {
	Latency   time.Duration
	Throttle  bool
	Fail      bool
	Drop      bool
	DropAfter int64
}

// Table holds per-operation faults and request counters; safe for concurrent use.
type Table struct {
	mu      sync.Mutex
	rules   map[string]Fault
	counts  map[string]int
	windows map[string]*window
	rnd     *rand.Rand
}

type window struct {
	start time.Time
	n     int
}

// New returns an empty table whose random draws follow seed.
func New(seed uint64) *Table {
	return &Table{
		rules: map[string]Fault{}, counts: map[string]int{}, windows: map[string]*window{},
		rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// Admit counts a request for op and decides its fate.
func (t *Table) Admit(op string) Decision {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[op]++
	rule, ok := t.rules[op]
	if !ok {
		rule, ok = t.rules[AllOps]
	}
	if !ok {
		return Decision{}
	}
	d := Decision{Latency: rule.Latency}
	if rule.Jitter > 0 {
		d.Latency += time.Duration(t.rnd.Int64N(int64(rule.Jitter)))
	}
	if rule.ThrottleAbove > 0 {
		now := time.Now()
		w := t.windows[op]
		if w == nil || now.Sub(w.start) >= time.Second {
			w = &window{start: now}
			t.windows[op] = w
		}
		w.n++
		if w.n > rule.ThrottleAbove {
			d.Throttle = true
			return d
		}
	}
	if rule.DropRate > 0 && t.rnd.Float64() < rule.DropRate {
		d.Drop, d.DropAfter = true, rule.DropAfterBytes
		return d
	}
	if rule.ErrorRate > 0 && t.rnd.Float64() < rule.ErrorRate {
		d.Fail = true
	}
	return d
}

// Set installs f for op (or AllOps); a zero Fault removes it.
func (t *Table) Set(op string, f Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f == (Fault{}) {
		delete(t.rules, op)
		return
	}
	t.rules[op] = f
	delete(t.windows, op)
}

// Clear removes every fault.
func (t *Table) Clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rules = map[string]Fault{}
	t.windows = map[string]*window{}
}

// Count is how many requests op has received (faulted ones included).
func (t *Table) Count(op string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[op]
}

// Counts is a copy of every operation's request count.
func (t *Table) Counts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.counts)
}

// ResetCounts zeroes the request counters.
func (t *Table) ResetCounts() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts = map[string]int{}
}
