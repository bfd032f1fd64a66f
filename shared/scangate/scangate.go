// Package scangate is the use case run on scan results: it records the counts,
// applies the gate of the next environment on the promotion path, and opens an
// approval request (with a Slack message) or blocks the digest with an alert.
// It also takes deployment verification results, which can open a request that
// was waiting for them.
package scangate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ecrevent"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/store"
)

// Registry is what the gate reads from ECR.
type Registry interface {
	ScanFindings(ctx context.Context, repo, digest string) ([]regflow.Finding, error)
	DescribeImage(ctx context.Context, repo, digest string) (regflow.RegistryImage, error)
	// ParentIndexes lists the tagged indexes that list digest as a platform image, newest first.
	ParentIndexes(ctx context.Context, repo, digest string) ([]regflow.Index, error)
	// Platforms lists an index's platform images (nil for an image).
	Platforms(ctx context.Context, repo, digest string) ([]string, error)
}

// Store is what the gate persists.
type Store interface {
	PutScan(ctx context.Context, s regflow.Scan) error
	GetScan(ctx context.Context, env, repo, digest string) (regflow.Scan, error)
	GetImage(ctx context.Context, repo, digest string) (regflow.Image, error)
	CreateRequest(ctx context.Context, r regflow.ApprovalRequest) (bool, error)
	GetRequest(ctx context.Context, id string) (regflow.ApprovalRequest, error)
	UpdateRequest(ctx context.Context, next regflow.ApprovalRequest) error
	PutVerification(ctx context.Context, v regflow.Verification) error
	GetVerification(ctx context.Context, env, repo, digest string) (regflow.Verification, error)
	GetRelease(ctx context.Context, env, repo string) (regflow.Release, error)
	AppendAudit(ctx context.Context, e regflow.AuditEntry) (bool, error)
	Audit(ctx context.Context, subject string) ([]regflow.AuditEntry, error)
	store.Claimer
}

// Messenger posts approval messages.
type Messenger interface {
	Post(ctx context.Context, channel string, r regflow.ApprovalRequest, c slackmsg.Context) (string, string, error)
}

// Gate handles scan results and verification reports.
type Gate struct {
	Config *config.Config
	// Registries returns the registry of an environment.
	Registries func(env string) (Registry, error)
	Store      Store
	Messenger  Messenger
	Notifier   regflow.Notifier
	// Signatures checks requireSignature (nil where no environment requires one).
	Signatures regflow.SignatureVerifier
	Now        func() time.Time
	Log        *slog.Logger
}

// Actor signs the gate's audit entries.
const Actor = "regflow/scangate"

const onceTTL = 7 * 24 * time.Hour

