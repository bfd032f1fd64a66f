package promoter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ecsevent"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/glob"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

// Running reads what an environment's ECS service runs (the deploy use case).
type Running interface {
	// ServiceImage is the image of t's container in the task definition of the service's
	// primary deployment, and that deployment's id.
	ServiceImage(ctx context.Context, env string, t config.ECSTarget) (image, deployment string, err error)
}

// OutcomeActor signs what regflow records from ECS's deployment events; as a
// verification's reporter it is trusted (ECS, through the environment's own account).
const OutcomeActor = "regflow/ecs-deployment"

// invokeDeployment handles an "ECS Deployment State Change": how a hand-over ended. The
// event only names a service and a deployment; what the service runs is read from ECS,
// so the circuit breaker's rollback deployment, which COMPLETES the old digest, never
// marks the failed one deployed, and a redelivered event finds the work done.
func (p *Promoter) invokeDeployment(ctx context.Context, raw json.RawMessage) (Result, error) {
	ev, err := ecsevent.Decode(raw)
	if err != nil {
		return Result{}, err
	}
	res := Result{RequestID: ev.Detail.DeploymentID, Outcome: "ignored"}
	if !ev.Succeeded() && ev.Detail.EventName != ecsevent.Failed {
		res.Reason = "an ECS deployment in progress is no outcome yet"
		return res, nil
	}
	env, ok := p.Config.EnvFor(ev.Account, ev.Region)
	if !ok {
		return res, fmt.Errorf("%s from account %s in %s, which is no configured environment (an environment is an account and a region)", event.TypeECSDeployment, ev.Account, ev.Region)
	}
	targets := serviceTargets(p.Config.Environments[env].Deploy, ev.Cluster, ev.Service)
	if len(targets) == 0 || p.Running == nil {
		res.Reason = fmt.Sprintf("ECS service %s in %s is no deploy target of regflow", ev.ServiceARN, env)
		return res, nil
	}
	var reasons []string
	for _, t := range targets {
		r, err := p.outcome(ctx, env, t, ev)
		if err != nil {
			return r, err
		}
		if r.Outcome != "ignored" {
			return r, nil
		}
		reasons = append(reasons, r.Reason)
	}
	res.Reason = strings.Join(reasons, "; ")
	return res, nil
}

// outcome settles one deploy target's deployment event.
func (p *Promoter) outcome(ctx context.Context, env string, t config.DeployTarget, ev *ecsevent.DeploymentStateChange) (Result, error) {
	res := Result{RequestID: ev.Detail.DeploymentID, Outcome: "ignored"}
	target := t.ECS.Cluster + "/" + t.ECS.Service + "/" + t.ECS.Container
	image, primary, err := p.Running.ServiceImage(ctx, env, *t.ECS)
	if err != nil {
		return res, err
	}
	repo, running, ok := strings.Cut(strings.TrimPrefix(image, p.Config.Environments[env].Registry+"/"), "@")
	if !ok || !strings.HasPrefix(image, p.Config.Environments[env].Registry+"/") || !glob.Match(t.Repositories, repo) {
		res.Reason = fmt.Sprintf("%s runs %s, not an image of %s by digest that regflow handed over", target, image, t.Repositories)
		return res, nil
	}
	rel, err := p.Store.GetRelease(ctx, env, repo)
	if errors.Is(err, store.ErrNotFound) {
		res.Reason = fmt.Sprintf("%s has no release of %s", env, repo)
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("read %s's release of %s: %w", env, repo, err)
	}
	key := env + "/" + target + "/" + ev.Detail.DeploymentID
	if ev.Succeeded() {
		if primary != "" && primary != ev.Detail.DeploymentID {
			// An older deployment's event, late or delivered again: what runs now is another's.
			res.Reason = fmt.Sprintf("%s completed deployment %s, but its primary deployment is now %s", target, ev.Detail.DeploymentID, primary)
			return res, nil
		}
		if running != rel.Digest {
			// The breaker's rollback completing, or a deployment regflow did not make.
			res.Reason = fmt.Sprintf("%s completed deployment %s of %s, but %s's release is %s", target, ev.Detail.DeploymentID,
				regflow.ShortDigest(running), env, regflow.ShortDigest(rel.Digest))
			return res, nil
		}
		return p.deployed(ctx, env, repo, target, key, rel, ev)
	}
	if running == rel.Digest {
		// The service is back on (or still on) the release: what failed was not it.
		res.Reason = fmt.Sprintf("%s failed deployment %s but runs %s's release %s", target, ev.Detail.DeploymentID, env, regflow.ShortDigest(rel.Digest))
		return res, nil
	}
	return p.rolledBack(ctx, env, repo, target, key, rel, running, ev)
}

