// Package app is regflow's composition root: New builds every use case from a set of
// adapters. The Lambda functions (shared/awsapp), the local stack (shared/local/localstack)
// and the CLI differ only in the Adapters they hand in, so a fix to how a use case is put
// together reaches every entry point at once.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/metrics"
	"github.com/regflow/regflow/shared/ocicopy"
	"github.com/regflow/regflow/shared/promoter"
	"github.com/regflow/regflow/shared/redact"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/scangate"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/store"
	"github.com/regflow/regflow/shared/sweep"
	"github.com/regflow/regflow/shared/sweep/sweepsqs"
	"github.com/regflow/regflow/shared/tagguard"
	"github.com/regflow/regflow/shared/tagpolicy"
)

// Functions are the deployed functions, by the names the routing table, infra and
// `regflow invoke` use.
var Functions = []string{route.Tagguard, route.Scangate, route.Approvals, route.Promoter, route.Sweeper, route.Sweepworker}

// Store is everything regflow persists, sweep runs and stored rollbacks included.
type Store interface {
	store.Store
	store.SweepStore
	store.RollbackStore
}

// Registries reach registries with the rights each use asks for.
type Registries interface {
	// Registry is the ECR adapter for the registry of account in region (read-only outside
	// the pipeline account in AWS).
	Registry(account, region string) (*ecr.Client, error)
	// Promotion reaches env's registry to promote into it; requestID names the session.
	Promotion(ctx context.Context, env, requestID string) (promoter.Endpoint, error)
	// Sweep reaches a registry to delete from it.
	Sweep(ctx context.Context, t sweep.Target) (sweep.Registry, error)
}

// Adapters are what differs between AWS, the local stack and the CLI.
type Adapters struct {
	Config     *config.Config
	Store      Store
	Registries Registries
	Publisher  event.Publisher
	// Slack posts, updates, alerts, resolves groups and replies (lazily authenticated).
	Slack *slackbot.Bot
	// SigningSecret returns Slack's signing secret for verifying clicks.
	SigningSecret func(ctx context.Context) ([]byte, error)
	// FollowUps runs the Slack work after a click's answer (approvals/followup.go): a
	// self-invocation in Lambda; nil runs it on goroutines of this process.
	FollowUps approvals.Deferrer
	// AuditBatches, when set, writes the entries of follow-ups run in this process in
	// shared batches (approvals.AuditBatcher): the embedded store, where each write is an
	// fsync. Not DynamoDB's AppendAudits, which overwrites.
	AuditBatches approvals.AuditBatcher
	// SweepQueue carries sweep batches to workers; nil sweeps them in this process.
	SweepQueue sweep.Queue
	// CopyOptions tune the promoter's copy engine (jobs, transport).
	CopyOptions []ocicopy.Option
	// Now is the use cases' clock (the local stack and the demo move it).
	Now func() time.Time
	Log *slog.Logger
	// Signatures builds the signature verifier over the registries (ocisig.ForApp) where
	// an environment has requireSignature; nil leaves it out, and a use case that needs
	// it says so. Only the scan gate and the promoter carry it (it adds ~25 MB).
	Signatures func(cfg *config.Config, regs Registries) (regflow.SignatureVerifier, error)
	// Runtimes reach an environment's deployment APIs (SSM, ECS, Lambda) as regflow's
	// deployment role there; nil: this setup deploys nothing and says so.
	Runtimes func(ctx context.Context, env string) (deploy.Runtime, error)
	// InUse reads what runs (ECS, Lambda) in a registry's account for the sweep, which keeps
	// it; nil: this setup reads nothing and each sweep report says so.
	InUse sweep.InUseSource
	// Metrics receives CloudWatch EMF documents (the functions' standard output); nil
	// records none.
	Metrics *metrics.Writer
}

// App holds every use case, built once.
type App struct {
	Config    *config.Config
	Store     Store
	TagGuard  *tagguard.Handler
	ScanGate  *scangate.Gate
	Approvals *approvals.Service
	// Interactions serves POST /slack/interactions (through API Gateway in AWS).
	Interactions *approvals.Handler
	Promoter     *promoter.Promoter
	// Deployer hands releases to what runs in each environment and reads what runs there.
	Deployer     *deploy.Deployer
	SweepPlanner *sweep.Planner
	SweepWorker  *sweep.Worker

	sweeper    *sweep.Sweeper
	followUps  *approvals.Background
	registries Registries
	now        func() time.Time
	metrics    *metrics.Writer
}

