// Package tagguard is the use case run on every ECR push: it enforces the tag
// policy, keeps repositories tag-immutable and records the image.
//
// Every effect is idempotent, so an event delivered twice changes nothing the
// second time: tag removal and immutability check the registry's state first,
// audit entries have deterministic ids, and the alert is guarded by a claim.
package tagguard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/ecrevent"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
	"github.com/regflow/regflow/shared/tagpolicy"
)

// Registry is what tagguard needs from ECR.
type Registry interface {
	TagMutability(ctx context.Context, repo string) (regflow.TagMutability, error)
	SetTagMutability(ctx context.Context, repo string, m regflow.TagMutability) error
	DescribeImage(ctx context.Context, repo, digest string) (regflow.RegistryImage, error)
	// RemoveTag removes tag from repo if it still names digest (else regflow.ErrTagMoved).
	// It reports false, and no error, when the tag is already gone.
	RemoveTag(ctx context.Context, repo, tag, digest string) (bool, error)
}

// Store is what tagguard persists.
type Store interface {
	PutImage(ctx context.Context, img regflow.Image) error
	AppendAudit(ctx context.Context, e regflow.AuditEntry) (bool, error)
	store.Claimer
}

// Guard handles push events.
type Guard struct {
	Registry Registry
	Store    Store
	Notifier regflow.Notifier
	// Publisher is optional: with it, each violation is also a "Tag Policy Violation" event.
	Publisher event.Publisher
	Policy    *tagpolicy.Policy
	Now       func() time.Time
	Log       *slog.Logger
}

// Actor is how tagguard signs its audit entries.
const Actor = "regflow/tagguard"

// alertClaimTTL outlasts EventBridge's 24-hour retry window, so a redelivery never alerts twice.
const alertClaimTTL = 7 * 24 * time.Hour

// Result says what Handle did, for logs and tests.
type Result struct {
	Ignored       bool   `json:"ignored,omitempty"`
	Violation     string `json:"violation,omitempty"`
	TagRemoved    bool   `json:"tagRemoved,omitempty"`
	MadeImmutable bool   `json:"madeImmutable,omitempty"`
	Alerted       bool   `json:"alerted,omitempty"`
	Recorded      bool   `json:"recorded,omitempty"`
}

// Handle processes one "ECR Image Action" event.
func (g *Guard) Handle(ctx context.Context, ev *ecrevent.ImageAction) (Result, error) {
	d := ev.Detail
	log := g.Log.With("event", ev.ID, "repository", d.RepositoryName, "digest", d.ImageDigest, "tag", d.ImageTag)
	if d.ActionType != "PUSH" || d.Result != "SUCCESS" {
		log.Info("no action for this image event", "action", d.ActionType, "result", d.Result)
		return Result{Ignored: true}, nil
	}
	var res Result
	repo, tag := d.RepositoryName, d.ImageTag

	made, err := g.ensureImmutable(ctx, ev, repo)
	if errors.Is(err, regflow.ErrRepositoryNotFound) {
		log.Warn("repository is gone; nothing to guard")
		return Result{Ignored: true}, nil
	}
	if err != nil {
		return res, err
	}
	res.MadeImmutable = made

	var decision tagpolicy.Decision
	if tag != "" {
		decision = g.Policy.Check(repo, tag)
		if !decision.Allowed {
			res.Violation = decision.Reason
			removed, alerted, err := g.handleViolation(ctx, ev, decision, log)
			res.TagRemoved, res.Alerted = removed, alerted
			if err != nil {
				return res, err
			}
		}
	}

	recorded, err := g.record(ctx, ev, decision)
	if err != nil {
		return res, err
	}
	res.Recorded = recorded
	log.Info("push handled", "violation", res.Violation != "", "tagRemoved", res.TagRemoved, "madeImmutable", res.MadeImmutable, "recorded", res.Recorded)
	return res, nil
}

func (g *Guard) ensureImmutable(ctx context.Context, ev *ecrevent.ImageAction, repo string) (bool, error) {
	have, err := g.Registry.TagMutability(ctx, repo)
	if err != nil {
		return false, fmt.Errorf("read tag mutability of %s: %w", repo, err)
	}
	want := regflow.WantImmutable(g.Policy.MutableTags())
	if have.Equal(want) {
		return false, nil
	}
	reason := fmt.Sprintf("repository was %s; regflow requires %s so a tag can never be moved to another image", have.Mode, want.Mode)
	if len(want.Exclusions) > 0 {
		reason += " (mutable: " + strings.Join(want.Exclusions, ", ") + ")"
	}
	// Audit first (its id is deterministic): a retry after a failed write would find the
	// repository already immutable and never write the entry.
	if _, err := g.Store.AppendAudit(ctx, regflow.AuditEntry{
		Subject: repo, ID: ev.ID + "/immutable", Time: ev.Time.Time, Action: event.ActionRepoImmutable, Actor: Actor,
		Reason: reason, Details: map[string]string{"from": have.Mode, "to": want.Mode, "account": ev.Account, "region": ev.Region},
	}); err != nil {
		return false, err
	}
	if err := g.Registry.SetTagMutability(ctx, repo, want); err != nil {
		return false, fmt.Errorf("make %s tag-immutable: %w", repo, err)
	}
	return true, nil
}

