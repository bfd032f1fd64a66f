// Package promoter copies an approved image by digest into its environment's
// registry, moves the environment's release pointer and announces it; and
// rolls a release pointer back to a digest already there.
//
// The approval in the store is the authority: the event only names a request,
// so a forged or stale event cannot promote what nobody approved. Every step
// checks state first, so a redelivered event after success does nothing and
// one after a partial failure completes the work.
package promoter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/ocicopy"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/store"
)

// Registry is one environment's registry as the promoter uses it.
type Registry interface {
	EnsureRepository(ctx context.Context, repo string, s regflow.RepositorySettings) (bool, error)
	Authenticator(ctx context.Context) (authn.Authenticator, error)
	DescribeImage(ctx context.Context, repo, digest string) (regflow.RegistryImage, error)
}

// Endpoint locates an environment's registry: its API client and its /v2 host.
type Endpoint struct {
	Registry Registry
	Host     string
	// Insecure is true for loopback registries served over plain HTTP (the local stack).
	Insecure bool
}

// Store is what the promoter reads and writes.
type Store interface {
	GetRequest(ctx context.Context, id string) (regflow.ApprovalRequest, error)
	UpdateRequest(ctx context.Context, next regflow.ApprovalRequest) error
	GetRelease(ctx context.Context, env, repo string) (regflow.Release, error)
	PutRelease(ctx context.Context, next regflow.Release) error
	AppendAudit(ctx context.Context, e regflow.AuditEntry) (bool, error)
	store.Claimer
	store.RollbackStore
}

// Messenger updates the approval message.
type Messenger interface {
	Update(ctx context.Context, r regflow.ApprovalRequest, c slackmsg.Context) error
}

// Promoter promotes approved requests and rolls releases back.
type Promoter struct {
	Config *config.Config
	// Endpoints returns an environment's registry; requestID names the role session in AWS.
	Endpoints func(ctx context.Context, env, requestID string) (Endpoint, error)
	Store     Store
	Publisher event.Publisher
	Messenger Messenger
	Notifier  regflow.Notifier
	Now       func() time.Time
	Log       *slog.Logger
	// CopyOptions are extra options for the copy engine (jobs, transport).
	CopyOptions []ocicopy.Option
	// Deployer hands the release to what runs in the environment (nil: nothing to hand to).
	Deployer Deployer
	// Signatures checks the environment's requireSignature again right before the copy,
	// against the digest about to be copied (nil where no environment requires one).
	Signatures regflow.SignatureVerifier
	// Running reads what ECS services run, for their deployment outcomes (nil: outcomes
	// are ignored).
	Running Running
	// Verify records a verification result for an environment (the scan gate's): a failed
	// ECS deployment is one, so the next environment's approval cannot open.
	Verify func(ctx context.Context, v regflow.Verification) error
}

// Deployer hands a release to an environment's SSM parameter, ECS services and Lambda
// aliases (the deploy use case).
type Deployer interface {
	Deploy(ctx context.Context, r deploy.Release) ([]deploy.Outcome, error)
}

// Actor signs the promoter's audit entries.
const Actor = "regflow/promoter"

// Result says what Promote did.
type Result struct {
	RequestID string `json:"requestId"`
	// Outcome is promoted, already-promoted, superseded, already-superseded, refused or
	// tag-conflict; for a rollback, rolled-back, already-rolled-back, stale or refused.
	Outcome string          `json:"outcome"`
	Reason  string          `json:"reason,omitempty"`
	Copy    *ocicopy.Result `json:"copy,omitempty"` // nil when nothing was copied
	// Deployed says what each deployment target did.
	Deployed []deploy.Outcome `json:"deployed,omitempty"`
}

