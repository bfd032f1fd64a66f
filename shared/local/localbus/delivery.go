package localbus

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Delivery is how targets receive events. The zero value delivers each event once, in
// publication order per publisher: what the demo wants. The chaos test asks for what AWS
// promises instead: at least once (duplicates, sometimes concurrent), in no particular
// order, and retried when the target fails (EventBridge hands events to Lambda's
// asynchronous queue, which retries a failing function twice: infra's RetryAttempts).
type Delivery struct {
	// Attempts is how many times a failing target is called (0 or 1: once).
	Attempts int
	// Backoff is the wait before the first retry; it doubles on each retry.
	Backoff time.Duration
	// Duplicate is the probability that a target gets an event a second time.
	Duplicate float64
	// MaxDelay is the longest random wait before a delivery, so that events published
	// close together arrive reordered.
	MaxDelay time.Duration
	// Seed makes the random choices repeatable.
	Seed uint64
}

// chance is a seeded source safe for concurrent deliveries.
type chance struct {
	mu  sync.Mutex
	rnd *rand.Rand
}

func (c *chance) float() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rnd.Float64()
}

func (c *chance) upTo(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Duration(c.rnd.Int64N(int64(d)))
}

// SetDelivery changes how targets receive the events published from now on.
func (b *Bus) SetDelivery(d Delivery) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.delivery = d
	b.chance = &chance{rnd: rand.New(rand.NewPCG(d.Seed, d.Seed^0x5851f42d4c957f2d))}
}

// deliver calls h as the bus's Delivery says and returns the last attempt's error. A
// duplicate runs on its own goroutine (Wait covers it), as a second Lambda invocation would.
func (b *Bus) deliver(ctx context.Context, d Delivery, c *chance, h Handler, event []byte) error {
	if c != nil && d.Duplicate > 0 && c.float() < d.Duplicate {
		b.inflight.Add(1)
		go func() {
			defer b.inflight.Done()
			_ = b.attempt(context.WithoutCancel(ctx), d, c, h, event)
		}()
	}
	return b.attempt(ctx, d, c, h, event)
}

func (b *Bus) attempt(ctx context.Context, d Delivery, c *chance, h Handler, event []byte) error {
	attempts := max(d.Attempts, 1)
	wait := d.Backoff
	var err error
	for i := range attempts {
		if c != nil {
			time.Sleep(c.upTo(d.MaxDelay))
		}
		if err = h(ctx, event); err == nil {
			return nil
		}
		if i+1 < attempts {
			b.log.Warn("event target failed; retrying", "attempt", i+1, "of", attempts, "error", err)
			time.Sleep(wait)
			wait *= 2
		}
	}
	return err
}