func (g *Guard) handleViolation(ctx context.Context, ev *ecrevent.ImageAction, d tagpolicy.Decision, log *slog.Logger) (removed, alerted bool, err error) {
	repo, digest, tag := ev.Detail.RepositoryName, ev.Detail.ImageDigest, ev.Detail.ImageTag
	action, outcome := event.ActionTagViolation, "reported only (report mode)"
	if d.Enforce {
		gone, err := g.Registry.RemoveTag(ctx, repo, tag, digest)
		switch {
		case errors.Is(err, regflow.ErrTagMoved):
			// Someone pushed the tag again since this event; that push has its own event.
			outcome = "not removed: the tag now names another digest, whose push is handled by its own event"
		case err != nil:
			return false, false, fmt.Errorf("remove tag %s:%s: %w", repo, tag, err)
		default:
			// On a redelivery the tag is already gone; the entry below exists and the alert is claimed.
			removed, action, outcome = gone, event.ActionTagRemoved, "tag removed"
		}
	}
	log.Warn("tag policy violation", "reason", d.Reason, "outcome", outcome)
	subject := repo + "@" + digest
	if _, err := g.Store.AppendAudit(ctx, regflow.AuditEntry{
		Subject: subject, ID: ev.ID + "/tag", Time: ev.Time.Time, Action: action, Actor: Actor, Reason: d.Reason,
		Details: map[string]string{"tag": tag, "rule": d.Rule, "outcome": outcome, "account": ev.Account, "region": ev.Region},
	}); err != nil {
		return removed, false, err
	}

	alert := regflow.Alert{
		Kind:       "tag-policy-violation",
		Title:      fmt.Sprintf("Tag policy violation: %s:%s", repo, tag),
		Text:       d.Reason,
		Repository: repo,
		Digest:     digest,
		Fields: []regflow.Field{
			{Label: "Outcome", Value: outcome},
			{Label: "Digest", Value: regflow.ShortDigest(digest)},
			{Label: "Rule", Value: d.Rule},
			{Label: "Account", Value: ev.Account + " " + ev.Region},
		},
	}
	sent, err := store.Once(ctx, g.Store, "alert/"+ev.ID+"/tag", g.Now(), store.DefaultLease, alertClaimTTL,
		func() error { return g.Notifier.Notify(ctx, alert) })
	if err != nil {
		return removed, sent, fmt.Errorf("send tag violation alert: %w", err)
	}
	if g.Publisher != nil {
		if _, err := store.Once(ctx, g.Store, "event/"+ev.ID+"/tag", g.Now(), store.DefaultLease, alertClaimTTL, func() error {
			v := event.TagPolicyViolation{
				Repository: repo, Digest: digest, Tag: tag, Account: ev.Account, Rule: d.Rule, Reason: d.Reason,
				Removed: action == event.ActionTagRemoved, At: ev.Time.UTC().Format(time.RFC3339),
			}
			return g.Publisher.Publish(ctx, event.Message{Detail: v, Key: ev.ID, At: ev.Time.Time})
		}); err != nil {
			return removed, sent, fmt.Errorf("publish the tag policy violation: %w", err)
		}
	}
	return removed, sent, nil
}

func (g *Guard) record(ctx context.Context, ev *ecrevent.ImageAction, d tagpolicy.Decision) (bool, error) {
	repo, digest := ev.Detail.RepositoryName, ev.Detail.ImageDigest
	info, err := g.Registry.DescribeImage(ctx, repo, digest)
	if errors.Is(err, regflow.ErrImageNotFound) {
		// Removing its only tag deleted the image, as ECR does; there is nothing to record.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("describe %s@%s: %w", repo, digest, err)
	}
	commit := d.Commit
	for _, t := range info.Tags {
		if commit == "" {
			commit = g.Policy.Check(repo, t).Commit
		}
	}
	pushedAt := info.PushedAt
	if pushedAt.IsZero() {
		pushedAt = ev.Time.Time
	}
	if err := g.Store.PutImage(ctx, regflow.Image{
		Repository: repo, Digest: digest, Tags: info.Tags, Commit: commit, PushedAt: pushedAt, RecordedAt: ev.Time.Time,
	}); err != nil {
		return false, err
	}
	details := map[string]string{"tags": strings.Join(info.Tags, ","), "account": ev.Account, "region": ev.Region}
	if commit != "" {
		details["commit"] = commit
	}
	_, err = g.Store.AppendAudit(ctx, regflow.AuditEntry{
		Subject: repo + "@" + digest, ID: ev.ID + "/recorded", Time: ev.Time.Time, Action: event.ActionImageRecorded,
		Actor: Actor, Reason: pushedAs(repo, ev.Detail.ImageTag), Details: details,
	})
	return err == nil, err
}

func pushedAs(repo, tag string) string {
	if tag == "" {
		return "pushed to " + repo + " without a tag"
	}
	return "pushed as " + repo + ":" + tag
}

// Handler adapts Guard to a raw EventBridge event, choosing the registry of the account the
// event came from. It is what the Lambda function, the local stack and `regflow invoke` run.
type Handler struct {
	// Registries returns the registry of an account in a region: two environments may share
	// an account in different regions.
	Registries func(account, region string) (Registry, error)
	// Guard is the template of each event's Guard; its Registry is chosen per event.
	Guard Guard
}

// Invoke decodes and handles one event. A malformed event is an error, so the platform
// retries it and then keeps it in the failure destination: nothing is lost.
func (h *Handler) Invoke(ctx context.Context, raw json.RawMessage) (Result, error) {
	ev, err := ecrevent.DecodeImageAction(raw)
	if err != nil {
		h.Guard.Log.Error("refusing event", "error", err)
		return Result{}, err
	}
	reg, err := h.Registries(ev.Account, ev.Region)
	if err != nil {
		return Result{}, err
	}
	g := h.Guard
	g.Registry = reg
	return g.Handle(ctx, ev)
}
