package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Answer first. Slack drops an interaction that is not answered within 3 s, and its own
// API can take seconds. So a click's answer carries only what must be true before it
// goes out (the decision written, its audit entry, its event); the reply through
// response_url and the rewrite of the approval message are a FollowUp, handed to a
// Deferrer and done after the answer, each with its own deadline.
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
// A follow-up is safe to run twice and safe to accept from whoever may invoke the
// function: the message is rewritten from the stored request (and only while it is in
// the status the follow-up names), and a reply goes only to Slack's response_url hosts.

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
}

func (f FollowUp) empty() bool {
	return f.RequestID == "" && (f.ResponseURL == "" || f.Text == "")
}

// ParseFollowUp reports whether raw is a follow-up event and decodes it.
func ParseFollowUp(raw []byte) (FollowUp, bool) {
	var f FollowUp
	if err := json.Unmarshal(raw, &f); err != nil || f.Kind != FollowUpKind {
		return FollowUp{}, false
	}
	return f, true
}

// Deferrer runs a follow-up after the answer has gone out. Defer must return quickly.
type Deferrer interface {
	Defer(ctx context.Context, f FollowUp) error
}

// MessageUpdater rewrites a request's Slack message; *Service is one.
type MessageUpdater interface {
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

	wg sync.WaitGroup
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
	b.wg.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := b.Run(ctx, f); err != nil && b.Log != nil {
			b.Log.Warn("follow-up of a click failed", "request", f.RequestID, "error", err)
		}
	})
	return nil
}

// Wait returns when every follow-up deferred so far has finished.
func (b *Background) Wait() { b.wg.Wait() }

// DefaultReplyTimeout bounds a reply through response_url in a follow-up.
const DefaultReplyTimeout = 5 * time.Second

// DefaultInlineBudget bounds a follow-up the handler must run itself before answering.
const DefaultInlineBudget = time.Second

// FollowUp runs one follow-up: the reply and the message rewrite side by side, each
// under its own deadline. Failures are logged, not returned: a retried follow-up would
// post the reply twice, and the decision stands either way.
func (h *Handler) FollowUp(ctx context.Context, f FollowUp) error {
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
	if h.Messages != nil && f.RequestID != "" {
		wg.Go(func() {
			// UpdateMessage applies the Service's own Slack deadline.
			if err := h.Messages.UpdateMessage(ctx, f.RequestID, f.Status); err != nil {
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
		err := h.FollowUps.Defer(ctx, f)
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
	_ = h.FollowUp(ctx, f)
}

func (h *Handler) replyTimeout() time.Duration {
	if h.ReplyTimeout > 0 {
		return h.ReplyTimeout
	}
	return DefaultReplyTimeout
}