// deployed records that the release runs in target: audited, and announced once per
// deployment.
func (p *Promoter) deployed(ctx context.Context, env, repo, target, key string, rel regflow.Release, ev *ecsevent.DeploymentStateChange) (Result, error) {
	res := Result{RequestID: ev.Detail.DeploymentID, Outcome: "deployed", Reason: fmt.Sprintf("%s runs %s", target, regflow.ShortDigest(rel.Digest))}
	if _, err := p.Store.AppendAudit(ctx, regflow.AuditEntry{
		Subject: repo + "@" + rel.Digest, ID: "ecs/" + key + "/completed", Time: ev.Time.Time, Action: event.ActionDeploymentCompleted,
		Actor: OutcomeActor, Reason: ev.Detail.Reason, Details: map[string]string{"env": env, "target": target, "deployment": ev.Detail.DeploymentID},
	}); err != nil {
		return res, err
	}
	if err := p.once(ctx, "event/release-deployed/ecs/"+key, func() error {
		return p.publish(ctx, "release-deployed/"+key, ev.Time.Time, event.ReleaseDeployed{RequestID: rel.ApprovalID, Env: env, Repository: repo,
			Digest: rel.Digest, Targets: []string{target}, DeploymentID: ev.Detail.DeploymentID})
	}); err != nil {
		return res, fmt.Errorf("announce the deployed release: %w", err)
	}
	return res, nil
}

// rolledBack settles a release whose ECS deployment failed and which the circuit breaker
// replaced with what ran before: audited, a failed verification for env (the next
// environment's approval cannot open), announced and alerted once, and the pointer moved
// to what the service runs again. Nothing is copied: that digest is in env's registry.
func (p *Promoter) rolledBack(ctx context.Context, env, repo, target, key string, rel regflow.Release, running string, ev *ecsevent.DeploymentStateChange) (Result, error) {
	failed := rel.Digest
	reason := fmt.Sprintf("ECS deployment %s of %s failed in %s (%s); the service runs %s again",
		ev.Detail.DeploymentID, regflow.ShortDigest(failed), target, ev.Detail.Reason, regflow.ShortDigest(running))
	res := Result{RequestID: ev.Detail.DeploymentID, Outcome: "deployment-failed", Reason: reason}
	if _, err := p.Store.AppendAudit(ctx, regflow.AuditEntry{
		Subject: repo + "@" + failed, ID: "ecs/" + key + "/failed", Time: ev.Time.Time, Action: event.ActionDeploymentRolledBack,
		Actor: OutcomeActor, Reason: reason, Details: map[string]string{"env": env, "target": target, "deployment": ev.Detail.DeploymentID, "runs": running},
	}); err != nil {
		return res, err
	}
	if p.Verify != nil {
		if err := p.Verify(ctx, regflow.Verification{Env: env, Repository: repo, Digest: failed, Passed: false, By: OutcomeActor, At: ev.Time.Time}); err != nil {
			return res, fmt.Errorf("record the failed deployment of %s@%s in %s as a failed verification: %w", repo, regflow.ShortDigest(failed), env, err)
		}
	}
	if err := p.once(ctx, "event/deployment-failed/ecs/"+key, func() error {
		return p.publish(ctx, "deployment-failed/"+key, ev.Time.Time, event.DeploymentFailed{RequestID: rel.ApprovalID, Env: env, Repository: repo,
			Digest: failed, Target: target, Reason: reason})
	}); err != nil {
		return res, fmt.Errorf("announce the failed deployment: %w", err)
	}
	if err := p.once(ctx, "alert/deployment-failed/ecs/"+key, func() error {
		return p.Notifier.Notify(ctx, regflow.Alert{Kind: "deployment-failed",
			Title: fmt.Sprintf("%s@%s failed to deploy in %s and was rolled back", repo, regflow.ShortDigest(failed), env),
			Text:  reason + ". It counts as a failed verification: it goes no further.", Repository: repo, Digest: failed,
			Fields: []regflow.Field{{Label: "Service", Value: target}, {Label: "Runs again", Value: regflow.ShortDigest(running)}}})
	}); err != nil {
		return res, fmt.Errorf("alert the failed deployment: %w", err)
	}
	// Last, so that a retry after a failure above finds the pointer still on the failed digest.
	rb := regflow.NewRollback(rel, running, rel.ApprovalID, OutcomeActor, regflow.ViaECS, p.Now())
	if _, err := p.Store.CreateRollback(ctx, rb); err != nil {
		return res, fmt.Errorf("record the pointer's move back to what %s runs: %w", target, err)
	}
	// A twin delivery may have applied it already: that is this move done.
	if _, _, err := p.apply(ctx, rb.ID); err != nil {
		return res, fmt.Errorf("move %s's pointer of %s back to %s, which %s runs: %w", env, repo, regflow.ShortDigest(running), target, err)
	}
	return res, nil
}

// serviceTargets are d's ECS targets naming the service (the cluster by name or ARN; an
// old-format service ARN names no cluster).
func serviceTargets(d config.Deploy, cluster, service string) []config.DeployTarget {
	var out []config.DeployTarget
	for _, t := range d.Targets {
		if t.ECS == nil || lastSegment(t.ECS.Service) != service {
			continue
		}
		if cluster != "" && lastSegment(t.ECS.Cluster) != cluster {
			continue
		}
		out = append(out, t)
	}
	return out
}

func lastSegment(s string) string {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[i+1:]
	}
	return s
}
