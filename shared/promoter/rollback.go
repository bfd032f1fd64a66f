package promoter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/store"
)

// invokeRollback handles "Rollback Requested". The event is only a doorbell: the promoter
// acts on the stored rollback it names (recorded by the approvals function after a verified
// click, or by the CLI), never on the event's own fields, and refuses (and audits) anything
// without one behind it.
func (p *Promoter) invokeRollback(ctx context.Context, ev event.Envelope) (Result, error) {
	var d event.RollbackRequested
	if err := jsonDetail(ev, &d); err != nil {
		return Result{}, err
	}
	res := Result{RequestID: d.RequestID}
	refuse := func(reason string, cause error) (Result, error) {
		res.Outcome, res.Reason = "refused", reason
		p.Log.Warn("refusing rollback", "rollback", d.RollbackID, "env", d.Env, "repository", d.Repository, "claimedBy", d.By, "reason", reason, "error", cause)
		subject := d.Repository
		if d.From != "" {
			subject += "@" + d.From
		}
		_, err := p.Store.AppendAudit(ctx, regflow.AuditEntry{Subject: subject, ID: "rollback/refused/" + ev.ID, Time: ev.Time.UTC(),
			Action: event.ActionRollbackRefused, Actor: Actor, Reason: reason,
			Details: map[string]string{"env": d.Env, "claimedBy": d.By, "rollback": d.RollbackID, "request": d.RequestID, "source": ev.Source}})
		return res, err
	}
	if d.RollbackID == "" {
		return refuse("the event names no stored rollback; rollbacks come from a Roll back click or the regflow CLI", nil)
	}
	rb, err := p.Store.GetRollback(ctx, d.RollbackID)
	if errors.Is(err, store.ErrNotFound) {
		return refuse("no rollback "+d.RollbackID+" was recorded", err)
	}
	if err != nil {
		return res, err
	}
	if rb.Env != d.Env || rb.Repository != d.Repository || rb.From != d.From {
		return refuse(fmt.Sprintf("the event does not match stored rollback %s (%s/%s from %s)", rb.ID, rb.Env, rb.Repository, regflow.ShortDigest(rb.From)), nil)
	}
	res.RequestID = rb.RequestID
	moved, outcome, err := p.apply(ctx, rb.ID)
	res.Outcome = outcome
	switch {
	case errors.Is(err, ErrMoved):
		res.Reason = err.Error()
		return res, nil
	case err != nil:
		return res, err
	case outcome != "rolled-back":
		return res, nil
	}
	res.Reason = fmt.Sprintf("%s/%s now runs %s", rb.Env, rb.Repository, regflow.ShortDigest(moved.Digest))
	if rb.RequestID != "" {
		if req, err := p.Store.GetRequest(ctx, rb.RequestID); err == nil {
			note := fmt.Sprintf("Rolled back by %s at %s: %s runs %s again", rb.By, rb.At.Format(time.RFC3339), rb.Env, regflow.ShortDigest(moved.Digest))
			if err := p.Messenger.Update(ctx, req, slackmsg.Context{Note: note}); err != nil {
				p.Log.Warn("could not update the approval message after a rollback", "error", err)
			}
		}
	}
	return res, nil
}

// SlackRollback is the approvals function's Rollback port: a Roll back click, by a user the
// approvals function verified (Slack's signature, the environment's approvers), is recorded
// in the store, then the promoter is asked through the bus to apply that stored rollback.
// The approvals function stays quick and holds no registry roles.
type SlackRollback struct {
	Store interface {
		GetRelease(ctx context.Context, env, repo string) (regflow.Release, error)
		CreateRollback(ctx context.Context, r regflow.Rollback) (bool, error)
	}
	Publisher event.Publisher
	Now       func() time.Time
}