// New builds every use case from a. Missing required adapters fail here, at start.
func New(a Adapters) (*App, error) {
	var missing []string
	for name, ok := range map[string]bool{
		"Config": a.Config != nil, "Store": a.Store != nil, "Registries": a.Registries != nil,
		"Publisher": a.Publisher != nil, "Slack": a.Slack != nil, "SigningSecret": a.SigningSecret != nil,
	} {
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("app: adapters missing: %s", strings.Join(missing, ", "))
	}
	// Each function writes and publishes only what IAM grants it in AWS (As, Invoke).
	a.Store, a.Publisher = Rights(a.Store, a.Publisher)
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.Metrics != nil {
		a.Publisher = metrics.Publisher{Next: a.Publisher, Metrics: a.Metrics}
	}
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	// Redaction at the sinks this root wires (shared/redact): every use case logs through
	// a.Log and audits through a.Store, and Invoke's errors are what Lambda logs.
	a.Log = slog.New(redact.Handler(a.Log.Handler()))
	if a.Store != nil {
		a.Store = redactingStore{a.Store}
	}
	cfg := a.Config
	policy, err := tagpolicy.New(cfg.TagPolicy)
	if err != nil {
		return nil, err
	}
	app := &App{Config: cfg, Store: a.Store, registries: a.Registries, now: a.Now, metrics: a.Metrics}
	var signatures regflow.SignatureVerifier
	if a.Signatures != nil {
		if signatures, err = a.Signatures(cfg, a.Registries); err != nil {
			return nil, err
		}
	}

	// Tag guard: the registry of the account and region the push happened in.
	app.TagGuard = &tagguard.Handler{
		Registries: func(account, region string) (tagguard.Registry, error) { return a.Registries.Registry(account, region) },
		Guard:      tagguard.Guard{Store: a.Store, Notifier: a.Slack, Publisher: a.Publisher, Policy: policy, Now: a.Now, Log: a.Log},
	}
	// Scan gate: reads an environment's registry by its account and region.
	app.ScanGate = &scangate.Gate{
		Config:     cfg,
		Registries: func(env string) (scangate.Registry, error) { return app.EnvRegistry(env) },
		Store:      a.Store, Messenger: a.Slack, Notifier: a.Slack, Signatures: signatures, Now: a.Now, Log: a.Log,
	}
	// Approvals: a Roll back click asks the promoter over the bus (this function holds no
	// registry roles); replies go through response_url as well as the HTTP answer.
	app.Approvals = &approvals.Service{
		Config: cfg, Store: a.Store, Publisher: a.Publisher, Messages: a.Slack, Groups: a.Slack,
		Rollback: promoter.SlackRollback{Store: a.Store, Publisher: a.Publisher, Now: a.Now},
		Now:      a.Now, Log: a.Log, AnswerFirst: true,
	}
	// The signature window is wall time, whatever clock the use cases run on.
	app.Interactions = &approvals.Handler{
		Decider: app.Approvals, SigningSecret: a.SigningSecret, Responder: a.Slack, Settler: app.Approvals,
		FollowUps: a.FollowUps, Team: cfg.Pipeline.SlackTeam, Log: a.Log,
	}
	if a.FollowUps == nil {
		app.followUps = &approvals.Background{Run: app.Interactions.FollowUp, Log: a.Log}
		app.Interactions.FollowUps = app.followUps
		// In process, the follow-ups of a burst of clicks run side by side and can share writes.
		app.Approvals.GroupCommit = a.AuditBatches
	}
	runtimes := a.Runtimes
	if runtimes == nil {
		runtimes = func(context.Context, string) (deploy.Runtime, error) {
			return deploy.Runtime{}, deploy.ErrNoRuntimes
		}
	}
	app.Deployer = &deploy.Deployer{Config: cfg, Runtimes: runtimes, Audit: a.Store, Log: a.Log}
	app.Promoter = &promoter.Promoter{
		Config: cfg, Endpoints: a.Registries.Promotion, Store: a.Store, Publisher: a.Publisher,
		Messenger: a.Slack, Notifier: a.Slack, Now: a.Now, Log: a.Log,
		// A retried promotion in the same process (a warm Lambda, the local stack) resumes a
		// large layer's chunked upload where the registry says it stopped.
		CopyOptions: append([]ocicopy.Option{ocicopy.WithUploadSessions(&ocicopy.MemoryUploadSessions{})}, a.CopyOptions...),
		Deployer:    app.Deployer, Signatures: signatures,
		Running: app.Deployer,
		// A failed ECS deployment is a failed verification, recorded as the scan gate records one.
		Verify: func(ctx context.Context, v regflow.Verification) error {
			_, err := app.ScanGate.Verify(ctx, v)
			return err
		},
	}

	// Retention: one sweeper decides; the planner fans batches out to workers (SQS in AWS,
	// in process elsewhere); the finisher announces each run once.
	app.sweeper = &sweep.Sweeper{
		Retention: cfg.Retention, Repositories: cfg.Repositories, Audit: a.Store, Cache: a.Store, Log: a.Log,
		Protection: a.Store, Environments: cfg.PromotionPath, InUse: a.InUse,
	}
	finisher := &sweep.Finisher{Store: a.Store, Notifier: a.Slack, Publisher: a.Publisher, Now: a.Now, Log: a.Log}
	app.SweepWorker = &sweep.Worker{
		Sweeper: app.sweeper, Registries: a.Registries.Sweep, Protection: a.Store, Store: a.Store,
		Finisher: finisher, Now: a.Now, Log: a.Log,
	}
	queue := a.SweepQueue
	if queue == nil {
		queue = &sweep.InlineQueue{Worker: app.SweepWorker, Concurrency: 1}
	}
	app.SweepWorker.Queue = queue // the rest of a batch stopped at its deadline goes on
	app.SweepPlanner = &sweep.Planner{
		Targets: sweep.Targets(cfg), Sweeper: app.sweeper, Registries: a.Registries.Sweep,
		Store: a.Store, Queue: queue, Finisher: finisher, Now: a.Now, Log: a.Log,
	}
	return app, nil
}

