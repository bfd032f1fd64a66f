// Package deploy hands a release to what runs in an environment: the SSM parameter that
// holds it, the ECS services and the Lambda aliases that run its repository. A promotion
// deploys the digest it copied; a rollback deploys the previous one, nothing copied.
//
// Every step first reads what runs, so a redelivered event registers no second task
// definition revision and publishes no second Lambda version.
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
)

// ErrNoRuntimes is what Runtimes returns where regflow reaches no deployment APIs (the
// local stack without its control planes, the CLI offline): nothing is deployed or read.
var ErrNoRuntimes = errors.New("no deployment APIs in this setup")

// ErrNotFound is what a port returns for a parameter, service, function or alias that
// does not exist.
var ErrNotFound = errors.New("not found")

// Parameters reads and writes SSM parameters of one environment account.
type Parameters interface {
	// GetParameter returns the parameter's value, or ErrNotFound.
	GetParameter(ctx context.Context, name string) (string, error)
	// PutParameter writes value as a new version (overwriting) and returns the version.
	PutParameter(ctx context.Context, name, value string) (int64, error)
}

// TaskDefinition is what a deployment needs to know of an ECS task definition.
type TaskDefinition struct {
	ARN      string
	Family   string
	Revision int
	// Images are the containers' images by container name.
	Images map[string]string
	// Source is the adapter's full description, re-registered with one image changed.
	Source any
	// Deployment is the id of the service's PRIMARY deployment, which runs this task
	// definition (ServiceTaskDefinition only).
	Deployment string
}

// Services drives ECS services of one environment account.
type Services interface {
	// ServiceTaskDefinition is the task definition the service's primary deployment runs.
	ServiceTaskDefinition(ctx context.Context, cluster, service string) (TaskDefinition, error)
	// LatestTaskDefinition is the newest ACTIVE revision of a family.
	LatestTaskDefinition(ctx context.Context, family string) (TaskDefinition, error)
	// Register registers a revision of from with container's image set to image,
	// everything else kept.
	Register(ctx context.Context, from TaskDefinition, container, image string) (TaskDefinition, error)
	// UpdateService makes the service deploy taskDefinition.
	UpdateService(ctx context.Context, cluster, service, taskDefinition string) error
}

// Functions drives Lambda functions packaged as images in one environment account.
type Functions interface {
	// AliasVersion is the version an alias points at.
	AliasVersion(ctx context.Context, function, alias string) (string, error)
	// VersionImage is the image (by digest) a version runs.
	VersionImage(ctx context.Context, function, version string) (string, error)
	// UpdateImage points $LATEST at image and waits until the update is done.
	UpdateImage(ctx context.Context, function, image string) error
	// PublishVersion publishes $LATEST (Lambda returns the last version when nothing changed).
	PublishVersion(ctx context.Context, function string) (string, error)
	// MoveAlias points the alias at version.
	MoveAlias(ctx context.Context, function, alias, version string) error
}

// Runtime is an environment account's deployment APIs, reached with its deployment role.
type Runtime struct {
	Parameters Parameters
	Services   Services
	Functions  Functions
}

// Auditor records each deployment step once.
type Auditor interface {
	AppendAudit(ctx context.Context, e regflow.AuditEntry) (bool, error)
}

// Release is what is handed over: the digest, and who and what put it there.
type Release struct {
	Env        string
	Repository string
	Digest     string
	Tag        string
	Commit     string
	ApprovedBy []string
	At         time.Time
	// Rollback marks a pointer moved back (the audit says so).
	Rollback bool
	// RequestID names the promotion or rollback, for the audit entries' ids.
	RequestID string
}