// Rollback records user's request for env to leave the request's digest, if it still runs
// it, and asks the promoter to apply it.
func (s SlackRollback) Rollback(ctx context.Context, r regflow.ApprovalRequest, user string) (string, error) {
	cur, err := s.Store.GetRelease(ctx, r.Env, r.Repository)
	if err != nil {
		return "", fmt.Errorf("read %s release of %s: %w", r.Env, r.Repository, err)
	}
	if cur.Digest != r.Digest {
		return fmt.Sprintf("*%s* no longer runs `%s` (it runs `%s`); nothing to roll back from here. Use `regflow rollback %s %s --to <digest>`.",
			r.Env, regflow.ShortDigest(r.Digest), regflow.ShortDigest(cur.Digest), r.Env, r.Repository), nil
	}
	if len(cur.Previous) == 0 {
		return fmt.Sprintf("*%s* has no earlier release of %s to roll back to.", r.Env, r.Repository), nil
	}
	// Recorded first: the promoter obeys only rollbacks in the store. A double click
	// records the same rollback once.
	rb := regflow.NewRollback(cur, "", r.ID, "slack:"+user, regflow.ViaSlack, s.Now())
	if _, err := s.Store.CreateRollback(ctx, rb); err != nil {
		return "", fmt.Errorf("record the rollback: %w", err)
	}
	ask := event.RollbackRequested{RollbackID: rb.ID, RequestID: r.ID, Env: r.Env, Repository: r.Repository, From: cur.Digest, By: rb.By}
	if err := s.Publisher.Publish(ctx, event.Message{Detail: ask, Key: "rollback/" + rb.ID, At: s.Now()}); err != nil {
		return "", fmt.Errorf("ask the promoter to roll back: %w", err)
	}
	return fmt.Sprintf("Rolling *%s* %s back from `%s` to `%s`: a pointer change, nothing is copied.",
		r.Env, r.Repository, regflow.ShortDigest(cur.Digest), regflow.ShortDigest(cur.Previous[0])), nil
}

// RecordRollback records by's request (from the CLI) to move env's pointer of repo back to
// toDigest, or to the previous release when empty. Recording it again with the pointer
// unchanged returns the rollback already recorded.
func (p *Promoter) RecordRollback(ctx context.Context, env, repo, toDigest, by string) (regflow.Rollback, error) {
	if _, ok := p.Config.Environments[env]; !ok {
		return regflow.Rollback{}, fmt.Errorf("environment %q is not configured", env)
	}
	cur, err := p.Store.GetRelease(ctx, env, repo)
	if err != nil {
		return regflow.Rollback{}, fmt.Errorf("%s has no release of %s to roll back: %w", env, repo, err)
	}
	// What can be refused without the registry is refused before anything is recorded.
	if toDigest == "" && len(cur.Previous) == 0 {
		return regflow.Rollback{}, fmt.Errorf("%s/%s has no previous release to roll back to; pass a digest", env, repo)
	}
	if toDigest == cur.Digest {
		return regflow.Rollback{}, fmt.Errorf("%s/%s already runs %s", env, repo, regflow.ShortDigest(toDigest))
	}
	rb := regflow.NewRollback(cur, toDigest, "", by, regflow.ViaCLI, p.Now())
	created, err := p.Store.CreateRollback(ctx, rb)
	if err != nil {
		return rb, err
	}
	if !created {
		return p.Store.GetRollback(ctx, rb.ID)
	}
	return rb, nil
}

// Rollback records by's rollback (RecordRollback) and applies it (ApplyRollback): what
// `regflow rollback` does. Nothing is copied or rebuilt.
func (p *Promoter) Rollback(ctx context.Context, env, repo, toDigest, by string) (regflow.Release, error) {
	rb, err := p.RecordRollback(ctx, env, repo, toDigest, by)
	if err != nil {
		return regflow.Release{}, err
	}
	return p.ApplyRollback(ctx, rb.ID)
}