// Invoke handles a "Promotion Approved" event: only its request id is trusted.
func (p *Promoter) Invoke(ctx context.Context, raw json.RawMessage) (Result, error) {
	ev, err := event.Parse(raw)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", event.ErrMalformed, err)
	}
	if ev.DetailType == event.TypeRollbackRequested {
		return p.invokeRollback(ctx, ev)
	}
	if ev.DetailType == event.TypeECSDeployment {
		return p.invokeDeployment(ctx, raw)
	}
	if ev.DetailType != event.TypePromotionApproved {
		return Result{}, fmt.Errorf("%w: expected %q, got %q", event.ErrMalformed, event.TypePromotionApproved, ev.DetailType)
	}
	var d event.PromotionDecision
	if err := json.Unmarshal(ev.Detail, &d); err != nil || d.RequestID == "" {
		return Result{}, fmt.Errorf("%w: %s detail needs requestId", event.ErrMalformed, event.TypePromotionApproved)
	}
	return p.Promote(ctx, d.RequestID)
}

// Promote copies the request's digest into its environment and moves the release pointer.
func (p *Promoter) Promote(ctx context.Context, id string) (Result, error) {
	res := Result{RequestID: id}
	req, err := p.Store.GetRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		res.Outcome, res.Reason = "refused", "no such approval request"
		p.Log.Warn("refusing promotion", "request", id, "reason", res.Reason)
		return res, nil
	}
	if err != nil {
		return res, err
	}
	if res, done, err := p.closed(ctx, req, res); done {
		return res, err
	}
	// One try at a time: a duplicate delivery while another try runs neither copies nor
	// counts (the running try's own retries carry the request on).
	held, err := p.holdAttempt(ctx, id)
	if err != nil {
		return res, err
	}
	if held == nil {
		res.Outcome = "in-progress"
		p.Log.Info("another attempt is copying this request; nothing to do", "request", id)
		return res, nil
	}
	defer held()
	// Count this try before making it: a try the Lambda timeout kills still counts, so the
	// approval cannot stay approved (and protected) forever.
	req, err = store.ChangeRequest(ctx, p.Store, id, func(cur regflow.ApprovalRequest) (regflow.ApprovalRequest, bool) {
		if cur.Status != regflow.StatusApproved {
			return cur, false
		}
		next := cur
		next.Attempts++
		next.Version++
		return next, true
	})
	if err != nil {
		return res, err
	}
	if res, done, err := p.closed(ctx, req, res); done {
		return res, err
	}
	limit := p.maxAttempts()
	if req.Attempts > limit {
		// Delivered again after the last try (a duplicate, a redrive): unless that try
		// moved the pointer before dying, end it here.
		if rel, err := p.Store.GetRelease(ctx, req.Env, req.Repository); err == nil && rel.ApprovalID == req.ID {
			return p.finish(ctx, req, res)
		}
		return p.fail(ctx, req, res, fmt.Errorf("delivered again after its %d attempts", limit))
	}
	// Signed-only, checked again right before the copy, against the digest it copies: a
	// signature removed or swapped since the gate looked ends the promotion.
	if err := p.checkSignature(ctx, req); err != nil {
		if errors.Is(err, errUnsigned) {
			return p.fail(ctx, req, res, err)
		}
		return res, err
	}
	res, cp, err := p.copy(ctx, req, res)
	var conflict *ocicopy.TagConflictError
	switch {
	case errors.As(err, &conflict):
		return p.tagConflict(ctx, req, conflict, res)
	case err != nil:
		now := p.Now()
		// Recorded even when the copy used up the invocation's context.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = p.Store.AppendAudit(rctx, regflow.AuditEntry{Subject: req.Ref(), ID: fmt.Sprintf("promote/%s/attempt/%d", id, req.Attempts), Time: now,
			Action: event.ActionPromotionAttemptFailed, Actor: Actor, Reason: err.Error(),
			Details: map[string]string{"env": req.Env, "attempt": fmt.Sprint(req.Attempts), "of": fmt.Sprint(limit)}})
		if req.Attempts >= limit {
			return p.fail(ctx, req, res, err)
		}
		return res, fmt.Errorf("copy %s to %s (attempt %d of %d): %w", req.Ref(), req.Env, req.Attempts, limit, err)
	}
	p.Log.Info("copied", "request", id, "env", req.Env, "repository", req.Repository, "digest", req.Digest,
		"bytes", cp.BytesMoved, "blobsCopied", cp.BlobsCopied, "blobsSkipped", cp.BlobsSkipped, "referrers", cp.Referrers)
	return p.finish(ctx, req, res)
}

