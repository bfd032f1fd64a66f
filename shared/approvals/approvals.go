// Package approvals is the use case behind the Approve and Reject buttons: it
// authorizes the clicking Slack user for the request's environment, moves the
// request pending → approved / rejected with a conditional write (so exactly
// one decision wins however many people click), audits every decision, refusal
// and expiry, and then publishes the decision on the regflow bus and updates the
// Slack message, each exactly once.
//
// handler.go serves it over HTTP for Slack's interactivity requests (the Lambda
// function adapts API Gateway to that handler; the local stack serves it as is).
package approvals

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/store"
)

// Store is what the approvals use case persists. store.Store satisfies it.
type Store interface {
	GetRequest(ctx context.Context, id string) (regflow.ApprovalRequest, error)
	// UpdateRequest writes next if the stored version is next.Version-1, else regflow.ErrConflict.
	UpdateRequest(ctx context.Context, next regflow.ApprovalRequest) error
	GetVerification(ctx context.Context, env, repo, digest string) (regflow.Verification, error)
	AppendAudit(ctx context.Context, e regflow.AuditEntry) (bool, error)
	store.Claimer
}

// Messages rewrites a request's Slack message. slackmsg.Poster satisfies it.
type Messages interface {
	Update(ctx context.Context, r regflow.ApprovalRequest, c slackmsg.Context) error
}

// Groups resolves a Slack user group to its members' user ids.
type Groups interface {
	Members(ctx context.Context, group string) ([]string, error)
}

// Rollback handles the Roll back button on a promoted request. It returns the
// reply for the clicking user. Optional: without it the button answers that
// rollback from Slack is not supported yet.
type Rollback interface {
	Rollback(ctx context.Context, r regflow.ApprovalRequest, user string) (string, error)
}

// Actor signs entries for what regflow did by itself (an expiry).
const Actor = "regflow/approvals"

// ErrUnknownRequest and ErrUnknownEnvironment are refusal reasons beside regflow's.
var (
	ErrUnknownRequest     = errors.New("no such approval request")
	ErrUnknownEnvironment = errors.New("the request's environment is no longer configured")
	ErrNotSupported       = errors.New("not supported from Slack yet")
)

// Kind says what a click did.
type Kind string

// Kinds of outcome.
const (
	KindApproved    Kind = "approved"    // this click completed the approval
	KindVoted       Kind = "voted"       // recorded; more approvers needed
	KindRejected    Kind = "rejected"    // this click rejected the request
	KindExpired     Kind = "expired"     // the request had expired; nothing decided
	KindRefused     Kind = "refused"     // nothing changed (see Reason)
	KindRolledBack  Kind = "rolledBack"  // the Rollback port handled it
	KindUnsupported Kind = "unsupported" // a button this deployment does not handle
)

// Click is one button press, taken from a verified Slack payload.
type Click struct {
	User      string // Slack user id
	UserName  string
	Team      string
	Action    string // slackmsg.ActionApprove, ActionReject or ActionRollback
	RequestID string // the button's value
	// ActionTS is Slack's action_ts; with the user it identifies the click, so a
	// redelivered request writes its refusal entry once.
	ActionTS    string
	ResponseURL string
}

// Outcome is what a click did and what to tell the user.
type Outcome struct {
	Kind Kind
	// Text is the reply for the clicking user (Slack mrkdwn).
	Text string
	// Reason is why a click was refused (regflow.ErrSelfApproval, ErrNotAuthorized, ...).
	Reason error
	// Request is the request as this click left it.
	Request regflow.ApprovalRequest
	// Published and MessageUpdated say whether this click performed those effects
	// (another click may have done them already).
	Published      bool
	MessageUpdated bool
	// MessageDue says this click owns the message rewrite, left to a follow-up
	// (Service.AnswerFirst).
	MessageDue bool
	// Pending are audit entries left to a follow-up (Service.AnswerFirst): the caller
	// writes them with Record after answering.
	Pending []regflow.AuditEntry
}