// ApplyRollback applies stored rollback id: it moves the pointer once, however often it is
// asked, and only while the pointer is still where the rollback found it.
func (p *Promoter) ApplyRollback(ctx context.Context, id string) (regflow.Release, error) {
	moved, outcome, err := p.apply(ctx, id)
	if err == nil && outcome != "rolled-back" {
		return moved, fmt.Errorf("rollback %s was already %s", id, outcome)
	}
	return moved, err
}

// ErrMoved means the release pointer changed since the rollback was asked for; nothing was done.
var ErrMoved = errors.New("the release pointer moved since the rollback was asked for")

// apply moves the pointer for stored rollback id and returns the pointer and the outcome:
// rolled-back (this call, or an earlier one that died before settling, moved it),
// already-rolled-back, or stale (with ErrMoved). A refusal that may pass on a retry (the
// digest is not in the registry) returns an error and leaves the rollback requested.
func (p *Promoter) apply(ctx context.Context, id string) (regflow.Release, string, error) {
	rb, err := p.Store.GetRollback(ctx, id)
	if err != nil {
		return regflow.Release{}, "refused", fmt.Errorf("read stored rollback: %w", err)
	}
	switch rb.Status {
	case regflow.RollbackApplied:
		cur, err := p.Store.GetRelease(ctx, rb.Env, rb.Repository)
		return cur, "already-rolled-back", err
	case regflow.RollbackStale:
		return regflow.Release{}, "stale", fmt.Errorf("%s: %w", rb.Reason, ErrMoved)
	}
	env, repo := rb.Env, rb.Repository
	if _, ok := p.Config.Environments[env]; !ok {
		return regflow.Release{}, "refused", fmt.Errorf("environment %q is not configured", env)
	}
	cur, err := p.Store.GetRelease(ctx, env, repo)
	if err != nil {
		return regflow.Release{}, "refused", fmt.Errorf("%s has no release of %s to roll back: %w", env, repo, err)
	}
	moved := cur
	if cur.RollbackID != rb.ID { // else an earlier attempt moved it and died before settling
		if cur.Version != rb.FromVersion || cur.Digest != rb.From {
			return cur, "stale", p.stale(ctx, rb, cur)
		}
		if moved, err = p.movePointerBack(ctx, rb, cur); err != nil {
			if errors.Is(err, ErrMoved) {
				fresh, _ := p.Store.GetRelease(ctx, env, repo)
				return fresh, "stale", p.stale(ctx, rb, fresh)
			}
			return cur, "refused", err
		}
		// moved may be a twin delivery's move of this same rollback: the steps below are
		// idempotent, so both complete it.
	}
	// A rollback is a pointer move the runtime follows: the same targets get the previous
	// digest, nothing copied. A failure is retried with the rollback (its pointer move is
	// done, so the retry only deploys).
	if _, err := p.handOver(ctx, env, repo, rb.ID, true); err != nil {
		return moved, "refused", fmt.Errorf("deploy %s's rolled-back release of %s: %w", env, repo, err)
	}
	now := p.Now()
	if _, err := p.Store.AppendAudit(ctx, regflow.AuditEntry{Subject: repo + "@" + moved.Digest, ID: "rollback/" + rb.ID, Time: rb.At,
		Action: event.ActionReleaseRolledBack, Actor: rb.By, Reason: fmt.Sprintf("%s rolled back from %s", env, regflow.ShortDigest(rb.From)),
		Details: map[string]string{"env": env, "from": rb.From, "rollback": rb.ID, "via": rb.Via, "request": rb.RequestID}}); err != nil {
		return moved, "rolled-back", err
	}
	if err := p.once(ctx, "event/rollback/"+rb.ID, func() error {
		return p.publish(ctx, "rollback/"+rb.ID, now, event.ReleaseRolledBack{Env: env, Repository: repo, From: rb.From, To: moved.Digest, By: rb.By})
	}); err != nil {
		return moved, "rolled-back", fmt.Errorf("announce rollback: %w", err)
	}
	if _, err := store.Change(ctx, store.RollbackItem(p.Store, rb.ID), func(c regflow.Rollback) (regflow.Rollback, bool, error) {
		if c.Status != regflow.RollbackRequested {
			return c, false, nil
		}
		return c.Settle(regflow.RollbackApplied, moved.Digest, "", now), true, nil
	}); err != nil {
		return moved, "rolled-back", fmt.Errorf("mark rollback %s applied: %w", rb.ID, err)
	}
	return moved, "rolled-back", nil
}