// closed says what a request that is not (or no longer) approved gets: done is false only
// for an approved request, which the promoter goes on to copy.
func (p *Promoter) closed(ctx context.Context, req regflow.ApprovalRequest, res Result) (Result, bool, error) {
	log := p.Log.With("request", req.ID, "env", req.Env, "repository", req.Repository, "digest", req.Digest)
	switch req.Status {
	case regflow.StatusApproved:
		return res, false, nil
	case regflow.StatusPromoted, regflow.StatusSuperseded, regflow.StatusFailed:
		res.Outcome = "already-" + req.Status
		log.Info("request already " + req.Status + "; nothing to do")
		return res, true, nil
	}
	res.Outcome, res.Reason = "refused", fmt.Sprintf("request is %s, not approved", req.Status)
	log.Warn("refusing promotion", "reason", res.Reason)
	_, err := p.Store.AppendAudit(ctx, regflow.AuditEntry{Subject: req.Ref(), ID: "promote/" + req.ID + "/refused/" + req.Status, Time: decidedAt(req),
		Action: event.ActionPromotionRefused, Actor: Actor, Reason: res.Reason, Details: map[string]string{"env": req.Env, "request": req.ID}})
	return res, true, err
}

// holdAttempt claims the request's attempt until the invocation's deadline (when a killed
// try is certainly over) and returns the function giving it back, or nil if another try
// holds it.
func (p *Promoter) holdAttempt(ctx context.Context, id string) (func(), error) {
	now := p.Now()
	until := now.Add(store.DefaultLease)
	if dl, ok := ctx.Deadline(); ok {
		until = now.Add(time.Until(dl))
	}
	key := "promote/attempt/" + id
	won, err := p.Store.Claim(ctx, key, now, until)
	if err != nil || !won {
		return nil, err
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := p.Store.Release(rctx, key); err != nil {
			p.Log.Warn("could not give back the attempt claim; the next try waits for its expiry", "request", id, "error", err)
		}
	}, nil
}

// copyReserve is the part of the invocation's deadline kept back from the copy, so a copy
// that runs out of time still leaves time to record the failed attempt.
const copyReserve = 15 * time.Second

// copy prepares the target repository and copies the request's digest into it, verified.
func (p *Promoter) copy(ctx context.Context, req regflow.ApprovalRequest, res Result) (Result, ocicopy.Result, error) {
	if dl, ok := ctx.Deadline(); ok {
		reserve := min(copyReserve, time.Until(dl)/5)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
		defer cancel()
	}
	srcEnv, ok := p.Config.Previous(req.Env)
	if !ok {
		return res, ocicopy.Result{}, fmt.Errorf("environment %s has no previous environment to promote from", req.Env)
	}
	src, err := p.Endpoints(ctx, srcEnv, req.ID)
	if err != nil {
		return res, ocicopy.Result{}, fmt.Errorf("reach %s registry: %w", srcEnv, err)
	}
	dst, err := p.Endpoints(ctx, req.Env, req.ID)
	if err != nil {
		return res, ocicopy.Result{}, fmt.Errorf("reach %s registry: %w", req.Env, err)
	}
	envCfg := p.Config.Environments[req.Env]
	if _, err := dst.Registry.EnsureRepository(ctx, req.Repository, regflow.RepositorySettings{
		Mutability: regflow.WantImmutable(p.Config.TagPolicy.MutableTags), KMSKey: envCfg.KMSKey,
		// Only the promotion role may push here: what runs in this environment got here by promotion.
		PushRole: envCfg.PromotionRole,
	}); err != nil {
		return res, ocicopy.Result{}, fmt.Errorf("prepare %s repository %s: %w", req.Env, req.Repository, err)
	}
	opts, err := p.copyOptions(ctx, req.Tag, src, dst)
	if err != nil {
		return res, ocicopy.Result{}, err
	}
	cp, err := ocicopy.Copy(ctx, src.Host+"/"+req.Repository+"@"+req.Digest, dst.Host+"/"+req.Repository, opts...)
	res.Copy = &cp
	if err != nil {
		return res, cp, err
	}
	if cp.Digest.String() != req.Digest {
		return res, cp, fmt.Errorf("copy of %s produced %s in %s: %w", req.Ref(), cp.Digest, req.Env, ocicopy.ErrVerification)
	}
	return res, cp, nil
}