// EnvRegistry is the registry of a configured environment.
func (a *App) EnvRegistry(env string) (*ecr.Client, error) {
	e, ok := a.Config.Environments[env]
	if !ok {
		return nil, fmt.Errorf("environment %q is not configured: the config has %s", env, strings.Join(a.Config.PromotionPath, ", "))
	}
	return a.registries.Registry(e.Account, e.Region)
}

// Invoke runs one function's handler on an event, as its Lambda function does, and returns
// what the function returns. The Lambda functions, the local bus and `regflow invoke` all
// come through here.
func (a *App) Invoke(ctx context.Context, fn string, raw json.RawMessage) (any, error) {
	ctx = As(ctx, fn)
	start := time.Now()
	res, err := a.invoke(ctx, fn, raw)
	// A click's follow-up is not an answer to Slack: its time is not the answer latency.
	if _, followUp := res.(approvals.FollowedUp); err == nil && a.metrics != nil && !followUp {
		a.record(fn, time.Since(start), res)
	}
	return res, redact.Error(err)
}

func (a *App) invoke(ctx context.Context, fn string, raw json.RawMessage) (any, error) {
	switch fn {
	case route.Tagguard:
		return a.TagGuard.Invoke(ctx, raw)
	case route.Scangate:
		return a.ScanGate.Invoke(ctx, raw)
	case route.Promoter:
		return a.Promoter.Invoke(ctx, raw)
	case route.Approvals:
		if f, ok := approvals.ParseFollowUp(raw); ok {
			return approvals.FollowedUp{RequestID: f.RequestID}, a.Interactions.RunFollowUp(ctx, f)
		}
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, fmt.Errorf("the approvals function takes an API Gateway HTTP API (payload 2.0) request: %w", err)
		}
		if req.RawPath == "" && req.RequestContext.HTTP.Method == "" {
			return nil, errors.New("the approvals function takes an API Gateway HTTP API (payload 2.0) request; this event has no rawPath or requestContext.http.method")
		}
		return approvals.Lambda(a.Interactions)(ctx, req)
	case route.Sweeper:
		run, err := sweep.RunFromEvent(raw, a.Config.Retention.DryRun, a.now())
		if err != nil {
			return nil, err
		}
		return a.SweepPlanner.Plan(ctx, run)
	case route.Sweepworker:
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("the sweepworker function takes an SQS event: %w", err)
		}
		return sweepsqs.Handler(a.SweepWorker)(ctx, ev)
	}
	return nil, fmt.Errorf("unknown function %q: choose one of %s", fn, strings.Join(Functions, ", "))
}

