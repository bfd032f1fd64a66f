package localecr

import (
	"sync"
	"time"
)

// Clock is the time source of one or more local ECR servers. Tests move it to
// make images old (imagePushedAt, lastRecordedPullTime, event times) without
// waiting. It is safe for concurrent use; share one Clock between the servers
// of a local stack so that all accounts agree on "now".
type Clock struct {
	mu     sync.Mutex
	frozen bool
	at     time.Time     // the frozen time
	offset time.Duration // added to the wall clock when not frozen
}

// NewClock returns a clock that follows the wall clock until it is moved;
// SetNow and Advance shift it while it keeps running.
func NewClock() *Clock { return &Clock{} }

// FixedClock returns a clock stopped at t; only SetNow and Advance move it.
func FixedClock(t time.Time) *Clock { return &Clock{frozen: true, at: t} }

// Now returns the clock's current time in UTC.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		return c.at.UTC()
	}
	return time.Now().Add(c.offset).UTC()
}

// SetNow moves the clock to t.
func (c *Clock) SetNow(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		c.at = t
		return
	}
	c.offset = time.Until(t)
}

// Advance moves the clock forward by d (backward when d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		c.at = c.at.Add(d)
		return
	}
	c.offset += d
}