func (p *Promoter) maxAttempts() int {
	if n := p.Config.Promotion.MaxAttempts; n > 0 {
		return n
	}
	return 1
}

// fail ends an approved request failed after its last attempt: audited, announced ("Promotion
// Failed"), alerted and its message updated, once each. Its digest stays protected from the
// sweep for promotion.failedGrace, then is released. Nothing is left to retry, so the
// invocation succeeds.
func (p *Promoter) fail(ctx context.Context, req regflow.ApprovalRequest, res Result, cause error) (Result, error) {
	now := p.Now()
	reason := fmt.Sprintf("promotion to %s failed after %d attempts: %v", req.Env, min(req.Attempts, p.maxAttempts()), cause)
	res.Outcome, res.Reason = "failed", reason
	p.Log.Error("promotion failed; giving up", "request", req.ID, "env", req.Env, "repository", req.Repository, "digest", req.Digest, "error", cause)
	req, err := store.ChangeRequest(ctx, p.Store, req.ID, func(cur regflow.ApprovalRequest) (regflow.ApprovalRequest, bool) {
		if cur.Status != regflow.StatusApproved {
			return cur, false
		}
		return cur.Fail(reason, now, p.Config.Promotion.FailedGrace.D()), true
	})
	if err != nil {
		return res, err
	}
	if req.Status != regflow.StatusFailed {
		res.Outcome = "already-" + req.Status
		return res, nil
	}
	if _, err := p.Store.AppendAudit(ctx, regflow.AuditEntry{Subject: req.Ref(), ID: "promote/" + req.ID + "/failed", Time: decidedAt(req),
		Action: event.ActionPromotionFailed, Actor: Actor, Reason: req.Reason,
		Details: map[string]string{"env": req.Env, "attempts": fmt.Sprint(req.Attempts), "protectedUntil": req.ProtectedUntil.Format(time.RFC3339)}}); err != nil {
		return res, err
	}
	if err := p.once(ctx, "event/failed/"+req.ID, func() error {
		return p.publish(ctx, "failed/"+req.ID, now, event.PromotionFailed{RequestID: req.ID, Env: req.Env, Reason: req.Reason})
	}); err != nil {
		return res, fmt.Errorf("announce failed promotion: %w", err)
	}
	if err := p.once(ctx, "alert/failed/"+req.ID, func() error {
		return p.Notifier.Notify(ctx, regflow.Alert{
			Kind: "promotion-failed", Title: fmt.Sprintf("Promotion to %s failed: %s", req.Env, req.Repository),
			Text: req.Reason, Repository: req.Repository, Digest: req.Digest,
			Fields: []regflow.Field{{Label: "Digest", Value: regflow.ShortDigest(req.Digest)}, {Label: "Attempts", Value: fmt.Sprint(req.Attempts)},
				{Label: "Protected from the sweep until", Value: req.ProtectedUntil.Format("2006-01-02 15:04 MST")}},
		})
	}); err != nil {
		return res, fmt.Errorf("alert failed promotion: %w", err)
	}
	note := fmt.Sprintf("Promotion failed after %d attempts; nothing changed in %s. The digest stays protected from the retention sweep until %s.",
		req.Attempts, req.Env, req.ProtectedUntil.Format("2006-01-02 15:04 MST"))
	if err := p.Messenger.Update(ctx, req, slackmsg.Context{Note: note}); err != nil {
		p.Log.Warn("could not update the approval message", "error", err)
	}
	return res, nil
}

