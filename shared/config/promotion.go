package config

import "time"

// Promotion holds the promoter's settings.
type Promotion struct {
	// MaxAttempts is how many deliveries of one approval the promoter tries before the
	// request ends failed. The default, 3, is Lambda's asynchronous invocation: the first
	// try and its two retries (infra sets the promoter's retries to MaxAttempts-1).
	MaxAttempts int `json:"maxAttempts"`
	// FailedGrace is how long a failed promotion's digest stays protected from the
	// retention sweep, so someone can look into it and approve it again (default 7d).
	FailedGrace Duration `json:"failedGrace"`
}

// Bounds of the promotion settings.
const (
	maxPromotionAttempts = 10
	minFailedGrace       = time.Hour
	maxFailedGrace       = 365 * 24 * time.Hour
)

func (p *Promotion) applyDefaults() {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 3
	}
	if p.FailedGrace == 0 {
		p.FailedGrace = Duration(7 * 24 * time.Hour)
	}
}

func (p Promotion) validate(bad func(field, rule string, args ...any)) {
	if p.MaxAttempts < 1 || p.MaxAttempts > maxPromotionAttempts {
		bad("promotion.maxAttempts", "%d must be between 1 and %d (Lambda retries an asynchronous invocation at most twice; more attempts need a redrive)", p.MaxAttempts, maxPromotionAttempts)
	}
	if g := p.FailedGrace.D(); g < minFailedGrace || g > maxFailedGrace {
		bad("promotion.failedGrace", "%s must be between 1h and 365d: long enough to look into a failure, short enough that the image is swept eventually", p.FailedGrace)
	}
}
