// Package slacksig checks that a request comes from Slack: the v0 signature
// (HMAC-SHA256 of "v0:<timestamp>:<raw body>" with the app's signing secret)
// compared in constant time, and a timestamp within five minutes of now.
//
// slack-go's SecretsVerifier reads the wall clock; this verifier takes the
// clock as a function so the documented example (from 2018) can be checked.
package slacksig

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names Slack signs requests with.
const (
	HeaderSignature = "X-Slack-Signature"
	HeaderTimestamp = "X-Slack-Request-Timestamp"
)

// Window is how far a request's timestamp may be from now, either way.
const Window = 5 * time.Minute

// Refusals. Each means the request is not proven to come from Slack (HTTP 401).
var (
	ErrMissingHeaders = errors.New("the request lacks the " + HeaderSignature + " or " + HeaderTimestamp + " header")
	ErrMalformed      = errors.New("the Slack signature headers are malformed")
	ErrStale          = errors.New("the request timestamp is more than 5 minutes from now (replayed, or a clock is wrong)")
	ErrMismatch       = errors.New("the signature does not match the body and signing secret")
)

// Refused reports whether err is one of the refusals above, as opposed to a failure
// to obtain the signing secret.
func Refused(err error) bool {
	return errors.Is(err, ErrMissingHeaders) || errors.Is(err, ErrMalformed) ||
		errors.Is(err, ErrStale) || errors.Is(err, ErrMismatch)
}

// Verifier checks request signatures.
type Verifier struct {
	// Secret returns the signing secret. It is called only for requests whose headers
	// are well formed and fresh, so junk never reaches the secret store.
	Secret func(ctx context.Context) ([]byte, error)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Window overrides the 5-minute window when positive.
	Window time.Duration
}

// Verify checks headers against the raw body exactly as received.
func (v Verifier) Verify(ctx context.Context, h http.Header, body []byte) error {
	sigs, tss := h.Values(HeaderSignature), h.Values(HeaderTimestamp)
	if len(sigs) == 0 || len(tss) == 0 || sigs[0] == "" || tss[0] == "" {
		return ErrMissingHeaders
	}
	if len(sigs) > 1 || len(tss) > 1 {
		return fmt.Errorf("%w: repeated header", ErrMalformed)
	}
	mac, err := parseSignature(sigs[0])
	if err != nil {
		return err
	}
	ts, err := parseTimestamp(tss[0])
	if err != nil {
		return err
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	window := Window
	if v.Window > 0 {
		window = v.Window
	}
	if d := now().Sub(time.Unix(ts, 0)); d > window || d < -window {
		return fmt.Errorf("%w: timestamp %s is %s away", ErrStale, tss[0], d.Round(time.Second))
	}
	if v.Secret == nil {
		return errors.New("slack signature check: no signing secret configured")
	}
	secret, err := v.Secret(ctx)
	if err != nil {
		return fmt.Errorf("slack signing secret: %w", err)
	}
	if len(secret) == 0 {
		return errors.New("slack signing secret is empty")
	}
	if !hmac.Equal(mac, sum(secret, tss[0], body)) {
		return ErrMismatch
	}
	return nil
}

func parseSignature(s string) ([]byte, error) {
	hexsig, ok := strings.CutPrefix(s, "v0=")
	if !ok {
		return nil, fmt.Errorf("%w: signature does not start with v0=", ErrMalformed)
	}
	if len(hexsig) != 2*sha256.Size {
		return nil, fmt.Errorf("%w: signature is not %d hex digits", ErrMalformed, 2*sha256.Size)
	}
	mac, err := hex.DecodeString(hexsig)
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not hex", ErrMalformed)
	}
	return mac, nil
}

func parseTimestamp(s string) (int64, error) {
	// Slack sends whole epoch seconds; reject signs, spaces and fractions rather than guess.
	if len(s) > 12 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: timestamp %q is not epoch seconds", ErrMalformed, truncate(s, 32))
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: timestamp %q: %v", ErrMalformed, truncate(s, 32), err)
	}
	return ts, nil
}

func sum(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(body)
	return m.Sum(nil)
}

// Signature returns the X-Slack-Signature value for body sent at ts ("v0=<hex>").
func Signature(secret []byte, ts string, body []byte) string {
	return "v0=" + hex.EncodeToString(sum(secret, ts, body))
}

// Sign sets both headers as Slack would for body sent at now. The local stack and
// tests use it to play Slack.
func Sign(h http.Header, secret []byte, now time.Time, body []byte) {
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, Signature(secret, ts, body))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
