package approvals

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/regflow/regflow/shared/regflow"
)

// Answer first. Slack drops an interaction that is not answered within 3 s, and its own
// API can take seconds. So a click's answer waits only for what must be true before it
// goes out (the decision or vote written, its audit entry, its event); the entry of a
// refused click (it changed nothing), the reply through response_url and the rewrite
// of the approval message are a FollowUp, handed to a Deferrer and done after the
// answer: the entries first, then the reply and the message side by side, each with
// its own deadline. (Refusals are most clicks in a rush: 199 of 200 people find the
// request decided. Their entries off the answer path leave it one store read.)
//
// In Lambda behind API Gateway's proxy integration the response leaves only when the
// handler returns, and the execution environment is frozen right after: a goroutine
// left running would stall until some later invocation thaws it, its deadlines long
// gone. So the function hands the follow-up to a new asynchronous invocation of
// itself (awsapp's self-invoker: Lambda queues the event, the call returns in tens of
// milliseconds), which runs it with a whole invocation's time. Anything that runs for
// longer than one request (the local stack, tests) uses Background. Only if handing
// off fails does the handler run the follow-up before answering, bounded by
// InlineBudget, so the answer is late at worst, never lost.
//
// A follow-up is safe to run twice: entries have deterministic ids, the message is
// rewritten from the stored request (only while it is in the status the follow-up
// names), and a failed entry returns an error before the reply is sent, so the retry
// Lambda makes sends it once. It is accepted only under a MAC with the signing secret,
// which only this function reads: whoever else may invoke it cannot forge entries or
// replies (a reply goes only to Slack's response_url hosts anyway).

// FollowUpKind marks a follow-up event, so the approvals function tells it from an API
// Gateway request.
const FollowUpKind = "regflow.approvals.followUp"

// FollowUp is the Slack work after a click's answer.
type FollowUp struct {
	Kind string `json:"kind"`
	// RequestID and Status name a request whose Slack message is rewritten from its
	// stored state, if it is still in Status.
	RequestID string `json:"requestId,omitempty"`
	Status    string `json:"status,omitempty"`
	// ResponseURL and Text are the reply to the clicking user.
	ResponseURL string `json:"responseUrl,omitempty"`
	Text        string `json:"text,omitempty"`
	// Audit are entries to write before anything else (Outcome.Pending).
	Audit []regflow.AuditEntry `json:"audit,omitempty"`
	// MAC authenticates the rest (Seal, Open).
	MAC string `json:"mac,omitempty"`
}

func (f FollowUp) empty() bool {
	return f.RequestID == "" && len(f.Audit) == 0 && (f.ResponseURL == "" || f.Text == "")
}

// ErrForgedFollowUp refuses a follow-up event that does not carry this function's MAC.
var ErrForgedFollowUp = errors.New("follow-up event not sealed with the signing secret; ignored")

// mac is HMAC-SHA256 under key over f without its MAC, domain-separated from Slack's own
// signatures made with the same secret.
func (f FollowUp) mac(key []byte) (string, error) {
	f.MAC = ""
	b, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("encode the click's follow-up: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("regflow-followup:v1:"))
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil)), nil
}

// Seal sets f's MAC.
func (f FollowUp) Seal(key []byte) (FollowUp, error) {
	mac, err := f.mac(key)
	f.MAC = mac
	return f, err
}

// Open checks f's MAC.
func (f FollowUp) Open(key []byte) error {
	want, err := f.mac(key)
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(want), []byte(f.MAC)) {
		return ErrForgedFollowUp
	}
	return nil
}

// ParseFollowUp reports whether raw is a follow-up event and decodes it.
func ParseFollowUp(raw []byte) (FollowUp, bool) {
	var f FollowUp
	if err := json.Unmarshal(raw, &f); err != nil || f.Kind != FollowUpKind {
		return FollowUp{}, false
	}
	return f, true
}

// FollowedUp is what the approvals function returns for a follow-up event.
type FollowedUp struct {
	RequestID string `json:"requestId,omitempty"`
}

// Deferrer runs a follow-up after the answer has gone out. Defer must return quickly.
type Deferrer interface {
	Defer(ctx context.Context, f FollowUp) error
}

// Settler does the deferred part of a click; *Service is one.
type Settler interface {
	// Record writes audit entries (idempotent: deterministic ids).
	Record(ctx context.Context, entries []regflow.AuditEntry) error
	// UpdateMessage rewrites a request's Slack message from its stored state.
	UpdateMessage(ctx context.Context, requestID, status string) error
}

// Background runs follow-ups on goroutines of this process, detached from the request
// that deferred them. For processes that outlive a request; not for Lambda.
type Background struct {
	Run func(ctx context.Context, f FollowUp) error
	// Timeout bounds one follow-up as a whole (default 30 s); each Slack call inside
	// has its own, shorter deadline.
	Timeout time.Duration
	Log     *slog.Logger

	// A counter under a lock rather than a WaitGroup: clicks defer while callers wait, and
	// a WaitGroup must not be added to while a Wait is returning.
	mu      sync.Mutex
	running int
	idle    chan struct{} // closed when running drops to 0; nil while idle
}