func (p *Promoter) copyOptions(ctx context.Context, tag string, src, dst Endpoint) ([]ocicopy.Option, error) {
	opts := append([]ocicopy.Option{ocicopy.WithTag(tag)}, p.CopyOptions...)
	for _, e := range []Endpoint{src, dst} {
		a, err := e.Registry.Authenticator(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, ocicopy.WithAuth(e.Host, a))
		if e.Insecure {
			opts = append(opts, ocicopy.WithInsecureRegistry(e.Host))
		}
	}
	return opts, nil
}

// finish moves the pointer, marks the request promoted, audits, announces and updates Slack.
// Each step is idempotent, so a retry after a crash completes the rest.
func (p *Promoter) finish(ctx context.Context, req regflow.ApprovalRequest, res Result) (Result, error) {
	var approvers []string
	for _, v := range req.Approvals {
		approvers = append(approvers, v.User)
	}
	now := p.Now()
	// The pointer only moves forward in approval order: a newer approval already holding
	// it means this one finished late (a slow or retried copy), and it must not move back.
	var newer *regflow.Release
	previous, err := p.movePointer(ctx, req.Env, req.Repository, func(cur regflow.Release) (regflow.Release, bool) {
		newer = nil
		if cur.Digest == req.Digest {
			return cur, false
		}
		if cur.Supersedes(req.Mark()) {
			newer = &cur
			return cur, false
		}
		return cur.Promote(req, strings.Join(approvers, ","), now, p.Config.Retention.KeepReleases), true
	})
	if err != nil {
		return res, err
	}
	if newer != nil {
		return p.superseded(ctx, req, *newer, res)
	}
	// Promotion is copy + verify + deploy. A deployment that fails is retried with the
	// promotion; after the last attempt the copy stands and the failure is announced.
	out, derr := p.handOver(ctx, req.Env, req.Repository, req.ID, false)
	res.Deployed = out
	if derr != nil {
		if req.Attempts < p.maxAttempts() {
			return res, fmt.Errorf("deploy %s to %s (attempt %d of %d): %w", req.Ref(), req.Env, req.Attempts, p.maxAttempts(), derr)
		}
		if err := p.deploymentFailed(ctx, req, derr); err != nil {
			return res, err
		}
	}
	req, err = store.ChangeRequest(ctx, p.Store, req.ID, func(cur regflow.ApprovalRequest) (regflow.ApprovalRequest, bool) {
		if cur.Status != regflow.StatusApproved {
			return cur, false
		}
		return cur.Transition(regflow.StatusPromoted, fmt.Sprintf("promoted to %s (%s moved)", cur.Env, regflow.Bytes(copied(res)))), true
	})
	if err != nil {
		return res, err
	}
	if _, err := p.Store.AppendAudit(ctx, regflow.AuditEntry{
		Subject: req.Ref(), ID: "promote/" + req.ID, Time: decidedAt(req), Action: event.ActionImagePromoted, Actor: Actor,
		Reason:  "approved by " + strings.Join(approvers, ", "),
		Details: map[string]string{"env": req.Env, "tag": req.Tag, "previous": previous, "bytesMoved": fmt.Sprint(copied(res))},
	}); err != nil {
		return res, err
	}
	if err := p.once(ctx, "event/promoted/"+req.ID, func() error {
		return p.publish(ctx, "promoted/"+req.ID, now, event.ImagePromoted{RequestID: req.ID, Env: req.Env, Repository: req.Repository,
			Digest: req.Digest, Tag: req.Tag, Previous: previous, ApprovedBy: approvers, BytesMoved: copied(res)})
	}); err != nil {
		return res, fmt.Errorf("announce promotion: %w", err)
	}
	if err := p.Messenger.Update(ctx, req, slackmsg.Context{Note: fmt.Sprintf("Promoted to %s: same digest, %s copied", req.Env, regflow.Bytes(copied(res)))}); err != nil {
		// The promotion stands; a stale message is not worth a retry that would redo nothing.
		p.Log.Warn("could not update the approval message", "error", err)
	}
	res.Outcome = "promoted"
	return res, nil
}