// Result says what the gate did.
type Result struct {
	Ignored   bool   `json:"ignored,omitempty"`
	Env       string `json:"env,omitempty"`
	Next      string `json:"next,omitempty"`
	RequestID string `json:"requestId,omitempty"`
	Status    string `json:"status,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Invoke decodes a scan event or a "Verification Result" event and handles it.
func (g *Gate) Invoke(ctx context.Context, raw json.RawMessage) (Result, error) {
	env, err := ecrevent.DecodeEnvelope(raw)
	if err == nil && env.DetailType == event.TypeVerificationResult {
		return g.invokeVerification(ctx, env)
	}
	if err == nil && env.DetailType == event.TypeAPICall {
		return g.invokePutImage(ctx, raw)
	}
	if err == nil && (env.DetailType == event.TypeImagePromoted || env.DetailType == event.TypePromotionSuperseded) && env.Source == event.SourceRegflow {
		return g.invokePromoted(ctx, env)
	}
	ev, err := ecrevent.DecodeImageScan(raw)
	if err != nil {
		g.Log.Error("refusing event", "error", err)
		return Result{}, err
	}
	return g.Handle(ctx, ev)
}

func (g *Gate) invokeVerification(ctx context.Context, env *ecrevent.Envelope) (Result, error) {
	var d event.VerificationResult
	if err := json.Unmarshal(env.Detail, &d); err != nil {
		return Result{}, fmt.Errorf("%w: %s detail: %w", ecrevent.ErrMalformed, event.TypeVerificationResult, err)
	}
	if d.Env == "" || d.Repository == "" || d.Passed == nil || d.ReportedBy == "" || !strings.HasPrefix(d.Digest, "sha256:") {
		return Result{}, fmt.Errorf("%w: %s needs env, repository, digest (sha256:…), passed and reportedBy", ecrevent.ErrMalformed, event.TypeVerificationResult)
	}
	target, ok := g.Config.Env(d.Env)
	if !ok {
		return Result{}, fmt.Errorf("%w: %s for environment %q, which is not configured", ecrevent.ErrMalformed, event.TypeVerificationResult, d.Env)
	}
	if err := g.verificationSender(env, d.Env, target); err != nil {
		return Result{}, err
	}
	// The requester counts only from the environment's own deployment pipeline: EventBridge
	// attests the sending account, and only that account's pipeline deploys there. Anyone in
	// the pipeline account may put this event, so from there the field names nobody.
	requester := d.Requester
	if env.Account != target.Account {
		requester = ""
	}
	return g.Verify(ctx, regflow.Verification{
		Env: d.Env, Repository: d.Repository, Digest: d.Digest, Passed: *d.Passed, URL: d.URL,
		By: d.ReportedBy + " (account " + env.Account + ")", Requester: requester, At: env.Time.Time,
	})
}

// verificationSender says whether a report on envName may come from this event's sender.
// EventBridge tells us the sending account and the source, not the principal; the bus
// policy ties the source event.VerificationSource(env) to the roles the config names, so:
// the environment's own account may report on it, unless the config names reporters and
// that account is the pipeline account (where CI and everyone else lives); a named
// reporter reports from the pipeline account under the environment's own source.
func (g *Gate) verificationSender(ev *ecrevent.Envelope, envName string, target config.Environment) error {
	pipeline := g.Config.Pipeline.Account
	named := len(target.VerificationReporters) > 0
	switch {
	case named && ev.Account == pipeline && ev.Source == event.VerificationSource(envName):
		return nil
	case ev.Account == target.Account && !(named && target.Account == pipeline):
		return nil
	}
	allowed := fmt.Sprintf("%s's account %s", envName, target.Account)
	if named {
		allowed = fmt.Sprintf("%s's reporters (%s) under source %s", envName, strings.Join(target.VerificationReporters, ", "), event.VerificationSource(envName))
		if target.Account != pipeline {
			allowed = fmt.Sprintf("%s's account %s or %s", envName, target.Account, allowed)
		}
	}
	return fmt.Errorf("%s for %s refused: sent from account %s with source %q, but only %s may report on it (environments.%s.verificationReporters names roles of the pipeline account)",
		event.TypeVerificationResult, envName, ev.Account, ev.Source, allowed, envName)
}

// Handle processes one scan result.
func (g *Gate) Handle(ctx context.Context, ev *ecrevent.ImageScan) (Result, error) {
	log := g.Log.With("event", ev.ID, "repository", ev.Repository, "digest", ev.Digest)
	if !strings.HasSuffix(ev.Status, "COMPLETE") {
		log.Info("scan not complete; nothing to gate", "status", ev.Status)
		return Result{Ignored: true}, nil
	}
	env, ok := g.Config.EnvFor(ev.Account, ev.Region)
	if !ok {
		return Result{}, fmt.Errorf("scan event from account %s in %s, which is no configured environment's registry (an environment is an account and a region)", ev.Account, ev.Region)
	}
	res := Result{Env: env}
	if err := g.Store.PutScan(ctx, regflow.Scan{Env: env, Repository: ev.Repository, Digest: ev.Digest, Enhanced: ev.Enhanced, Status: ev.Status, Counts: ev.Counts, At: ev.Time.Time}); err != nil {
		return res, err
	}
	next, ok := g.Config.Next(env)
	if !ok {
		log.Info("scan recorded; last environment on the path", "env", env)
		return res, nil
	}
	res.Next = next
	reg, err := g.Registries(env)
	if err != nil {
		return res, err
	}
	subj, err := g.subject(ctx, reg, env, ev)
	if err != nil {
		return res, err
	}
	if subj.skip != "" {
		log.Info("scan recorded; nothing to gate", "why", subj.skip)
		res.Ignored, res.Reason = true, subj.skip
		return res, nil
	}
	if ok, err := g.custody(ctx, env, ev.Repository, subj.digest); err != nil {
		return res, err
	} else if !ok {
		return g.refuseCustody(ctx, res, env, ev.Account, ev.Region, ev.Repository, subj.digest, "scan/"+ev.ID, ev.Time.Time)
	}
	tag, commit := g.identify(ctx, ev.Repository, subj)
	var findings []regflow.Finding
	gate := g.Config.Environments[next].Gate
	unreported := Unreported(ev.Enhanced, ev.Reported, ev.Counts, ev.Total, gate)
	if ev.Enhanced && subj.digest != ev.Digest {
		// The other platforms' events are not at hand: their TOTALs cannot be checked.
		unreported = append(unreported, "an index's platforms are gated on their findings")
	}
	if NeedsFindings(subj.counts, gate) || len(unreported) > 0 {
		if len(unreported) > 0 {
			log.Info("the event's counts cannot decide the gate; reading the findings", "why", strings.Join(unreported, "; "))
		}
		findings = []regflow.Finding{} // read, even if there are none
		for _, d := range subj.scanned {
			f, err := reg.ScanFindings(ctx, ev.Repository, d)
			if err != nil {
				return res, fmt.Errorf("read findings of %s@%s: %w", ev.Repository, d, err)
			}
			findings = append(findings, f...)
		}
	}
	verdict := Evaluate(next, subj.counts, findings, gate, g.Config.Allowlist, ev.Repository, g.Now())
	want := regflow.ApprovalRequest{
		ID: regflow.RequestID(next, ev.Repository, subj.digest), Env: next, Repository: ev.Repository, Digest: subj.digest,
		Tag: tag, Commit: commit, Required: g.Config.Environments[next].Approvers.Required, Findings: subj.counts,
		CreatedAt: g.Now(), ExpiresAt: g.Now().Add(g.Config.Approvals.Expiry.D()),
	}
	if env == g.Config.Source() {
		// Who asked for the first promotion is who pushed the image, where CloudTrail says so.
		by, err := g.pusher(ctx, ev.Repository, subj.digest)
		if err != nil {
			return res, err
		}
		want.RequestedBy = by
	}
	if !verdict.Pass {
		want.Status, want.Reason = regflow.StatusBlocked, verdict.Reason
		r, err := g.apply(ctx, want, "scan/"+ev.ID, ev.Time.Time, verdict.Blocking)
		return fill(res, r), err
	}
	want.Status, want.Reason = regflow.StatusPending, verdict.Reason
	if g.Config.Environments[next].RequireSignature != nil {
		// Signed-only: the digest, as it is in this environment's registry, must carry a
		// signature the next environment trusts (an index's own signature covers its platforms).
		st, err := g.signature(ctx, next, env, ev.Repository, subj.digest)
		if err != nil {
			return res, err
		}
		want.Signature = &st
		if !st.Verified {
			want.Status, want.Reason = regflow.StatusBlocked, st.Line()
			r, err := g.apply(ctx, want, "scan/"+ev.ID, ev.Time.Time, nil)
			return fill(res, r), err
		}
	}
	if !g.Config.Environments[next].RequireVerification {
		// Not waited for, but a failure reported before this scan (tests, or an ECS
		// deployment the circuit breaker rolled back) still keeps the approval closed.
		v, err := g.Store.GetVerification(ctx, env, ev.Repository, subj.digest)
		switch {
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return res, err
		case err == nil && !v.Passed:
			want.Status, want.Reason = regflow.StatusBlocked, fmt.Sprintf("verification failed in %s (reported by %s)", env, v.By)
		}
	} else {
		v, err := g.Store.GetVerification(ctx, env, ev.Repository, subj.digest)
		switch {
		case errors.Is(err, store.ErrNotFound):
			want.Status, want.Reason = regflow.StatusWaiting, fmt.Sprintf("gate passed; waiting for the %s deployment to report verification", env)
		case err != nil:
			return res, err
		case !v.Passed:
			want.Status, want.Reason = regflow.StatusBlocked, fmt.Sprintf("verification failed in %s (reported by %s)", env, v.By)
		default:
			want.RequestedBy = requester(v)
		}
	}
	r, err := g.apply(ctx, want, "scan/"+ev.ID, ev.Time.Time, nil)
	return fill(res, r), err
}

func fill(res Result, r regflow.ApprovalRequest) Result {
	res.RequestID, res.Status, res.Reason = r.ID, r.Status, r.Reason
	return res
}

// subject is what a scan result gates: the scanned image itself, or, for a platform image
// (ECR scans those, never an index), the tagged index that lists it, with the counts of all
// its platforms once every one has been scanned.
type subject struct {
	digest  string
	tags    []string
	counts  map[string]int
	scanned []string // digests whose findings make up counts
	skip    string   // why there is nothing to gate, if so
}

func (g *Gate) subject(ctx context.Context, reg Registry, env string, ev *ecrevent.ImageScan) (subject, error) {
	info, err := reg.DescribeImage(ctx, ev.Repository, ev.Digest)
	if errors.Is(err, regflow.ErrImageNotFound) || errors.Is(err, regflow.ErrRepositoryNotFound) {
		return subject{skip: "the image was deleted after its scan"}, nil
	}
	if err != nil {
		return subject{}, fmt.Errorf("describe %s@%s: %w", ev.Repository, ev.Digest, err)
	}
	if len(info.Tags) > 0 {
		return subject{digest: ev.Digest, tags: info.Tags, counts: ev.Counts, scanned: []string{ev.Digest}}, nil
	}
	parents, err := reg.ParentIndexes(ctx, ev.Repository, ev.Digest)
	if err != nil {
		return subject{}, fmt.Errorf("find the index of %s@%s: %w", ev.Repository, ev.Digest, err)
	}
	if len(parents) == 0 {
		return subject{skip: "an untagged image that no tagged index lists: nothing to promote"}, nil
	}
	idx := parents[0] // the newest; a platform image shared by several indexes is gated with the latest build
	sum := map[string]int{}
	for _, p := range idx.Platforms {
		sc, err := g.Store.GetScan(ctx, env, ev.Repository, p)
		if errors.Is(err, store.ErrNotFound) {
			return subject{skip: fmt.Sprintf("waiting for the scans of all %d platforms of %s", len(idx.Platforms), regflow.ShortDigest(idx.Digest))}, nil
		}
		if err != nil {
			return subject{}, err
		}
		for sev, n := range sc.Counts {
			sum[sev] += n
		}
	}
	return subject{digest: idx.Digest, tags: idx.Tags, counts: sum, scanned: idx.Platforms}, nil
}

// identify names the subject by its SHA tag and commit, from tagguard's record or the tags.
func (g *Gate) identify(ctx context.Context, repo string, s subject) (string, string) {
	commit := ""
	if img, err := g.Store.GetImage(ctx, repo, s.digest); err == nil {
		commit = img.Commit
	}
	if commit == "" {
		commit = regflow.CommitFromTags(s.tags)
	}
	return pick(s.tags, commit), commit
}

func pick(tags []string, commit string) string {
	if commit != "" {
		return commit
	}
	if len(tags) > 0 {
		return tags[0]
	}
	return ""
}

// Verify records a deployment's verification result and opens, or blocks, the next environment's request.
func (g *Gate) Verify(ctx context.Context, v regflow.Verification) (Result, error) {
	if _, ok := g.Config.Environments[v.Env]; !ok {
		return Result{}, fmt.Errorf("environment %q is not configured", v.Env)
	}
	if v.By == "" {
		return Result{}, errors.New("a verification needs the identity of who reports it")
	}
	if next, ok := g.Config.Next(v.Env); ok {
		if ok, err := g.custody(ctx, v.Env, v.Repository, v.Digest); err != nil {
			return Result{}, err
		} else if !ok {
			// Not even recorded: a pass reported before a digest arrives must not count once it does.
			e := g.Config.Environments[v.Env]
			return g.refuseCustody(ctx, Result{Env: v.Env, Next: next}, v.Env, e.Account, e.Region, v.Repository, v.Digest, "verify/"+v.Env, v.At)
		}
	}
	if err := g.Store.PutVerification(ctx, v); err != nil {
		return Result{}, err
	}
	outcome, action := "passed", event.ActionVerificationPassed
	if !v.Passed {
		outcome, action = "failed", event.ActionVerificationFailed
	}
	if _, err := g.Store.AppendAudit(ctx, regflow.AuditEntry{
		Subject: v.Repository + "@" + v.Digest, ID: "verify/" + v.Env + "/" + outcome, Time: v.At, Action: action,
		Actor: v.By, Reason: "deployment verification in " + v.Env, Details: map[string]string{"url": v.URL},
	}); err != nil {
		return Result{}, err
	}
	res := Result{Env: v.Env}
	next, ok := g.Config.Next(v.Env)
	if !ok {
		return res, nil
	}
	res.Next = next
	cur, err := g.Store.GetRequest(ctx, regflow.RequestID(next, v.Repository, v.Digest))
	if errors.Is(err, store.ErrNotFound) {
		// The scan of this digest in v.Env has not arrived; the gate will find this verification then.
		res.Reason = "recorded; the " + next + " request opens when the scan result arrives"
		return res, nil
	}
	if err != nil {
		return res, err
	}
	want := cur
	switch {
	case !v.Passed:
		want.Status, want.Reason = regflow.StatusBlocked, fmt.Sprintf("verification failed in %s (reported by %s)", v.Env, v.By)
	case cur.Status == regflow.StatusWaiting:
		want.Status, want.Reason, want.RequestedBy = regflow.StatusPending, fmt.Sprintf("verified in %s by %s", v.Env, v.By), requester(v)
	default:
		return fill(res, cur), nil
	}
	r, err := g.apply(ctx, want, "verify/"+v.Env+"/"+outcome, v.At, nil)
	return fill(res, r), err
}

// apply creates or moves the request to want's status (only from open states), then alerts
// or posts the approval message once.
func (g *Gate) apply(ctx context.Context, want regflow.ApprovalRequest, cause string, at time.Time, blocking []regflow.Finding) (regflow.ApprovalRequest, error) {
	r := want
	created, err := g.Store.CreateRequest(ctx, want)
	if err != nil {
		return r, err
	}
	if created {
		r.Version = 1
	} else {
		r, err = store.ChangeRequest(ctx, g.Store, want.ID, func(cur regflow.ApprovalRequest) (regflow.ApprovalRequest, bool) {
			// An expired request reopens on a new scan or verification; decided ones are history.
			open := cur.Status == regflow.StatusBlocked || cur.Status == regflow.StatusWaiting ||
				cur.Status == regflow.StatusPending || cur.Status == regflow.StatusExpired
			if !open || cur.Status == want.Status {
				return cur, false // same status means a redelivery
			}
			next := cur.Transition(want.Status, want.Reason)
			if want.RequestedBy != "" {
				next.RequestedBy = want.RequestedBy
			}
			next.Findings = want.Findings
			if next.Status == regflow.StatusPending {
				// The approval window starts when people can approve, not when the scan came in;
				// a reopened request gets a message of its own.
				next.ExpiresAt = g.Now().Add(g.Config.Approvals.Expiry.D())
				next.SlackChannel, next.SlackTS, next.Approvals = "", "", nil
			}
			return next, true
		})
		if err != nil {
			return r, err
		}
	}
	if _, err := g.Store.AppendAudit(ctx, regflow.AuditEntry{
		Subject: r.Ref(), ID: cause + "/" + r.Env + "/" + r.Status, Time: at, Action: event.ActionRequest(r.Status),
		Actor: Actor, Reason: r.Reason, Details: map[string]string{"env": r.Env, "request": r.ID},
	}); err != nil {
		return r, err
	}
	switch r.Status {
	case regflow.StatusBlocked:
		// Keyed by version: a redelivery that changes nothing does not alert again.
		return r, g.once(ctx, fmt.Sprintf("alert/%s/blocked/v%d", r.ID, r.Version), func() error { return g.Notifier.Notify(ctx, blockedAlert(r, blocking)) })
	case regflow.StatusPending:
		if r.SlackTS != "" {
			return r, nil
		}
		return g.postApproval(ctx, r)
	}
	return r, nil
}

func (g *Gate) postApproval(ctx context.Context, r regflow.ApprovalRequest) (regflow.ApprovalRequest, error) {
	env := g.Config.Environments[r.Env]
	if env.SlackChannel == "" {
		g.Log.Warn("no slackChannel for environment; approval request open without a message", "env", r.Env, "request", r.ID)
		return r, nil
	}
	c := slackmsg.Context{Approvers: slackmsg.Approvers(env.Approvers.Users, env.Approvers.Groups)}
	if prev, ok := g.Config.Previous(r.Env); ok {
		if v, err := g.Store.GetVerification(ctx, prev, r.Repository, r.Digest); err == nil {
			c.Verification = &v
		}
	}
	// Only the post is under the claim: once Slack has the message, a failure to store where
	// it went must not free the claim, or the retry would post a second set of live buttons.
	var ch, ts string
	if err := g.once(ctx, fmt.Sprintf("slack/%s/v%d", r.ID, r.Version), func() error {
		var err error
		ch, ts, err = g.Messenger.Post(ctx, env.SlackChannel, r, c)
		return err
	}); err != nil || ts == "" {
		return r, err
	}
	posted, err := store.ChangeRequest(ctx, g.Store, r.ID, func(cur regflow.ApprovalRequest) (regflow.ApprovalRequest, bool) {
		next := cur
		next.SlackChannel, next.SlackTS = ch, ts
		next.Version++
		return next, true
	})
	if err != nil {
		return r, fmt.Errorf("store where the approval message of %s went (%s %s): %w", r.ID, ch, ts, err)
	}
	return posted, nil
}

// once runs a side effect that cannot be undone (a Slack post) at most once per key.
func (g *Gate) once(ctx context.Context, key string, effect func() error) error {
	_, err := store.Once(ctx, g.Store, key, g.Now(), store.DefaultLease, onceTTL, effect)
	return err
}

func blockedAlert(r regflow.ApprovalRequest, blocking []regflow.Finding) regflow.Alert {
	var ids []string
	for i, f := range blocking {
		if i == 10 {
			ids = append(ids, fmt.Sprintf("… and %d more", len(blocking)-10))
			break
		}
		s := f.ID + " (" + f.Severity
		if f.Package != "" {
			s += ", " + f.Package
		}
		ids = append(ids, s+")")
	}
	fields := []regflow.Field{
		{Label: "Digest", Value: regflow.ShortDigest(r.Digest)},
		{Label: "Tag", Value: r.Tag},
		{Label: "Findings", Value: slackmsg.Severity(r.Findings)},
	}
	if len(ids) > 0 {
		fields = append(fields, regflow.Field{Label: "Blocking findings", Value: strings.Join(ids, "\n")})
	}
	return regflow.Alert{
		Kind: "promotion-blocked", Title: fmt.Sprintf("Blocked for %s: %s", r.Env, r.Repository),
		Text: r.Reason, Repository: r.Repository, Digest: r.Digest, Fields: fields,
	}
}

// requester is who asked for the promotion: the verification's requester, which its callers
// take from a trusted source only (the environment's pipeline, or a verified identity the
// config maps). Never the reporter's name: that is whatever the reporter wrote.
func requester(v regflow.Verification) string { return v.Requester }

// custody reports whether digest reached env by promotion: env's release pointer holds it
// (now or before), or a request into env for it was approved (the promoter copies an
// approved digest, and the scan of the copy may arrive before the pointer moves). Every
// digest in the source environment is in custody: CI pushes there, and dev's gate is the
// first. Digests are content addresses, so an approved digest is the image that was approved.
func (g *Gate) custody(ctx context.Context, env, repo, digest string) (bool, error) {
	if env == g.Config.Source() {
		return true, nil
	}
	rel, err := g.Store.GetRelease(ctx, env, repo)
	switch {
	case err == nil && (rel.Digest == digest || slices.Contains(rel.Previous, digest)):
		return true, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return false, fmt.Errorf("read %s's release pointer of %s: %w", env, repo, err)
	}
	req, err := g.Store.GetRequest(ctx, regflow.RequestID(env, repo, digest))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read the %s request of %s@%s: %w", env, repo, digest, err)
	}
	switch req.Status {
	case regflow.StatusApproved, regflow.StatusPromoted, regflow.StatusFailed, regflow.StatusSuperseded:
		// Superseded: copied in approval, then a newer approval took the pointer.
		return true, nil
	}
	return false, nil
}

// refuseCustody opens nothing for a digest that did not come by promotion: it audits the
// refusal and alerts once per digest and environment.
func (g *Gate) refuseCustody(ctx context.Context, res Result, env, account, region, repo, digest, cause string, at time.Time) (Result, error) {
	prev, _ := g.Config.Previous(env)
	reason := fmt.Sprintf("pushed directly into %s: it did not pass %s's gate", env, prev)
	res.Ignored, res.Reason = true, reason+"; nothing opens for "+orNone(res.Next)
	g.Log.Warn("digest not in custody; nothing opens", "env", env, "repository", repo, "digest", digest, "account", account, "region", region)
	if _, err := g.Store.AppendAudit(ctx, regflow.AuditEntry{
		Subject: repo + "@" + digest, ID: cause + "/custody", Time: at, Action: event.ActionCustodyRefused, Actor: Actor, Reason: reason,
		Details: map[string]string{"env": env, "account": account, "region": region, "next": res.Next},
	}); err != nil {
		return res, err
	}
	alert := regflow.Alert{
		Kind: "custody-violation", Title: fmt.Sprintf("Not promoted: %s@%s in %s", repo, regflow.ShortDigest(digest), env),
		Text:       reason + ". regflow opens no request for it; only digests promoted into " + env + " move on.",
		Repository: repo, Digest: digest,
		Fields: []regflow.Field{
			{Label: "Repository", Value: repo},
			{Label: "Digest", Value: digest},
			{Label: "Account", Value: account + " " + region},
		},
	}
	err := g.once(ctx, "alert/custody/"+env+"/"+repo+"@"+digest, func() error { return g.Notifier.Notify(ctx, alert) })
	return res, err
}

func orNone(s string) string {
	if s == "" {
		return "any environment"
	}
	return s
}

// invokePutImage records who pushed an image into the source environment, from CloudTrail's
// PutImage record (a verified identity, unlike anything a pipeline writes), and makes the
// Slack user the config maps it to the requester of the image's first promotion.
func (g *Gate) invokePutImage(ctx context.Context, raw json.RawMessage) (Result, error) {
	call, err := ecrevent.DecodePutImageCall(raw)
	if errors.Is(err, ecrevent.ErrNotPutImage) {
		return Result{Ignored: true, Reason: err.Error()}, nil
	}
	if err != nil {
		return Result{}, err
	}
	env, ok := g.Config.EnvFor(call.Account, call.Region)
	if !ok || env != g.Config.Source() {
		// Later environments get their images from the promoter; their requester comes from verification.
		return Result{Ignored: true, Env: env, Reason: "a push outside the source environment names no requester"}, nil
	}
	if _, err := g.Store.AppendAudit(ctx, regflow.AuditEntry{
		Subject: call.Repository + "@" + call.Digest, ID: "cloudtrail/" + call.ID, Time: call.Time.Time, Action: event.ActionImagePushedBy,
		Actor: call.Principal, Reason: "PutImage recorded by CloudTrail", Details: map[string]string{"account": call.Account, "region": call.Region, "tag": call.Tag},
	}); err != nil {
		return Result{}, err
	}
	res := Result{Env: env}
	user := g.Config.RequesterFor(call.Principal)
	next, ok := g.Config.Next(env)
	if user == "" || !ok {
		return res, nil
	}
	res.Next = next
	// The scan may have opened the request already: name its requester now.
	r, err := store.ChangeRequest(ctx, g.Store, regflow.RequestID(next, call.Repository, call.Digest), func(cur regflow.ApprovalRequest) (regflow.ApprovalRequest, bool) {
		open := cur.Status == regflow.StatusBlocked || cur.Status == regflow.StatusWaiting || cur.Status == regflow.StatusPending || cur.Status == regflow.StatusExpired
		if !open || cur.RequestedBy != "" {
			return cur, false
		}
		next := cur
		next.RequestedBy = user
		next.Version++
		return next, true
	})
	if errors.Is(err, store.ErrNotFound) {
		return res, nil // the scan opens it, and finds the push entry then
	}
	return fill(res, r), err
}

// pusher is the Slack user the config maps CloudTrail's PutImage identity of repo@digest to, or "".
func (g *Gate) pusher(ctx context.Context, repo, digest string) (string, error) {
	if len(g.Config.Approvals.Requesters) == 0 {
		return "", nil
	}
	trail, err := g.Store.Audit(ctx, repo+"@"+digest)
	if err != nil {
		return "", fmt.Errorf("read who pushed %s@%s: %w", repo, digest, err)
	}
	for _, e := range trail {
		if e.Action == event.ActionImagePushedBy {
			if u := g.Config.RequesterFor(e.Actor); u != "" {
				return u, nil
			}
		}
	}
	return "", nil
}

// invokePromoted looks again at the scans recorded for a digest just promoted. The promoter
// writes the digest before its tag, and a scan on push may finish in between: that scan
// found an untagged image and gated nothing. Re-gating from the recorded scan once the tag
// is there opens the next environment's request whatever the order; when the scans have
// not arrived yet, they find the tag themselves.
func (g *Gate) invokePromoted(ctx context.Context, env *ecrevent.Envelope) (Result, error) {
	// "Image Promoted" and "Promotion Superseded" (copied, then outrun by a newer approval)
	// both name the digest now in env.
	var d event.ImagePromoted
	if err := json.Unmarshal(env.Detail, &d); err != nil || d.Env == "" || d.Repository == "" || d.Digest == "" {
		return Result{}, fmt.Errorf("%w: %s needs env, repository and digest (%v)", ecrevent.ErrMalformed, env.DetailType, err)
	}
	e, ok := g.Config.Environments[d.Env]
	if !ok {
		return Result{}, fmt.Errorf("%s for environment %q, which is not configured", event.TypeImagePromoted, d.Env)
	}
	res := Result{Env: d.Env}
	if _, ok := g.Config.Next(d.Env); !ok {
		res.Ignored, res.Reason = true, "last environment on the path"
		return res, nil
	}
	reg, err := g.Registries(d.Env)
	if err != nil {
		return res, err
	}
	scanned := []string{d.Digest}
	platforms, err := reg.Platforms(ctx, d.Repository, d.Digest)
	if err != nil {
		return res, fmt.Errorf("list the platforms of %s@%s: %w", d.Repository, d.Digest, err)
	}
	if len(platforms) > 0 {
		scanned = platforms
	}
	for _, digest := range scanned {
		sc, err := g.Store.GetScan(ctx, d.Env, d.Repository, digest)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return res, err
		}
		ev := &ecrevent.ImageScan{
			Envelope: ecrevent.Envelope{ID: env.ID, DetailType: event.TypeImageScan, Source: event.SourceECR, Account: e.Account, Region: e.Region, Time: env.Time},
			Enhanced: sc.Enhanced, Status: sc.Status, Repository: d.Repository, Digest: digest, Counts: sc.Counts,
			Reported: slices.Sorted(maps.Keys(sc.Counts)), Total: -1,
		}
		return g.Handle(ctx, ev)
	}
	res.Ignored, res.Reason = true, "no scan recorded yet: the scan, when it completes, gates the image"
	return res, nil
}

// signature checks next's requireSignature against digest as it is in env's registry.
func (g *Gate) signature(ctx context.Context, next, env, repo, digest string) (regflow.SignatureStatus, error) {
	if g.Signatures == nil {
		return regflow.SignatureStatus{}, fmt.Errorf("%s requires a signature but this function has no signature verifier: deploy the scan gate with signatures on", next)
	}
	st, err := g.Signatures.VerifySignature(ctx, regflow.SignatureCheck{Env: next, In: env, Repository: repo, Digest: digest})
	if err != nil {
		return st, fmt.Errorf("check the signature of %s@%s for %s: %w", repo, digest, next, err)
	}
	return st, nil
}