// redactingStore writes audit entries without credentials in their reason or details
// (a copy error can quote a presigned URL).
type redactingStore struct{ Store }

func (s redactingStore) AppendAudit(ctx context.Context, e regflow.AuditEntry) (bool, error) {
	return s.Store.AppendAudit(ctx, cleanEntry(e))
}

func (s redactingStore) AppendAudits(ctx context.Context, entries []regflow.AuditEntry) error {
	clean := make([]regflow.AuditEntry, len(entries))
	for i, e := range entries {
		clean[i] = cleanEntry(e)
	}
	return s.Store.AppendAudits(ctx, clean)
}

func cleanEntry(e regflow.AuditEntry) regflow.AuditEntry {
	e.Reason, e.Details = redact.String(e.Reason), redact.Map(e.Details)
	return e
}

// FollowUpsDone waits until the Slack work after every click answered so far (the reply,
// the message rewrite) has finished in this process; at once when it runs elsewhere.
func (a *App) FollowUpsDone() {
	if a.followUps != nil {
		a.followUps.Wait()
	}
}

// Handlers are the bus targets of the routing table's functions, for the local bus.
func (a *App) Handlers() map[string]func(ctx context.Context, event []byte) error {
	h := map[string]func(context.Context, []byte) error{}
	for _, fn := range []string{route.Tagguard, route.Scangate, route.Promoter} {
		h[fn] = func(ctx context.Context, ev []byte) error {
			_, err := a.Invoke(ctx, fn, ev)
			return err
		}
	}
	return h
}

// SweepOptions shape one estate sweep run from the CLI or the local stack.
type SweepOptions struct {
	Run sweep.Run
	// Only is a further glob a repository must match.
	Only string
	// Page, when set, picks the repositories to sweep from the sorted names of every one the
	// run covers in any registry, as a view that shows one page of them at a time does.
	Page        func(names []string) []string
	Concurrency int
	// Registries overrides how registries are reached (the CLI's --role).
	Registries   func(context.Context, sweep.Target) (sweep.Registry, error)
	OnRepository func(sweep.Progress)
}

// Sweep sweeps every environment's registry in this process, as the scheduled sweeper's
// workers do, with protections read at the run's time.
func (a *App) Sweep(ctx context.Context, o SweepOptions) (*sweep.Report, error) {
	prot, err := sweep.LoadProtections(ctx, a.Store, o.Run.Now)
	if err != nil {
		return nil, err
	}
	s := *a.sweeper
	s.Only, s.Concurrency, s.OnRepository = o.Only, o.Concurrency, o.OnRepository
	regs := o.Registries
	if regs == nil {
		regs = a.registries.Sweep
	}
	if o.Page != nil {
		return a.sweepPage(ctx, &s, o, regs, prot), nil
	}
	return s.Estate(ctx, o.Run, sweep.Targets(a.Config), regs, prot), nil
}

// sweepPage lists every registry's repositories once, lets o.Page pick from their union,
// and sweeps the picked ones wherever they are.
func (a *App) sweepPage(ctx context.Context, s *sweep.Sweeper, o SweepOptions, regs func(context.Context, sweep.Target) (sweep.Registry, error), prot sweep.Protections) *sweep.Report {
	targets := sweep.Targets(a.Config)
	found := make([]sweep.Registry, len(targets))
	lists := make([][]string, len(targets))
	failed := make([]error, len(targets))
	all := map[string]bool{}
	for i, t := range targets {
		reg, err := regs(ctx, t)
		var repos []string
		if err == nil {
			repos, err = reg.Repositories(ctx)
		}
		if err != nil {
			failed[i] = fmt.Errorf("list repositories of %s: %w", t, err)
			continue
		}
		found[i], lists[i] = reg, s.Select(repos)
		for _, n := range lists[i] {
			all[n] = true
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	slices.Sort(names)
	picked := map[string]bool{}
	for _, n := range o.Page(names) {
		picked[n] = true
	}
	rep := &sweep.Report{Run: o.Run}
	for i, t := range targets {
		if failed[i] != nil {
			rr := s.Registry(ctx, o.Run, t, nil, nil, prot)
			rr.AddFailure("*", failed[i])
			rep.Add(rr)
			continue
		}
		rep.Add(s.Registry(ctx, o.Run, t, found[i], slices.DeleteFunc(lists[i], func(n string) bool { return !picked[n] }), prot))
	}
	rep.Sort()
	return rep
}