// movePointer applies change to an environment's release pointer with optimistic concurrency,
// returning the digest it replaced.
func (p *Promoter) movePointer(ctx context.Context, env, repo string, change func(regflow.Release) (regflow.Release, bool)) (string, error) {
	var before regflow.Release
	var moved bool
	_, err := store.Change(ctx, store.ReleaseItem(p.Store, env, repo), func(cur regflow.Release) (regflow.Release, bool, error) {
		before = cur
		next, changed := change(cur)
		moved = changed
		return next, changed, nil
	})
	switch {
	case err != nil:
		return "", err
	case moved:
		return before.Digest, nil
	case len(before.Previous) > 0:
		return before.Previous[0], nil
	}
	return "", nil
}

// superseded records that req's copy finished after a newer approval took the pointer:
// the request ends superseded, audited, announced and its message updated, once each;
// the copy stays in the registry for a rollback to point at.
func (p *Promoter) superseded(ctx context.Context, req regflow.ApprovalRequest, cur regflow.Release, res Result) (Result, error) {
	reason := fmt.Sprintf("superseded: %s already runs %s from a newer approval (%s); the copy is left in place",
		req.Env, regflow.ShortDigest(cur.Digest), cur.ApprovalID)
	res.Outcome, res.Reason = "superseded", reason
	p.Log.Warn("promotion superseded; release pointer left where it is", "request", req.ID, "env", req.Env,
		"repository", req.Repository, "digest", req.Digest, "current", cur.Digest, "currentRequest", cur.ApprovalID)
	req, err := store.ChangeRequest(ctx, p.Store, req.ID, func(r regflow.ApprovalRequest) (regflow.ApprovalRequest, bool) {
		if r.Status != regflow.StatusApproved {
			return r, false
		}
		return r.Transition(regflow.StatusSuperseded, reason), true
	})
	if err != nil {
		return res, err
	}
	if _, err := p.Store.AppendAudit(ctx, regflow.AuditEntry{Subject: req.Ref(), ID: "promote/" + req.ID + "/superseded", Time: decidedAt(req),
		Action: event.ActionPromotionSuperseded, Actor: Actor, Reason: reason,
		Details: map[string]string{"env": req.Env, "current": cur.Digest, "currentRequest": cur.ApprovalID}}); err != nil {
		return res, err
	}
	if err := p.once(ctx, "event/superseded/"+req.ID, func() error {
		return p.publish(ctx, "superseded/"+req.ID, p.Now(), event.PromotionSuperseded{RequestID: req.ID, Env: req.Env, Repository: req.Repository,
			Digest: req.Digest, Tag: req.Tag, Current: cur.Digest, CurrentRequestID: cur.ApprovalID})
	}); err != nil {
		return res, fmt.Errorf("announce superseded promotion: %w", err)
	}
	note := fmt.Sprintf("Superseded: copied into %s, but %s already runs `%s` from a newer approval; the release pointer stayed. Roll back to use this copy.",
		req.Env, req.Env, regflow.ShortDigest(cur.Digest))
	if err := p.Messenger.Update(ctx, req, slackmsg.Context{Note: note}); err != nil {
		p.Log.Warn("could not update the approval message", "error", err)
	}
	return res, nil
}

