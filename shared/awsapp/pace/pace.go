// Package pace is regflow's AWS retry strategy: the SDK's standard retries with a
// client-side pacer per operation that learns the service's rate from its throttle
// responses. A client starts unpaced; once an operation is throttled it sends at
// most as many attempts in any one-second window as succeeded in the second before
// the throttle (minus one), evenly spaced, and probes upward slowly while nothing
// is throttled. Retrying into a throttle costs a request and buys nothing; waiting
// for the next slot costs only time.
//
// The SDK's adaptive mode (retry.NewAdaptiveMode) paces too, but with one rate for
// every operation of a client and a CUBIC probe that overshoots the limit every few
// seconds: on the sweep benchmark's throttled run (make bench-sweep) it made 4-5%
// more ECR requests than the unthrottled minimum and took twice as long as this.
package pace

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// Tuning, fixed: the pacer has no knobs to get wrong.
const (
	// window is the span the pacer counts attempts over: AWS quotes API rates per second.
	window = time.Second
	// probeAfter is how long an operation must go unthrottled, while the pacer made it
	// wait, before its limit rises by a tenth (at least one).
	probeAfter = 10 * time.Second
	// forgetAfter: an operation not throttled for this long is unpaced again.
	forgetAfter = 5 * time.Minute
	// throttleDelay replaces the backoff after a throttle: the pacer's wait is the backoff.
	throttleDelay = 10 * time.Millisecond
)

// Options shape a Retryer.
type Options struct {
	// MaxAttempts per call, the first included (default 6).
	MaxAttempts int
	// MaxBackoff caps the standard backoff after other retryable errors (default 20 s).
	MaxBackoff time.Duration
	// Clock and Sleep are for tests (default: the wall clock).
	Clock func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// New returns a constructor for aws.Config.Retryer: each client gets its own
// Retryer, so operations are paced per client (one client per registry, table...).
func New(o Options) func() aws.Retryer {
	return func() aws.Retryer { return NewRetryer(o) }
}

// NewRetryer builds one Retryer. The standard retry quota is off: under sustained
// throttling it runs dry and fails calls that a paced retry completes.
func NewRetryer(o Options) *Retryer {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 20 * time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return &Retryer{
		std: retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = o.MaxAttempts
			so.MaxBackoff = o.MaxBackoff
			so.RateLimiter = ratelimit.None
		}),
		throttles: retry.IsErrorThrottles(retry.DefaultThrottles),
		opts:      o,
		ops:       map[string]*pacer{},
	}
}

// Retryer is an aws.RetryerV2.
type Retryer struct {
	std       *retry.Standard
	throttles retry.IsErrorThrottles
	opts      Options

	mu  sync.Mutex
	ops map[string]*pacer
}

var _ aws.RetryerV2 = (*Retryer)(nil)

// IsErrorRetryable is the standard retryer's answer.
func (r *Retryer) IsErrorRetryable(err error) bool { return r.std.IsErrorRetryable(err) }

// MaxAttempts per call.
func (r *Retryer) MaxAttempts() int { return r.std.MaxAttempts() }

// RetryDelay is the standard backoff, except after a throttle: then the next
// attempt waits for its slot in GetAttemptToken instead.
func (r *Retryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	if r.throttled(err) {
		return throttleDelay, nil
	}
	return r.std.RetryDelay(attempt, err)
}

// GetRetryToken is the standard retryer's (no quota).
func (r *Retryer) GetRetryToken(ctx context.Context, err error) (func(error) error, error) {
	return r.std.GetRetryToken(ctx, err)
}

// GetInitialToken is required by aws.Retryer; the SDK calls GetAttemptToken.
func (r *Retryer) GetInitialToken() func(error) error { return func(error) error { return nil } }

// GetAttemptToken waits for the operation's next slot, then lets the attempt go;
// its release learns from the attempt's outcome.
func (r *Retryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	p := r.pacer(middleware.GetOperationName(ctx))
	at, err := p.reserve(r.opts.Clock())
	if err != nil {
		return nil, err
	}
	if d := at.Sub(r.opts.Clock()); d > 0 {
		if err := r.opts.Sleep(ctx, d); err != nil {
			return nil, fmt.Errorf("wait for the paced slot of %s: %w", p.op, err)
		}
	}
	release, err := r.std.GetAttemptToken(ctx)
	if err != nil {
		return nil, err
	}
	return func(opErr error) error {
		p.record(r.opts.Clock(), r.throttled(opErr))
		return release(opErr)
	}, nil
}

func (r *Retryer) throttled(err error) bool {
	return err != nil && r.throttles.IsErrorThrottle(err).Bool()
}

func (r *Retryer) pacer(op string) *pacer {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.ops[op]
	if p == nil {
		p = &pacer{op: op}
		r.ops[op] = p
	}
	return p
}

// Limit reports an operation's learned limit (attempts per second; 0: unpaced).
func (r *Retryer) Limit(op string) int {
	p := r.pacer(op)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limit
}

// pacer paces one operation of one client.
type pacer struct {
	op string

	mu sync.Mutex
	// limit is the most attempts in any window; 0 means unpaced.
	limit int
	// slots are the times of the last `limit` attempts (reserved or sent), oldest first.
	slots []time.Time
	// successes are recent successful attempts' completion times, for learning.
	successes []time.Time
	// lastThrottle and lastProbe date the last limit changes; waited says the limit
	// held an attempt back since, so raising it could matter.
	lastThrottle, lastProbe time.Time
	waited                  bool
}

// reserve returns when the next attempt may be sent, and counts it in the window.
func (p *pacer) reserve(now time.Time) (time.Time, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limit == 0 {
		return now, nil
	}
	if now.Sub(p.lastThrottle) > forgetAfter {
		p.limit, p.slots = 0, nil
		return now, nil
	}
	if p.waited && now.Sub(p.lastThrottle) > probeAfter && now.Sub(p.lastProbe) > probeAfter {
		p.limit += max(1, p.limit/10)
		p.lastProbe, p.waited = now, false
	}
	at := now
	if n := len(p.slots); n > 0 {
		// Evenly spaced, and never more than limit in one window.
		at = later(at, p.slots[n-1].Add(window/time.Duration(p.limit)))
		if n >= p.limit {
			at = later(at, p.slots[n-p.limit].Add(window))
		}
	}
	if at.After(now) {
		p.waited = true
	}
	p.slots = append(p.slots, at)
	if len(p.slots) > p.limit {
		p.slots = append(p.slots[:0], p.slots[len(p.slots)-p.limit:]...)
	}
	return at, nil
}

// record learns from an attempt's outcome: a throttle sets the limit to the
// successes of the last window, less one, unless a throttle already did within it.
func (p *pacer) record(now time.Time, throttled bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cut := 0
	for cut < len(p.successes) && now.Sub(p.successes[cut]) > window {
		cut++
	}
	p.successes = p.successes[cut:]
	if !throttled {
		p.successes = append(p.successes, now)
		return
	}
	if p.limit > 0 && now.Sub(p.lastThrottle) < window {
		return // the same overshoot, already learned from
	}
	limit := max(1, len(p.successes)-1)
	if p.limit > 0 {
		limit = min(limit, p.limit)
	}
	p.limit, p.lastThrottle, p.lastProbe = limit, now, now
	// Count the window's attempts against the new limit: the next slot comes only
	// once the window that just overflowed has passed.
	if len(p.slots) == 0 || len(p.slots) < limit {
		p.slots = append(p.slots, p.successes...)
	}
	if len(p.slots) > limit {
		p.slots = p.slots[len(p.slots)-limit:]
	}
	slices.SortFunc(p.slots, time.Time.Compare)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