// Defer starts f and returns at once.
func (b *Background) Defer(ctx context.Context, f FollowUp) error {
	if b.Run == nil {
		return errors.New("background follow-ups have nothing to run them")
	}
	timeout := b.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx = context.WithoutCancel(ctx)
	b.mu.Lock()
	if b.running == 0 {
		b.idle = make(chan struct{})
	}
	b.running++
	b.mu.Unlock()
	go func() {
		defer b.done()
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := b.Run(ctx, f); err != nil && b.Log != nil {
			b.Log.Warn("follow-up of a click failed", "request", f.RequestID, "error", err)
		}
	}()
	return nil
}

func (b *Background) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.running--
	if b.running == 0 {
		close(b.idle)
		b.idle = nil
	}
}

// Wait returns when every follow-up deferred so far has finished (and any deferred
// meanwhile: it waits until none runs).
func (b *Background) Wait() {
	for {
		b.mu.Lock()
		idle := b.idle
		b.mu.Unlock()
		if idle == nil {
			return
		}
		<-idle
	}
}

// DefaultReplyTimeout bounds a reply through response_url in a follow-up.
const DefaultReplyTimeout = 5 * time.Second

// DefaultInlineBudget bounds a follow-up the handler must run itself before answering.
const DefaultInlineBudget = time.Second

// FollowUp runs one follow-up: the audit entries, then the reply and the message
// rewrite side by side, each under its own deadline. Only a failed entry is returned
// (nothing else has happened yet, so a retry is safe); a failed reply or rewrite is
// logged, since a retry would post the reply twice, and the decision stands either way.
func (h *Handler) FollowUp(ctx context.Context, f FollowUp) error {
	if len(f.Audit) > 0 && h.Settler != nil {
		if err := h.Settler.Record(ctx, f.Audit); err != nil {
			return fmt.Errorf("follow-up of a click on %s: %w", f.RequestID, err)
		}
	}
	var wg sync.WaitGroup
	if h.Responder != nil && f.ResponseURL != "" && f.Text != "" {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, h.replyTimeout())
			defer cancel()
			if err := h.Responder.Respond(ctx, f.ResponseURL, f.Text); err != nil {
				h.log().Warn("reply through response_url failed", "request", f.RequestID, "error", err)
			}
		})
	}
	if h.Settler != nil && f.RequestID != "" && f.Status != "" {
		wg.Go(func() {
			// UpdateMessage applies the Service's own Slack deadline.
			if err := h.Settler.UpdateMessage(ctx, f.RequestID, f.Status); err != nil {
				h.log().Error("Slack message not updated; the decision and its event stand", "request", f.RequestID, "status", f.Status, "error", err)
			}
		})
	}
	wg.Wait()
	return nil
}

// followUp hands f to the Deferrer, or runs it within InlineBudget when there is none
// or handing off failed.
func (h *Handler) followUp(ctx context.Context, f FollowUp) {
	if f.empty() {
		return
	}
	f.Kind = FollowUpKind
	if h.FollowUps != nil {
		err := h.handOff(ctx, f)
		if err == nil {
			return
		}
		h.log().Warn("cannot hand the click's follow-up off; running it before answering", "request", f.RequestID, "error", err)
	}
	budget := h.InlineBudget
	if budget <= 0 {
		budget = DefaultInlineBudget
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	if err := h.FollowUp(ctx, f); err != nil {
		h.log().Error("click's follow-up failed", "request", f.RequestID, "error", err)
	}
}

func (h *Handler) handOff(ctx context.Context, f FollowUp) error {
	key, err := h.SigningSecret(ctx)
	if err != nil {
		return fmt.Errorf("seal the follow-up: %w", err)
	}
	if f, err = f.Seal(key); err != nil {
		return err
	}
	return h.FollowUps.Defer(ctx, f)
}

// RunFollowUp runs a follow-up event that came from outside this process (the
// asynchronous self-invocation), after checking its MAC.
func (h *Handler) RunFollowUp(ctx context.Context, f FollowUp) error {
	key, err := h.SigningSecret(ctx)
	if err != nil {
		return fmt.Errorf("check the follow-up's seal: %w", err)
	}
	if err := f.Open(key); err != nil {
		h.log().Warn("follow-up event refused", "error", err)
		return nil // a retry would not make it genuine
	}
	return h.FollowUp(ctx, f)
}

func (h *Handler) replyTimeout() time.Duration {
	if h.ReplyTimeout > 0 {
		return h.ReplyTimeout
	}
	return DefaultReplyTimeout
}