func (p *Promoter) tagConflict(ctx context.Context, req regflow.ApprovalRequest, c *ocicopy.TagConflictError, res Result) (Result, error) {
	res.Outcome, res.Reason = "tag-conflict", c.Error()
	p.Log.Error("tag conflict; nothing overwritten", "error", c)
	if _, err := p.Store.AppendAudit(ctx, regflow.AuditEntry{Subject: req.Ref(), ID: "promote/" + req.ID + "/tag-conflict", Time: decidedAt(req),
		Action: event.ActionPromotionTagConflict, Actor: Actor, Reason: c.Error(), Details: map[string]string{"env": req.Env, "existing": c.Existing.String()}}); err != nil {
		return res, err
	}
	if _, err := store.ChangeRequest(ctx, p.Store, req.ID, func(cur regflow.ApprovalRequest) (regflow.ApprovalRequest, bool) {
		if cur.Status != regflow.StatusApproved {
			return cur, false
		}
		return cur.Fail("tag conflict: "+c.Tag+" already names "+c.Existing.String(), p.Now(), p.Config.Promotion.FailedGrace.D()), true
	}); err != nil {
		return res, err
	}
	err := p.once(ctx, "alert/tag-conflict/"+req.ID, func() error {
		if err := p.publish(ctx, "tag-conflict/"+req.ID, p.Now(), event.PromotionFailed{RequestID: req.ID, Env: req.Env, Reason: c.Error()}); err != nil {
			return err
		}
		return p.Notifier.Notify(ctx, regflow.Alert{
			Kind: "tag-conflict", Title: fmt.Sprintf("Promotion to %s refused: tag conflict on %s", req.Env, req.Repository),
			Text: c.Error(), Repository: req.Repository, Digest: req.Digest,
			Fields: []regflow.Field{{Label: "Approved digest", Value: regflow.ShortDigest(req.Digest)}, {Label: "Tag already names", Value: regflow.ShortDigest(c.Existing.String())}},
		})
	})
	// A tag conflict will not resolve itself on retry: report it, do not fail the invocation.
	return res, err
}

func (p *Promoter) publish(ctx context.Context, key string, at time.Time, detail event.Detail) error {
	return p.Publisher.Publish(ctx, event.Message{Detail: detail, Key: key, At: at})
}

func (p *Promoter) once(ctx context.Context, key string, effect func() error) error {
	_, err := store.Once(ctx, p.Store, key, p.Now(), store.DefaultLease, 7*24*time.Hour, effect)
	return err
}

func copied(r Result) int64 {
	if r.Copy == nil {
		return 0
	}
	return r.Copy.BytesMoved
}

// decidedAt stamps the promoter's audit entries with a time fixed by the request, so a
// redelivered event finds its entry already written instead of appending another.
func decidedAt(r regflow.ApprovalRequest) time.Time {
	if !r.DecidedAt.IsZero() {
		return r.DecidedAt
	}
	return r.CreatedAt
}

// handOver deploys what env's pointer for repo holds. It deploys the pointer, not the
// request, and reads the pointer again after: if another promotion or rollback moved it
// meanwhile, it deploys that one too, so the targets end on the pointer whatever the order
// in which concurrent promotions finish.
func (p *Promoter) handOver(ctx context.Context, env, repo, id string, rollback bool) ([]deploy.Outcome, error) {
	if p.Deployer == nil {
		return nil, nil
	}
	rel, err := p.Store.GetRelease(ctx, env, repo)
	if err != nil {
		return nil, fmt.Errorf("read %s's release of %s to deploy it: %w", env, repo, err)
	}
	for range 3 {
		var by []string
		if rel.By != "" {
			by = strings.Split(rel.By, ",")
		}
		out, err := p.Deployer.Deploy(ctx, deploy.Release{Env: env, Repository: repo, Digest: rel.Digest, Tag: rel.Tag, Commit: rel.Tag,
			ApprovedBy: by, At: rel.At, Rollback: rollback, RequestID: id})
		if err != nil {
			return out, err
		}
		again, err := p.Store.GetRelease(ctx, env, repo)
		if err != nil {
			return out, err
		}
		if again.Digest == rel.Digest {
			return out, p.handedOver(ctx, env, repo, id, rel.Digest, out)
		}
		rel = again
	}
	return nil, fmt.Errorf("%s's release of %s keeps moving while it is deployed; the latest move deploys it", env, repo)
}