// Service decides approval requests.
type Service struct {
	Config    *config.Config
	Store     Store
	Publisher event.Publisher
	// Messages is optional: without it no Slack message is updated.
	Messages Messages
	// Groups is needed only when an environment lists approver groups.
	Groups Groups
	// Rollback is optional.
	Rollback Rollback
	Now      func() time.Time
	Log      *slog.Logger
	// MaxAttempts bounds how often a click re-reads the request after losing a
	// concurrent write (default 10).
	MaxAttempts int
	// SlackTimeout bounds each Slack call (message update, group lookup) so a slow
	// Slack cannot hold the acknowledgement past Slack's own 3 seconds (default 1.5 s).
	SlackTimeout time.Duration
	// AnswerFirst leaves what the answer to a click need not wait for to the caller's
	// follow-up (followup.go): the message rewrite of a settled request (Outcome.MessageDue,
	// then UpdateMessage) and the entry of a refused click (Outcome.Pending, then Record).
	AnswerFirst bool
	// GroupCommit, when set, writes Record's entries in shared batches (see AuditBatcher):
	// for a store in this process. Its AppendAudits must keep AppendAudit's
	// never-overwrite rule.
	GroupCommit AuditBatcher
	groups      groupCommit
	// FollowUpTimeout bounds a deferred message rewrite (default 6 s): nobody waits on it,
	// so it may outlast a slow Slack, but it ends inside the function's 10 s timeout (a
	// timed-out follow-up is retried, and would send its reply again).
	FollowUpTimeout time.Duration
}

// effectClaimTTL keeps a published decision's claim beyond the request's own life in
// the table (a year past expiry), so no later click publishes it again.
const effectClaimTTL = 400 * 24 * time.Hour

