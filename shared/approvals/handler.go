package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/regflow/regflow/shared/slacksig"
)

// Path is the route Slack's Interactivity Request URL points at.
const Path = "/slack/interactions"

// DefaultMaxBody bounds a request body. regflow's own messages echo back in well
// under 16 KiB; anything far larger is not a click on them.
const DefaultMaxBody = 64 << 10

// HeaderOutcome carries the outcome kind on the response, for logs, the local
// stack and tests (Slack ignores it).
const HeaderOutcome = "X-Regflow-Outcome"

// Decider is the use case the handler serves; *Service is one.
type Decider interface {
	Decide(ctx context.Context, c Click) (Outcome, error)
}

// Responder sends the reply to the clicking user through the payload's
// response_url (Slack ignores the body of a block_actions acknowledgement).
type Responder interface {
	Respond(ctx context.Context, responseURL, text string) error
}

// Handler serves POST /slack/interactions.
type Handler struct {
	Decider Decider
	// SigningSecret returns Slack's signing secret (fetched once per container by the caller).
	SigningSecret func(ctx context.Context) ([]byte, error)
	// Responder is optional; without it replies go only in the HTTP body.
	Responder Responder
	// Settler does the deferred part of clicks in follow-ups (the Service, when it defers).
	Settler Settler
	// FollowUps runs each click's Slack work after the answer (followup.go); without it
	// the handler runs it before answering, within InlineBudget.
	FollowUps Deferrer
	// InlineBudget bounds a follow-up run before the answer (default DefaultInlineBudget);
	// ReplyTimeout bounds a reply in a follow-up (default DefaultReplyTimeout).
	InlineBudget time.Duration
	ReplyTimeout time.Duration
	// Team, when set, is the only Slack workspace whose clicks are handled: an app installed
	// in several workspaces signs them all with one secret.
	Team string
	// Now is the clock for the signature window; time.Now when nil.
	Now func() time.Time
	// MaxBody overrides DefaultMaxBody when positive.
	MaxBody int64
	Log     *slog.Logger

	refusals sampler
}

// Reply is the JSON body of every answer: Slack's message shape (an ephemeral
// reply that leaves the original message alone).
type Reply struct {
	ResponseType    string `json:"response_type"`
	ReplaceOriginal bool   `json:"replace_original"`
	Text            string `json:"text"`
}

// ServeHTTP verifies, parses and decides one click. Order matters: the size cap
// and the signature come before anything is parsed, and nothing is written
// unless both pass.
//
// This is also the cheap refusal a flood meets (see StageRateLimit): an unsigned request
// costs a bounded read, header checks and, if the headers are well formed, one HMAC;
// never the store, the bus or Slack, and its log line is sampled.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	log := h.log()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reply(w, http.StatusMethodNotAllowed, "", "Slack interactions are POSTed.")
		return
	}
	limit := h.maxBody()
	if r.ContentLength > limit {
		h.reply(w, http.StatusRequestEntityTooLarge, "", "The request body is too large.")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.reply(w, http.StatusRequestEntityTooLarge, "", "The request body is too large.")
			return
		}
		h.reply(w, http.StatusBadRequest, "", "The request body could not be read.")
		return
	}
	v := slacksig.Verifier{Secret: h.SigningSecret, Now: h.Now}
	if err := v.Verify(r.Context(), r.Header, body); err != nil {
		if slacksig.Refused(err) {
			h.refused(r, err)
			h.reply(w, http.StatusUnauthorized, "", "The request is not signed by Slack.")
			return
		}
		log.Error("cannot verify Slack requests", "error", err)
		h.reply(w, http.StatusInternalServerError, "", "regflow cannot verify Slack requests right now.")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		h.reply(w, http.StatusBadRequest, "", "Slack interactions are form-encoded.")
		return
	}
	click, err := ParseForm(body)
	if err != nil {
		log.Warn("Slack payload refused", "reason", err.Error())
		h.reply(w, http.StatusBadRequest, "", "regflow does not handle this interaction.")
		return
	}
	if h.Team != "" && click.Team != h.Team {
		log.Warn("Slack click from another workspace refused", "team", click.Team, "user", click.User)
		h.reply(w, http.StatusForbidden, "", "This Slack workspace cannot decide regflow promotions.")
		return
	}
	out, err := h.Decider.Decide(r.Context(), click)
	if err != nil {
		log.Error("click failed", "request", click.RequestID, "user", click.User, "action", click.Action, "error", err)
		text := "regflow could not record this click; please try again."
		h.followUp(r.Context(), FollowUp{ResponseURL: click.ResponseURL, Text: text})
		h.reply(w, http.StatusInternalServerError, "", text)
		return
	}
	f := FollowUp{ResponseURL: click.ResponseURL, Text: out.Text, Audit: out.Pending, RequestID: click.RequestID}
	if out.MessageDue {
		f.Status = out.Request.Status
	}
	h.followUp(r.Context(), f)
	log.Info("click answered", "request", click.RequestID, "user", click.User, "action", click.Action,
		"outcome", out.Kind, "published", out.Published, "messageUpdated", out.MessageUpdated, "messageDue", out.MessageDue, "ms", time.Since(start).Milliseconds())
	h.reply(w, http.StatusOK, out.Kind, out.Text)
}

// refused logs an unsigned request, sampled: a flood writes a few lines a second, each
// with the count of those not logged since the last.
func (h *Handler) refused(r *http.Request, err error) {
	if n, ok := h.refusals.allow(time.Now()); ok {
		h.log().Warn("Slack request refused", "reason", err.Error(), "remote", r.RemoteAddr, "notLoggedSince", n)
	}
}

// sampler lets through refusalsPerSecond log lines a second and counts the rest.
type sampler struct {
	mu      sync.Mutex
	second  int64
	n       int
	skipped int
}

const refusalsPerSecond = 5

func (s *sampler) allow(now time.Time) (skipped int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := now.Unix(); sec != s.second {
		s.second, s.n = sec, 0
	}
	if s.n >= refusalsPerSecond {
		s.skipped++
		return 0, false
	}
	s.n++
	skipped, s.skipped = s.skipped, 0
	return skipped, true
}

func (h *Handler) reply(w http.ResponseWriter, status int, kind Kind, text string) {
	w.Header().Set("Content-Type", "application/json")
	if kind != "" {
		w.Header().Set(HeaderOutcome, string(kind))
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Reply{ResponseType: "ephemeral", Text: text})
}

func (h *Handler) maxBody() int64 {
	if h.MaxBody > 0 {
		return h.MaxBody
	}
	return DefaultMaxBody
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