// Outcome is what one target did.
type Outcome struct {
	// Kind is ssm, ecs or lambda; Target names it (parameter, cluster/service/container,
	// function:alias).
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Changed is false when the target already ran the digest (a redelivery).
	Changed bool `json:"changed"`
	// Detail is the parameter version, the task definition, the Lambda version.
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Actor signs deployment audit entries.
const Actor = "regflow/promoter"

// Deployer hands releases to the environments' targets.
type Deployer struct {
	Config *config.Config
	// Runtimes reaches an environment's deployment APIs.
	Runtimes func(ctx context.Context, env string) (Runtime, error)
	Audit    Auditor
	Log      *slog.Logger
}

// Parameter is the JSON the SSM parameter holds: what CloudFormation's
// {{resolve:ssm:...}}, CDK and Terraform read.
type Parameter struct {
	ImageURI   string    `json:"imageUri"`
	Digest     string    `json:"digest"`
	Tag        string    `json:"tag,omitempty"`
	Commit     string    `json:"commit,omitempty"`
	ApprovedBy []string  `json:"approvedBy,omitempty"`
	PromotedAt time.Time `json:"promotedAt"`
}

// ImageURI is repo's image by digest in env's registry.
func ImageURI(cfg *config.Config, env, repo, digest string) string {
	return cfg.Environments[env].Registry + "/" + repo + "@" + digest
}

// Deploy hands r to every target of its environment and repository. It tries them all and
// returns every outcome; an error (joined, naming each target) means "deliver again": the
// targets already done are left as they are.
func (d *Deployer) Deploy(ctx context.Context, r Release) ([]Outcome, error) {
	env, ok := d.Config.Environments[r.Env]
	if !ok {
		return nil, fmt.Errorf("deploy to %q: not a configured environment", r.Env)
	}
	if len(d.Config.PromotionPath) > 0 && d.Config.PromotionPath[0] == r.Env {
		return nil, nil // CI deploys the source environment; nothing is promoted into it
	}
	targets := env.Deploy.TargetsFor(r.Repository)
	param := env.Deploy.ParameterName(r.Repository)
	if param == "" && len(targets) == 0 {
		return nil, nil
	}
	rt, err := d.Runtimes(ctx, r.Env)
	if errors.Is(err, ErrNoRuntimes) {
		d.log().Warn("release not deployed: no deployment APIs", "env", r.Env, "repository", r.Repository)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reach %s's deployment APIs: %w", r.Env, err)
	}
	image := ImageURI(d.Config, r.Env, r.Repository, r.Digest)
	var out []Outcome
	var errs []error
	add := func(o Outcome, err error) {
		if err != nil {
			o.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s %s: %w", o.Kind, o.Target, err))
		} else if err := d.audit(ctx, r, o); err != nil {
			errs = append(errs, err)
		}
		out = append(out, o)
	}
	if param != "" {
		add(d.parameter(ctx, rt, param, image, r))
	}
	for _, t := range targets {
		switch {
		case t.ECS != nil:
			add(d.ecs(ctx, rt, *t.ECS, image, r.Digest))
		case t.Lambda != nil:
			add(d.lambda(ctx, rt, *t.Lambda, image, r.Digest))
		}
	}
	return out, errors.Join(errs...)
}

func (d *Deployer) parameter(ctx context.Context, rt Runtime, name, image string, r Release) (Outcome, error) {
	o := Outcome{Kind: "ssm", Target: name}
	if rt.Parameters == nil {
		return o, errors.New("no SSM client for this environment")
	}
	cur, err := rt.Parameters.GetParameter(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return o, err
	}
	var held Parameter
	if err == nil && json.Unmarshal([]byte(cur), &held) == nil && held.Digest == r.Digest {
		return o, nil // already the release: a redelivery writes no new version
	}
	value, err := json.Marshal(Parameter{ImageURI: image, Digest: r.Digest, Tag: r.Tag, Commit: r.Commit, ApprovedBy: r.ApprovedBy, PromotedAt: r.At.UTC()})
	if err != nil {
		return o, err
	}
	v, err := rt.Parameters.PutParameter(ctx, name, string(value))
	if err != nil {
		return o, err
	}
	o.Changed, o.Detail = true, fmt.Sprintf("version %d", v)
	return o, nil
}

func (d *Deployer) ecs(ctx context.Context, rt Runtime, t config.ECSTarget, image, digest string) (Outcome, error) {
	o := Outcome{Kind: "ecs", Target: t.Cluster + "/" + t.Service + "/" + t.Container}
	if rt.Services == nil {
		return o, errors.New("no ECS client for this environment")
	}
	cur, err := rt.Services.ServiceTaskDefinition(ctx, t.Cluster, t.Service)
	if err != nil {
		return o, err
	}
	have, ok := cur.Images[t.Container]
	if !ok {
		return o, fmt.Errorf("task definition %s has no container %q (it has %s)", cur.ARN, t.Container, strings.Join(names(cur.Images), ", "))
	}
	if runsDigest(have, digest) {
		o.Detail = cur.ARN
		return o, nil
	}
	next := cur
	// An earlier attempt may have registered the revision and failed before UpdateService:
	// reuse it rather than register another.
	if latest, err := rt.Services.LatestTaskDefinition(ctx, cur.Family); err == nil && latest.Revision > cur.Revision && latest.Images[t.Container] == image {
		next = latest
	} else if next, err = rt.Services.Register(ctx, cur, t.Container, image); err != nil {
		return o, fmt.Errorf("register a revision of %s with %s: %w", cur.Family, image, err)
	}
	if err := rt.Services.UpdateService(ctx, t.Cluster, t.Service, next.ARN); err != nil {
		return o, fmt.Errorf("update service to %s: %w", next.ARN, err)
	}
	o.Changed, o.Detail = true, next.ARN
	return o, nil
}

func (d *Deployer) lambda(ctx context.Context, rt Runtime, t config.LambdaTarget, image, digest string) (Outcome, error) {
	o := Outcome{Kind: "lambda", Target: t.Function + ":" + t.Alias}
	if rt.Functions == nil {
		return o, errors.New("no Lambda client for this environment")
	}
	v, err := rt.Functions.AliasVersion(ctx, t.Function, t.Alias)
	if err != nil {
		return o, err
	}
	if have, err := rt.Functions.VersionImage(ctx, t.Function, v); err == nil && runsDigest(have, digest) {
		o.Detail = "version " + v
		return o, nil
	}
	if err := rt.Functions.UpdateImage(ctx, t.Function, image); err != nil {
		return o, fmt.Errorf("update the function's image to %s: %w", image, err)
	}
	// Lambda publishes no new version when $LATEST is unchanged since the last one, so a
	// retry after this point gets the same version back.
	nv, err := rt.Functions.PublishVersion(ctx, t.Function)
	if err != nil {
		return o, fmt.Errorf("publish a version: %w", err)
	}
	if err := rt.Functions.MoveAlias(ctx, t.Function, t.Alias, nv); err != nil {
		return o, fmt.Errorf("move alias %s to version %s: %w", t.Alias, nv, err)
	}
	o.Changed, o.Detail = true, "version "+nv
	return o, nil
}

func (d *Deployer) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// audit records a step that changed something, once per release and target.
func (d *Deployer) audit(ctx context.Context, r Release, o Outcome) error {
	if !o.Changed || d.Audit == nil {
		return nil
	}
	why := "promotion " + r.RequestID
	if r.Rollback {
		why = "rollback " + r.RequestID
	}
	_, err := d.Audit.AppendAudit(ctx, regflow.AuditEntry{
		Subject: r.Repository + "@" + r.Digest, ID: "deploy/" + r.Env + "/" + o.Kind + "/" + o.Target + "/" + r.RequestID,
		Time: r.At, Action: event.ActionDeployed, Actor: Actor, Reason: why,
		Details: map[string]string{"env": r.Env, "kind": o.Kind, "target": o.Target, "detail": o.Detail},
	})
	if err != nil {
		return fmt.Errorf("audit the deployment to %s %s: %w", o.Kind, o.Target, err)
	}
	return nil
}

// runsDigest tells whether an image reference (repo@digest, or a resolved URI) is digest.
func runsDigest(image, digest string) bool {
	return strings.HasSuffix(image, "@"+digest)
}

func names(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Observed is what one target runs now.
type Observed struct {
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Digest is what the target runs ("" when it could not be read).
	Digest string `json:"digest,omitempty"`
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Observe reads what each of env's targets of repo runs, for drift checks (`regflow
// status`): a target that cannot be read says why and the others are still read.
func (d *Deployer) Observe(ctx context.Context, env, repo string) []Observed {
	e, ok := d.Config.Environments[env]
	if !ok || (len(d.Config.PromotionPath) > 0 && d.Config.PromotionPath[0] == env) {
		return nil
	}
	targets := e.Deploy.TargetsFor(repo)
	param := e.Deploy.ParameterName(repo)
	if param == "" && len(targets) == 0 {
		return nil
	}
	var out []Observed
	rt, err := d.Runtimes(ctx, env)
	if errors.Is(err, ErrNoRuntimes) {
		return nil
	}
	fail := func(o Observed, err error) Observed { o.Error = err.Error(); return o }
	if param != "" {
		o := Observed{Kind: "ssm", Target: param}
		switch {
		case err != nil:
			o = fail(o, err)
		case rt.Parameters == nil:
			o = fail(o, errors.New("no SSM client"))
		default:
			var p Parameter
			v, gerr := rt.Parameters.GetParameter(ctx, param)
			if gerr == nil {
				gerr = json.Unmarshal([]byte(v), &p)
			}
			if gerr != nil {
				o = fail(o, gerr)
			}
			o.Digest = p.Digest
		}
		out = append(out, o)
	}
	for _, t := range targets {
		switch {
		case t.ECS != nil:
			o := Observed{Kind: "ecs", Target: t.ECS.Cluster + "/" + t.ECS.Service + "/" + t.ECS.Container}
			if err != nil {
				out = append(out, fail(o, err))
				continue
			}
			if rt.Services == nil {
				out = append(out, fail(o, errors.New("no ECS client")))
				continue
			}
			td, serr := rt.Services.ServiceTaskDefinition(ctx, t.ECS.Cluster, t.ECS.Service)
			if serr != nil {
				out = append(out, fail(o, serr))
				continue
			}
			o.Digest, o.Detail = digestOf(td.Images[t.ECS.Container]), td.ARN
			out = append(out, o)
		case t.Lambda != nil:
			o := Observed{Kind: "lambda", Target: t.Lambda.Function + ":" + t.Lambda.Alias}
			if err != nil {
				out = append(out, fail(o, err))
				continue
			}
			if rt.Functions == nil {
				out = append(out, fail(o, errors.New("no Lambda client")))
				continue
			}
			v, lerr := rt.Functions.AliasVersion(ctx, t.Lambda.Function, t.Lambda.Alias)
			var img string
			if lerr == nil {
				img, lerr = rt.Functions.VersionImage(ctx, t.Lambda.Function, v)
			}
			if lerr != nil {
				out = append(out, fail(o, lerr))
				continue
			}
			o.Digest, o.Detail = digestOf(img), "version "+v
			out = append(out, o)
		}
	}
	return out
}

// digestOf is the digest an image reference pins ("" for a tag).
func digestOf(image string) string {
	if i := strings.LastIndex(image, "@"); i >= 0 && strings.HasPrefix(image[i+1:], "sha256:") {
		return image[i+1:]
	}
	return ""
}

// ServiceImage is the image t's container runs in env's ECS service and the deployment
// that runs it: the service's primary deployment, which after a circuit-breaker rollback
// is the rollback's.
func (d *Deployer) ServiceImage(ctx context.Context, env string, t config.ECSTarget) (image, deployment string, err error) {
	rt, err := d.Runtimes(ctx, env)
	if err != nil {
		return "", "", fmt.Errorf("reach %s's deployment APIs: %w", env, err)
	}
	if rt.Services == nil {
		return "", "", fmt.Errorf("no ECS client for %s", env)
	}
	td, err := rt.Services.ServiceTaskDefinition(ctx, t.Cluster, t.Service)
	if err != nil {
		return "", "", fmt.Errorf("read what ECS service %s/%s runs in %s: %w", t.Cluster, t.Service, env, err)
	}
	img, ok := td.Images[t.Container]
	if !ok {
		return "", "", fmt.Errorf("task definition %s has no container %q (it has %s)", td.ARN, t.Container, strings.Join(names(td.Images), ", "))
	}
	return img, td.Deployment, nil
}