// movePointerBack moves the pointer to the rollback's target after checking the digest is
// in the environment's registry, conditionally on the pointer still being where the
// rollback found it.
func (p *Promoter) movePointerBack(ctx context.Context, rb regflow.Rollback, cur regflow.Release) (regflow.Release, error) {
	env, repo, to := rb.Env, rb.Repository, rb.To
	if to == "" {
		if len(cur.Previous) == 0 {
			return cur, fmt.Errorf("%s/%s has no previous release to roll back to; pass a digest", env, repo)
		}
		to = cur.Previous[0]
	}
	if to == cur.Digest {
		return cur, fmt.Errorf("%s/%s already runs %s", env, repo, regflow.ShortDigest(to))
	}
	ep, err := p.Endpoints(ctx, env, "rollback")
	if err != nil {
		return cur, err
	}
	img, err := ep.Registry.DescribeImage(ctx, repo, to)
	if err != nil {
		return cur, fmt.Errorf("roll back %s/%s to %s: the digest must already be in %s's registry: %w", env, repo, regflow.ShortDigest(to), env, err)
	}
	tag := ""
	if len(img.Tags) > 0 {
		tag = img.Tags[0]
	}
	var moved regflow.Release
	stale := false
	if _, err := p.movePointer(ctx, env, repo, func(c regflow.Release) (regflow.Release, bool) {
		stale = false
		if c.RollbackID == rb.ID { // a twin delivery of this rollback moved it meanwhile
			moved = c
			return c, false
		}
		if c.Version != rb.FromVersion || c.Digest != rb.From {
			stale = true
			return c, false
		}
		// MoveTo keeps the approval mark: a rollback does not make older approvals newer.
		moved = c.MoveTo(to, tag, rb.By, p.Now(), p.Config.Retention.KeepReleases)
		moved.RollbackID = rb.ID
		return moved, true
	}); err != nil {
		return cur, err
	}
	if stale {
		return cur, fmt.Errorf("%s/%s no longer runs %s: %w", env, repo, regflow.ShortDigest(rb.From), ErrMoved)
	}
	return moved, nil
}

// stale settles a rollback whose pointer moved before it could apply, and says so.
func (p *Promoter) stale(ctx context.Context, rb regflow.Rollback, cur regflow.Release) error {
	reason := fmt.Sprintf("%s/%s runs %s (version %d), not %s (version %d) as when the rollback was asked for",
		rb.Env, rb.Repository, regflow.ShortDigest(cur.Digest), cur.Version, regflow.ShortDigest(rb.From), rb.FromVersion)
	if _, err := store.Change(ctx, store.RollbackItem(p.Store, rb.ID), func(c regflow.Rollback) (regflow.Rollback, bool, error) {
		if c.Status != regflow.RollbackRequested {
			return c, false, nil
		}
		return c.Settle(regflow.RollbackStale, "", reason, p.Now()), true, nil
	}); err != nil {
		return fmt.Errorf("mark rollback %s stale: %w", rb.ID, err)
	}
	return fmt.Errorf("%s: %w", reason, ErrMoved)
}

func jsonDetail(ev event.Envelope, d *event.RollbackRequested) error {
	if err := json.Unmarshal(ev.Detail, d); err != nil || d.Env == "" || d.Repository == "" {
		return fmt.Errorf("%w: %s detail needs rollbackId, env, repository and from", event.ErrMalformed, event.TypeRollbackRequested)
	}
	return nil
}