// Decide applies one click.
func (s *Service) Decide(ctx context.Context, c Click) (Outcome, error) {
	log := s.log().With("request", c.RequestID, "user", c.User, "action", c.Action)
	req, err := s.Store.GetRequest(ctx, c.RequestID)
	if errors.Is(err, store.ErrNotFound) {
		req = regflow.ApprovalRequest{ID: c.RequestID}
		return s.refuse(ctx, c, req, ErrUnknownRequest, "This approval request no longer exists.")
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("read approval request %s: %w", c.RequestID, err)
	}
	env, ok := s.Config.Env(req.Env)
	if !ok {
		return s.refuse(ctx, c, req, ErrUnknownEnvironment, fmt.Sprintf("Environment *%s* is no longer in regflow's configuration.", req.Env))
	}
	allowed, err := s.allowed(ctx, env, c.User)
	if err != nil {
		return Outcome{}, fmt.Errorf("check whether %s may decide for %s: %w", c.User, req.Env, err)
	}
	if !allowed {
		return s.refuse(ctx, c, req, regflow.ErrNotAuthorized,
			fmt.Sprintf("You are not an approver for *%s* (approvers: %s).", req.Env, orNobody(slackmsg.Approvers(env.Approvers.Users, env.Approvers.Groups))))
	}
	switch c.Action {
	case slackmsg.ActionApprove, slackmsg.ActionReject:
	case slackmsg.ActionRollback:
		return s.rollback(ctx, c, req)
	default:
		return Outcome{}, fmt.Errorf("unknown action %q reached the use case", c.Action)
	}

	// One read-modify-write (store.ChangeFrom): a click that loses the write to another is
	// applied again to what won, so concurrent clicks all count, once each.
	attempts := 0
	var refusal error // why the click changes nothing, from the request it last saw
	var expiring bool // the request expired before this click: the write closes it
	next, err := store.ChangeFrom(ctx, store.Item[regflow.ApprovalRequest]{
		Name: "approval request " + req.ID, Attempts: s.maxAttempts(),
		Read: func(ctx context.Context) (regflow.ApprovalRequest, error) {
			return s.Store.GetRequest(ctx, c.RequestID)
		},
		Write: s.Store.UpdateRequest,
	}, req, func(cur regflow.ApprovalRequest) (regflow.ApprovalRequest, bool, error) {
		attempts++
		req = cur
		var next regflow.ApprovalRequest
		var err error
		if c.Action == slackmsg.ActionApprove {
			next, err = cur.ApproveCounting(c.User, s.now(), func(u string) (bool, error) { return s.allowed(ctx, env, u) })
		} else {
			next, err = cur.Reject(c.User, s.now())
		}
		expiring = errors.Is(err, regflow.ErrExpired)
		if expiring {
			refusal = nil
			return cur.Transition(regflow.StatusExpired, "expired before a decision"), true, nil
		}
		refusal = err
		return next, err == nil, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	switch {
	case expiring:
		log.Info("request expired", "expiresAt", req.ExpiresAt)
		return s.expired(ctx, c, env, next)
	case refusal == nil:
		log.Info("decision recorded", "status", next.Status, "approvals", len(next.Approvals), "attempt", attempts)
		return s.recorded(ctx, c, env, next)
	case errors.Is(refusal, regflow.ErrNotPending):
		return s.closed(ctx, c, env, req, attempts == 1)
	case errors.Is(refusal, regflow.ErrSelfApproval):
		return s.refuse(ctx, c, req, refusal, "You requested this promotion, so you cannot approve it.")
	case errors.Is(refusal, regflow.ErrAlreadyVoted):
		// Re-assert this user's vote entry: a retry after a failed audit write lands here.
		if err := s.audit(ctx, voteEntry(req, c.User)); err != nil {
			return Outcome{}, err
		}
		return s.refuse(ctx, c, req, refusal, fmt.Sprintf("You already approved this; %s.", more(req)))
	}
	return Outcome{}, refusal
}

// Settle makes sure a decided or expired request's effects happened: its audit entry,
// its event (approved or rejected) and then its Slack message, together once. If the
// entry or the event failed before, Settle does them now; a click on a closed request
// does the same. A scheduled re-drive can call it for every approved request: when the
// effects are done it costs one conditional write.
func (s *Service) Settle(ctx context.Context, id string) (Outcome, error) {
	req, err := s.Store.GetRequest(ctx, id)
	if err != nil {
		return Outcome{}, fmt.Errorf("read approval request %s: %w", id, err)
	}
	env, ok := s.Config.Env(req.Env)
	if !ok {
		return Outcome{}, fmt.Errorf("approval request %s: %w (%s)", id, ErrUnknownEnvironment, req.Env)
	}
	out := Outcome{Request: req}
	var due bool
	out.Published, out.MessageUpdated, due, err = s.settle(ctx, env, req, "")
	if err == nil && due {
		// Nobody else will do it: Settle is called outside any click.
		out.MessageUpdated = s.UpdateMessage(ctx, req.ID, req.Status) == nil
	}
	return out, err
}

// recorded follows a successful write of a vote or a decision.
func (s *Service) recorded(ctx context.Context, c Click, env config.Environment, next regflow.ApprovalRequest) (Outcome, error) {
	if next.Status == regflow.StatusPending {
		if err := s.audit(ctx, voteEntry(next, c.User)); err != nil {
			return Outcome{}, err
		}
		return Outcome{Kind: KindVoted, Request: next,
			Text: fmt.Sprintf("Recorded your approval of %s into *%s* (%d of %d); %s.", describe(next), next.Env, len(next.Approvals), max(next.Required, 1), more(next))}, nil
	}
	out := Outcome{Request: next, Kind: KindApproved,
		Text: fmt.Sprintf("Approved %s into *%s*. The promotion starts now.", describe(next), next.Env)}
	if next.Status == regflow.StatusRejected {
		out.Kind, out.Text = KindRejected, fmt.Sprintf("Rejected %s for *%s*.", describe(next), next.Env)
	}
	var err error
	out.Published, out.MessageUpdated, out.MessageDue, err = s.settle(ctx, env, next, "")
	return out, err
}

func (s *Service) expired(ctx context.Context, c Click, env config.Environment, next regflow.ApprovalRequest) (Outcome, error) {
	_, upd, due, err := s.settle(ctx, env, next, c.User)
	if err != nil {
		return Outcome{}, err
	}
	out, err := s.refuse(ctx, c, next, regflow.ErrExpired, fmt.Sprintf("This request expired at %s, before a decision; nothing was promoted.", stamp(next.ExpiresAt)))
	out.Kind, out.MessageUpdated, out.MessageDue = KindExpired, upd, due
	return out, err
}

// closed answers a click on a request that is no longer pending. A click that found it
// closed on first reading makes sure the decision's effects happened (it may be a
// retry after a failed publish); a click that lost the race to the closing write
// leaves that to the winner, which is doing it right now.
func (s *Service) closed(ctx context.Context, c Click, env config.Environment, req regflow.ApprovalRequest, redrive bool) (Outcome, error) {
	var pub, upd, due bool
	var text string
	switch req.Status {
	case regflow.StatusApproved, regflow.StatusRejected, regflow.StatusExpired:
		if !redrive {
			break
		}
		var err error
		if pub, upd, due, err = s.settle(ctx, env, req, ""); err != nil {
			return Outcome{}, err
		}
	}
	switch req.Status {
	case regflow.StatusApproved, regflow.StatusPromoted, regflow.StatusFailed:
		text = fmt.Sprintf("Already approved by %s (decided by <@%s> at %s).", voters(req), req.DecidedBy, stamp(req.DecidedAt))
	case regflow.StatusRejected:
		text = fmt.Sprintf("Already rejected by <@%s> at %s.", req.DecidedBy, stamp(req.DecidedAt))
	case regflow.StatusExpired:
		text = fmt.Sprintf("This request expired at %s; nothing was promoted.", stamp(req.ExpiresAt))
	default:
		text = fmt.Sprintf("This request is %s, not open for approval.", req.Status)
	}
	out, err := s.refuse(ctx, c, req, regflow.ErrNotPending, text)
	out.Published, out.MessageUpdated, out.MessageDue = pub, upd, due
	return out, err
}

func (s *Service) rollback(ctx context.Context, c Click, req regflow.ApprovalRequest) (Outcome, error) {
	if s.Rollback == nil {
		out, err := s.refuse(ctx, c, req, ErrNotSupported, "Rolling back from Slack is not supported yet; use the regflow CLI.")
		out.Kind = KindUnsupported
		return out, err
	}
	text, err := s.Rollback.Rollback(ctx, req, c.User)
	if err != nil {
		return Outcome{}, fmt.Errorf("roll back %s in %s: %w", req.Ref(), req.Env, err)
	}
	return Outcome{Kind: KindRolledBack, Text: text, Request: req}, nil
}

// settle performs a closed request's effects once, under one claim: the closing
// audit entry, the event (approved or rejected), then the Slack message. If the entry
// or the event fails, the claim is given back and the next click (or Settle) redoes
// them; the message is rewritten only after the event is out, so while publishing
// fails the buttons stay for that retry. A failed message update is logged and not
// retried: the decision and its event stand, and later clicks are still told who
// decided. noticedBy names who found the request expired.
func (s *Service) settle(ctx context.Context, env config.Environment, r regflow.ApprovalRequest, noticedBy string) (published, updated, due bool, err error) {
	now := s.now()
	key := "settle#" + r.ID + "#" + r.Status + opening(r)
	// A short lease while the effects run: a function that dies mid-way frees the claim for
	// the next click or Settle instead of holding it for the claim's whole life.
	ran, err := store.Once(ctx, s.Store, key, now, store.DefaultLease, effectClaimTTL, func() error { return s.effects(ctx, r, noticedBy) })
	if err != nil || !ran {
		return false, false, false, err
	}
	published = r.Status == regflow.StatusApproved || r.Status == regflow.StatusRejected
	if s.Messages == nil {
		return published, false, false, nil
	}
	if s.AnswerFirst {
		return published, false, true, nil
	}
	if err := s.update(ctx, env, r, s.slackTimeout()); err != nil {
		s.log().Error("Slack message not updated; the decision and its event stand", "request", r.ID, "status", r.Status, "error", err)
		return published, false, false, nil
	}
	return published, true, false, nil
}

// UpdateMessage rewrites request id's Slack message from its stored state, if it is
// still in status: a follow-up queued before a later change does not undo that
// change's message.
func (s *Service) UpdateMessage(ctx context.Context, id, status string) error {
	if s.Messages == nil {
		return nil
	}
	r, err := s.Store.GetRequest(ctx, id)
	if err != nil {
		return fmt.Errorf("read approval request %s: %w", id, err)
	}
	if status != "" && r.Status != status {
		s.log().Info("message rewrite skipped: the request moved on", "request", id, "queued", status, "now", r.Status)
		return nil
	}
	env, ok := s.Config.Env(r.Env)
	if !ok {
		return fmt.Errorf("approval request %s: %w (%s)", id, ErrUnknownEnvironment, r.Env)
	}
	return s.update(ctx, env, r, s.followUpTimeout())
}

func (s *Service) update(ctx context.Context, env config.Environment, r regflow.ApprovalRequest, timeout time.Duration) error {
	mctx := s.messageContext(ctx, env, r)
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.Messages.Update(sctx, r, mctx)
}

// effects writes the closing audit entry and publishes the decision.
func (s *Service) effects(ctx context.Context, r regflow.ApprovalRequest, noticedBy string) error {
	if err := s.audit(ctx, closingEntry(r, noticedBy)); err != nil {
		return err
	}
	if r.Status != regflow.StatusApproved && r.Status != regflow.StatusRejected {
		return nil
	}
	detail, err := event.DecisionOf(r)
	if err != nil {
		return err
	}
	if err := s.Publisher.Publish(ctx, event.Message{Detail: detail, Key: r.ID + "#" + r.Status, At: r.DecidedAt}); err != nil {
		return fmt.Errorf("publish %q for %s: %w", detail.DetailType(), r.ID, err)
	}
	return nil
}

func (s *Service) messageContext(ctx context.Context, env config.Environment, r regflow.ApprovalRequest) slackmsg.Context {
	c := slackmsg.Context{Approvers: slackmsg.Approvers(env.Approvers.Users, env.Approvers.Groups)}
	if r.Status == regflow.StatusExpired {
		c.Note = "Expired at " + stamp(r.ExpiresAt) + " before a decision."
	}
	if env.RequireVerification {
		if prev, ok := s.Config.Previous(r.Env); ok {
			if v, err := s.Store.GetVerification(ctx, prev, r.Repository, r.Digest); err == nil {
				c.Verification = &v
			}
		}
	}
	return c
}

func (s *Service) allowed(ctx context.Context, env config.Environment, user string) (bool, error) {
	if user == "" {
		return false, nil
	}
	if slices.Contains(env.Approvers.Users, user) {
		return true, nil
	}
	for _, g := range env.Approvers.Groups {
		if s.Groups == nil {
			return false, fmt.Errorf("approvers include Slack user group %s but no group lookup is wired", g)
		}
		gctx, cancel := context.WithTimeout(ctx, s.slackTimeout())
		members, err := s.Groups.Members(gctx, g)
		cancel()
		if err != nil {
			return false, fmt.Errorf("members of Slack user group %s: %w", g, err)
		}
		if slices.Contains(members, user) {
			return true, nil
		}
	}
	return false, nil
}

// refuse audits a click that changed nothing and returns the reply.
func (s *Service) refuse(ctx context.Context, c Click, req regflow.ApprovalRequest, reason error, text string) (Outcome, error) {
	subject := req.Ref()
	if req.Repository == "" {
		subject = "request/" + c.RequestID
	}
	e := regflow.AuditEntry{
		Subject: subject,
		ID:      "refused-" + shortHash(c.RequestID, c.User, c.Action, c.ActionTS),
		Time:    s.clickTime(c),
		Action:  event.ActionApprovalRefused,
		Actor:   c.User,
		Reason:  reason.Error(),
		Details: map[string]string{"request": c.RequestID, "button": c.Action, "env": req.Env, "status": req.Status},
	}
	out := Outcome{Kind: KindRefused, Reason: reason, Text: text, Request: req}
	if s.AnswerFirst {
		out.Pending = []regflow.AuditEntry{e}
	} else if err := s.audit(ctx, e); err != nil {
		return Outcome{}, err
	}
	s.log().Info("click refused", "request", c.RequestID, "user", c.User, "action", c.Action, "reason", reason.Error())
	return out, nil
}

// Record writes audit entries a click left pending (Outcome.Pending). With
// GroupCommit, concurrent calls share one write (group commit).
func (s *Service) Record(ctx context.Context, entries []regflow.AuditEntry) error {
	if s.GroupCommit != nil && len(entries) > 0 {
		return s.groups.commit(ctx, s.GroupCommit, entries)
	}
	for _, e := range entries {
		if err := s.audit(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// AuditBatcher writes many entries at once, each as AppendAudit would (an entry whose
// key exists is left alone). The embedded store is one: a transaction per entry is an
// fsync per entry, and a burst of refused clicks queues behind them.
type AuditBatcher interface {
	AppendAudits(ctx context.Context, entries []regflow.AuditEntry) error
}

// groupCommit merges the entries of concurrent Record calls: one caller writes what has
// gathered while the previous write ran, the others wait for its result.
type groupCommit struct {
	mu       sync.Mutex
	pending  []regflow.AuditEntry
	waiters  []chan error
	flushing bool
}

func (g *groupCommit) commit(ctx context.Context, to AuditBatcher, entries []regflow.AuditEntry) error {
	done := make(chan error, 1)
	g.mu.Lock()
	g.pending = append(g.pending, entries...)
	g.waiters = append(g.waiters, done)
	if g.flushing {
		g.mu.Unlock()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.flushing = true
	for len(g.pending) > 0 {
		batch, waiters := g.pending, g.waiters
		g.pending, g.waiters = nil, nil
		g.mu.Unlock()
		// The leader's context may end before the others'; the write is everyone's.
		err := to.AppendAudits(context.WithoutCancel(ctx), batch)
		if err != nil {
			err = fmt.Errorf("audit %d entries: %w", len(batch), err)
		}
		for _, w := range waiters {
			w <- err
		}
		g.mu.Lock()
	}
	g.flushing = false
	g.mu.Unlock()
	return <-done
}

func (s *Service) audit(ctx context.Context, e regflow.AuditEntry) error {
	if _, err := s.Store.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("audit %s of %s: %w", e.Action, e.Subject, err)
	}
	return nil
}

// voteEntry is a user's approval that did not close the request. Its time and id come
// from the stored vote, so writing it again is a no-op.
func voteEntry(r regflow.ApprovalRequest, user string) regflow.AuditEntry {
	at := time.Time{}
	for _, v := range r.Approvals {
		if v.User == user {
			at = v.At
		}
	}
	return regflow.AuditEntry{
		Subject: r.Ref(), ID: "vote-" + r.ID + "-" + user, Time: at, Action: event.ActionApprovalVoted, Actor: user,
		Details: map[string]string{"request": r.ID, "env": r.Env, "approvals": strconv.Itoa(countUpTo(r, user)) + "/" + strconv.Itoa(max(r.Required, 1))},
	}
}

// closingEntry is the decision (or expiry) entry, derived from the stored state.
func closingEntry(r regflow.ApprovalRequest, noticedBy string) regflow.AuditEntry {
	e := regflow.AuditEntry{Subject: r.Ref(), ID: r.Status + "-" + r.ID + opening(r), Actor: r.DecidedBy, Time: r.DecidedAt,
		Details: map[string]string{"request": r.ID, "env": r.Env}}
	switch r.Status {
	case regflow.StatusApproved:
		e.Action = event.ActionApprovalApproved
		var who []string
		for _, v := range r.Approvals {
			who = append(who, v.User)
		}
		e.Details["approvers"] = strings.Join(who, ",")
	case regflow.StatusRejected:
		e.Action = event.ActionApprovalRejected
	case regflow.StatusExpired:
		e.Action, e.Actor, e.Time, e.Reason = event.ActionApprovalExpired, Actor, r.ExpiresAt, "no decision before expiry"
		if noticedBy != "" {
			e.Details["noticedBy"] = noticedBy
		}
	}
	return e
}

// opening tells apart the expiries of one request: the scan gate reopens an expired
// request with a window of its own, so each expiry is its own event (its own claim,
// entry and message), named by the end of its window. A decision closes a request for
// good, so its keys need no such suffix.
func opening(r regflow.ApprovalRequest) string {
	if r.Status != regflow.StatusExpired {
		return ""
	}
	return "-" + r.ExpiresAt.UTC().Format("20060102T150405.000Z")
}

func countUpTo(r regflow.ApprovalRequest, user string) int {
	for i, v := range r.Approvals {
		if v.User == user {
			return i + 1
		}
	}
	return len(r.Approvals)
}

func (s *Service) clickTime(c Click) time.Time {
	if t, ok := slackTS(c.ActionTS); ok {
		return t
	}
	return s.now()
}

// slackTS parses Slack's "1548426417.840180" timestamps.
func slackTS(ts string) (time.Time, bool) {
	secs, frac, _ := strings.Cut(ts, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, false
	}
	var nsec int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		n, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, false
		}
		nsec = n
	}
	return time.Unix(sec, nsec).UTC(), true
}

func shortHash(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:10])
}

func describe(r regflow.ApprovalRequest) string {
	s := "`" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	return s + "` (" + regflow.ShortDigest(r.Digest) + ")"
}

func more(r regflow.ApprovalRequest) string {
	n := max(r.Required, 1) - len(r.Approvals)
	if n == 1 {
		return "one more approver is needed"
	}
	return fmt.Sprintf("%d more approvers are needed", n)
}

func voters(r regflow.ApprovalRequest) string {
	var who []string
	for _, v := range r.Approvals {
		who = append(who, "<@"+v.User+">")
	}
	if len(who) == 0 {
		return "<@" + r.DecidedBy + ">"
	}
	return strings.Join(who, ", ")
}

func orNobody(s string) string {
	if s == "" {
		return "none configured"
	}
	return s
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") }

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Service) slackTimeout() time.Duration {
	if s.SlackTimeout > 0 {
		return s.SlackTimeout
	}
	return 1500 * time.Millisecond
}

func (s *Service) followUpTimeout() time.Duration {
	if s.FollowUpTimeout > 0 {
		return s.FollowUpTimeout
	}
	return 6 * time.Second
}

func (s *Service) maxAttempts() int {
	if s.MaxAttempts > 0 {
		return s.MaxAttempts
	}
	return 10
}