// deploymentFailed records, announces and alerts once that a promoted digest could not be
// handed to its environment's targets.
func (p *Promoter) deploymentFailed(ctx context.Context, req regflow.ApprovalRequest, cause error) error {
	now := p.Now()
	reason := cause.Error()
	if _, err := p.Store.AppendAudit(ctx, regflow.AuditEntry{Subject: req.Ref(), ID: "deploy/" + req.ID + "/failed", Time: now,
		Action: event.ActionDeploymentFailed, Actor: Actor, Reason: reason, Details: map[string]string{"env": req.Env}}); err != nil {
		return err
	}
	if err := p.once(ctx, "event/deployment-failed/"+req.ID, func() error {
		return p.publish(ctx, "deployment-failed/"+req.ID, now, event.DeploymentFailed{RequestID: req.ID, Env: req.Env,
			Repository: req.Repository, Digest: req.Digest, Reason: reason})
	}); err != nil {
		return fmt.Errorf("announce the failed deployment: %w", err)
	}
	return p.once(ctx, "alert/deployment-failed/"+req.ID, func() error {
		return p.Notifier.Notify(ctx, regflow.Alert{Kind: "deployment-failed", Title: fmt.Sprintf("%s is in %s but could not be deployed", req.Ref(), req.Env),
			Text: reason, Repository: req.Repository, Digest: req.Digest})
	})
}

// errUnsigned marks a digest that does not carry the signature its environment requires.
var errUnsigned = errors.New("signature required")

// checkSignature verifies req.Env's requireSignature against req.Digest in the registry it
// is copied from.
func (p *Promoter) checkSignature(ctx context.Context, req regflow.ApprovalRequest) error {
	if p.Config.Environments[req.Env].RequireSignature == nil {
		return nil
	}
	if p.Signatures == nil {
		return fmt.Errorf("%s requires a signature but this function has no signature verifier: deploy the promoter with signatures on", req.Env)
	}
	src, _ := p.Config.Previous(req.Env)
	st, err := p.Signatures.VerifySignature(ctx, regflow.SignatureCheck{Env: req.Env, In: src, Repository: req.Repository, Digest: req.Digest})
	if err != nil {
		return fmt.Errorf("check the signature of %s for %s: %w", req.Ref(), req.Env, err)
	}
	if !st.Verified {
		return fmt.Errorf("%w: %s", errUnsigned, st.Reason)
	}
	return nil
}

// handedOver announces "Release Deployed" once per promotion or rollback when every target
// is deployed by the hand-over itself: an SSM parameter or a Lambda alias runs the digest
// once it is written or moved. An ECS service is deployed only when its deployment
// completes, and its SERVICE_DEPLOYMENT_COMPLETED announces it (invokeDeployment).
func (p *Promoter) handedOver(ctx context.Context, env, repo, id, digest string, out []deploy.Outcome) error {
	if len(out) == 0 {
		return nil
	}
	var targets []string
	for _, o := range out {
		if o.Kind == "ecs" {
			return nil
		}
		targets = append(targets, o.Target)
	}
	return p.once(ctx, "event/release-deployed/"+env+"/"+repo+"/"+id, func() error {
		return p.publish(ctx, "release-deployed/"+env+"/"+repo+"/"+id, p.Now(), event.ReleaseDeployed{RequestID: id, Env: env, Repository: repo, Digest: digest, Targets: targets})
	})
}
