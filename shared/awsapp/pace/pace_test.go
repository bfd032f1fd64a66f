package pace

import (
	"testing"
	"time"
)

// fixedWindow is a service that takes limit requests per window, counting every
// request (throttled ones too), as the local ECR's throttle does.
type fixedWindow struct {
	limit int
	start time.Time
	n     int
}

func (f *fixedWindow) call(at time.Time) (throttled bool) {
	if at.Sub(f.start) >= window {
		f.start, f.n = at, 0
	}
	f.n++
	return f.n > f.limit
}

// TestPacerLearnsTheLimit drives one operation's pacer on a simulated clock against
// services of several limits, with callers always ready: after the first overshoot
// the pacer holds every window to what succeeded, so over a minute of calls few
// requests are throttled (under 1%): the first overshoot and one per probe.
func TestPacerLearnsTheLimit(t *testing.T) {
	for _, c := range []struct {
		limit     int
		latency   time.Duration
		maxExtra  int
		minCalls  int
		wantLimit [2]int
	}{
		{limit: 20, latency: 10 * time.Millisecond, maxExtra: 12, minCalls: 1000, wantLimit: [2]int{18, 22}},
		{limit: 5, latency: 50 * time.Millisecond, maxExtra: 10, minCalls: 250, wantLimit: [2]int{4, 6}},
		{limit: 200, latency: 2 * time.Millisecond, maxExtra: 120, minCalls: 10000, wantLimit: [2]int{180, 220}},
	} {
		t.Run("", func(t *testing.T) {
			p := &pacer{op: "DescribeImages"}
			svc := &fixedWindow{limit: c.limit}
			now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
			end := now.Add(time.Minute)
			ok, throttled := 0, 0
			for now.Before(end) {
				at, err := p.reserve(now)
				if err != nil {
					t.Fatal(err)
				}
				now = later(now, at)
				th := svc.call(now)
				now = now.Add(c.latency)
				p.record(now, th)
				if th {
					throttled++
				} else {
					ok++
				}
			}
			t.Logf("limit %d/s: %d calls, %d throttled, learned %d/s", c.limit, ok, throttled, p.limit)
			if throttled > c.maxExtra || ok < c.minCalls {
				t.Errorf("%d throttled (at most %d) for %d calls (at least %d)", throttled, c.maxExtra, ok, c.minCalls)
			}
			if p.limit < c.wantLimit[0] || p.limit > c.wantLimit[1] {
				t.Errorf("learned %d/s, want %d..%d", p.limit, c.wantLimit[0], c.wantLimit[1])
			}
		})
	}
}

// TestPacerForgets: an operation not throttled for five minutes is unpaced again,
// and one never throttled is never held back.
func TestPacerForgets(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	p := &pacer{}
	for i := range 50 {
		if at, _ := p.reserve(now); at.After(now) {
			t.Fatalf("call %d held back before any throttle", i)
		}
		p.record(now, false)
	}
	p.record(now, true)
	if p.limit != 49 {
		t.Fatalf("limit %d after 50 successes and a throttle, want 49", p.limit)
	}
	if at, _ := p.reserve(now); !at.After(now) {
		t.Fatal("the call right after a throttle went at once")
	}
	later := now.Add(forgetAfter + time.Second)
	if at, _ := p.reserve(later); at.After(later) || p.limit != 0 {
		t.Fatalf("still paced (%d/s) five minutes after the last throttle", p.limit)
	}
}
