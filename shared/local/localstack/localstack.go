// Package localstack runs regflow on a laptop with no AWS account: one local
// ECR per environment account, the embedded store, a Slack stand-in and an
// in-process bus that routes events to the same handlers the Lambda functions run.
package localstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/local/localbus"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localruntime"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/promoter"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/scangate"
	"github.com/regflow/regflow/shared/signature/ocisig"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/slacksig"
	"github.com/regflow/regflow/shared/sweep"
)

// Options configure a local stack.
type Options struct {
	Config *config.Config
	// Dir holds the store file and local.json. Default .regflow.
	Dir string
	Log *slog.Logger
	// Clock is shared by the local ECRs and the handlers; tests and the demo move it.
	Clock *localecr.Clock
	// OnSlack sees every message posted to the Slack stand-in.
	OnSlack func(slacklocal.Message)
	// OnError sees every handler failure (EventBridge would retry it).
	OnError func(rule string, err error)
	// Scanner scans images pushed to scan-on-push repositories (promotion targets);
	// default: no findings.
	Scanner func(ctx context.Context, repo, digest string) ([]localecr.Finding, error)
	// SharedStore opens the store file per transaction so CLI --local commands can use it too.
	SharedStore bool
	// SlackSigningSecret signs the Slack stand-in's clicks; default: random per stack.
	SlackSigningSecret string
	// Delivery is how the bus delivers events; default once, in order (the chaos test asks
	// for AWS's at-least-once, unordered, retried delivery).
	Delivery localbus.Delivery
	// FaultSeed seeds the local ECRs' injected faults (see localecr.Server.SetFault).
	FaultSeed uint64
	// DeploymentDelay is how long (on Clock) a local ECS deployment runs before it
	// completes or fails; default localruntime's.
	DeploymentDelay time.Duration
}

// Stack is a running local regflow.
type Stack struct {
	Config *config.Config
	Clock  *localecr.Clock
	Store  *embedded.Store
	Slack  *slacklocal.Server
	Bus    *localbus.Bus
	Log    *slog.Logger
	ECR    map[string]*localecr.Server // by environment name
	// Runtimes are the environments' local ECS, Lambda and SSM (not the source's: CI
	// deploys it), by environment name; see Runtime.
	Runtimes map[string]*localruntime.Server
	// Events is the local EventBridge PutEvents endpoint feeding Bus.
	Events *localbus.Server
	// App is every use case, built by the composition root from the stack's adapters, as
	// the Lambda functions build theirs from AWS's.
	App *app.App
	// Approvals, Gate and Promoter are App's, named for tests and the demo.
	Approvals *approvals.Service
	Gate      *scangate.Gate
	Promoter  *promoter.Promoter
	// Publisher puts regflow events on the bus, asynchronously as EventBridge does.
	Publisher     localbus.Async
	callback      *http.Server
	callbackURL   string
	signingSecret []byte
	dir           string
	cancel        context.CancelFunc
	// delivered counts local ECR events handed to the bus, so Settle knows when all is quiet.
	delivered atomic.Int64
}

// Info is what .regflow/local.json tells users and the CLI about a running stack.
type Info struct {
	Environments       map[string]EnvInfo `json:"environments"`
	SlackCallback      string             `json:"slackCallback,omitempty"`
	SlackSigningSecret string             `json:"slackSigningSecret,omitempty"`
	SlackAPI           string             `json:"slackApi"`
	// EventsEndpoint speaks EventBridge PutEvents into the stack's bus (AWS_ENDPOINT_URL_EVENTBRIDGE).
	EventsEndpoint string `json:"eventsEndpoint"`
	Store          string `json:"store"`
}

// EnvInfo locates one environment's local registry.
type EnvInfo struct {
	Account     string `json:"account"`
	Region      string `json:"region"`
	Registry    string `json:"registry"`
	ECREndpoint string `json:"ecrEndpoint"`
	// ECSEndpoint, LambdaEndpoint and SSMEndpoint are the local control planes
	// (AWS_ENDPOINT_URL_ECS, _LAMBDA, _SSM); empty for the source environment.
	ECSEndpoint    string `json:"ecsEndpoint,omitempty"`
	LambdaEndpoint string `json:"lambdaEndpoint,omitempty"`
	SSMEndpoint    string `json:"ssmEndpoint,omitempty"`
}

// Start starts every environment's local ECR and wires the handlers.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.Config == nil {
		return nil, errors.New("localstack: no config")
	}
	if o.Dir == "" {
		o.Dir = ".regflow"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = localecr.NewClock()
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", o.Dir, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cfg := *o.Config
	cfg.Environments = map[string]config.Environment{}
	s := &Stack{Config: &cfg, Clock: o.Clock, Log: o.Log, ECR: map[string]*localecr.Server{}, Runtimes: map[string]*localruntime.Server{}, dir: o.Dir, cancel: cancel}
	s.Bus = localbus.NewBus(o.Log, o.OnError)
	s.Bus.SetDelivery(o.Delivery)

	open := embedded.Open
	if o.SharedStore {
		open = embedded.OpenShared
	}
	st, err := open(filepath.Join(o.Dir, "store.db"))
	if err != nil {
		cancel()
		return nil, err
	}
	s.Store = st
	s.Slack = slacklocal.Start(o.OnSlack)

	for _, name := range o.Config.PromotionPath {
		env := o.Config.Environments[name]
		srv, err := localecr.New(localecr.Options{
			Account: env.Account, Region: env.Region, Clock: o.Clock, FaultSeed: o.FaultSeed,
			AuthDisabled: true, AutoCreateRepos: true, Scanner: scanner(o.Scanner),
			OnEvent: func(ctx context.Context, event []byte) {
				s.delivered.Add(1)
				_ = s.Bus.Publish(ctx, event)
			},
		})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("local ECR for %s: %w", name, err)
		}
		if err := srv.Start(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("start local ECR for %s: %w", name, err)
		}
		s.ECR[name] = srv
		env.Registry = srv.Host()
		cfg.Environments[name] = env
		if name != o.Config.PromotionPath[0] {
			if err := s.startRuntime(ctx, name, o); err != nil {
				s.Close()
				return nil, err
			}
		}
	}
	if err := s.wire(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.serveCallback(o.SlackSigningSecret); err != nil {
		s.Close()
		return nil, err
	}
	s.Events = localbus.New(s.Publisher.PublishJSON, localbus.WithAccount(cfg.Pipeline.Account),
		localbus.WithRegion(cfg.Pipeline.Region), localbus.WithBus(cfg.Pipeline.EventBus))
	if err := s.Events.Start(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("start the local EventBridge endpoint: %w", err)
	}
	if err := s.writeInfo(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// ECRClient returns an SDK ECR client for an environment's local ECR.
func (s *Stack) ECRClient(env string) *ecrsdk.Client {
	srv := s.ECR[env]
	return ecrsdk.NewFromConfig(aws.Config{
		Region:       s.Config.Environments[env].Region,
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(srv.URL()),
		Retryer:      func() aws.Retryer { return retry.NewStandard() },
	})
}

// Registry returns regflow's ECR adapter for an environment.
func (s *Stack) Registry(env string) *ecr.Client { return ecr.New(s.ECRClient(env), "") }

func (s *Stack) wire() error {
	s.Publisher = localbus.Async{Bus: s.Bus}
	envs := map[string]EnvInfo{}
	for name, srv := range s.ECR {
		e := s.Config.Environments[name]
		envs[name] = EnvInfo{Account: e.Account, Region: e.Region, Registry: srv.Host(), ECREndpoint: srv.URL()}
	}
	a, err := app.New(app.Adapters{
		Config: s.Config, Store: s.Store, Registries: Registries(s.Config, envs), Publisher: s.Publisher,
		Slack:         slackBot(s.Config, s.Slack.APIURL(), s.Log),
		SigningSecret: func(context.Context) ([]byte, error) { return s.signingSecret, nil },
		Runtimes:      func(_ context.Context, env string) (deploy.Runtime, error) { return s.Runtime(env) },
		InUse:         s.InUse,
		AuditBatches:  s.Store,
		Signatures:    ocisig.ForApp,
		Now:           s.Clock.Now, Log: s.Log,
	})
	if err != nil {
		return err
	}
	s.App, s.Approvals, s.Gate, s.Promoter = a, a.Approvals, a.ScanGate, a.Promoter
	// Routes come from the table infra deploys (shared/route); the functions publish as
	// the pipeline account, as they do through PutEvents in AWS.
	s.Bus.AssignAccount(s.Config.Pipeline.Account, s.Config.Pipeline.Region)
	handlers := map[string]localbus.Handler{}
	for fn, h := range a.Handlers() {
		handlers[fn] = h
	}
	return s.Bus.SubscribeRoutes(route.Table(s.Config), handlers)
}

// slackBot is the Slack adapter pointed at a Slack stand-in.
func slackBot(cfg *config.Config, api string, log *slog.Logger) *slackbot.Bot {
	return slackbot.New(slackbot.Options{
		Token:  func(context.Context) (string, error) { return "xoxb-local", nil },
		APIURL: api, AlertChannel: cfg.Alerts.SlackChannel, Log: log,
		ResponsePrefixes: slackbot.Prefixes(os.Getenv(slackbot.EnvResponseURLPrefixes)),
	})
}

// Registries reach the local ECRs of envs (by environment name) with regflow's ECR
// adapter, for the stack and for CLI commands against a running stack alike.
func Registries(cfg *config.Config, envs map[string]EnvInfo) app.Registries {
	return localRegistries{cfg: cfg, envs: envs}
}

type localRegistries struct {
	cfg  *config.Config
	envs map[string]EnvInfo
}

func (r localRegistries) Registry(account, region string) (*ecr.Client, error) {
	env, ok := r.cfg.EnvFor(account, region)
	if !ok {
		return nil, fmt.Errorf("account %s in %s is not any configured environment's: add it under environments in the config", account, region)
	}
	return r.env(env)
}

func (r localRegistries) env(name string) (*ecr.Client, error) {
	e, ok := r.envs[name]
	if !ok {
		return nil, fmt.Errorf("environment %q has no local registry", name)
	}
	return ecr.New(ecrsdk.NewFromConfig(aws.Config{
		Region:       e.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(e.ECREndpoint),
		Retryer:      localRetryer,
	}), ""), nil
}

// localRetryer retries as awsapp's clients do (6 attempts), with backoffs capped for a
// loopback server: injected faults cost milliseconds, not ECR's seconds.
func localRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 6
		o.MaxBackoff = 200 * time.Millisecond
	})
}

func (r localRegistries) Promotion(_ context.Context, env, _ string) (promoter.Endpoint, error) {
	c, err := r.env(env)
	if err != nil {
		return promoter.Endpoint{}, err
	}
	return promoter.Endpoint{Registry: c, Host: r.envs[env].Registry, Insecure: true}, nil
}

// Sweep reaches the local ECR of the registry (account, region) names, and no other:
// Registry's fallback to the account's first environment would sweep the wrong region.
func (r localRegistries) Sweep(_ context.Context, t sweep.Target) (sweep.Registry, error) {
	for _, name := range r.cfg.PromotionPath {
		if e := r.cfg.Environments[name]; e.Account == t.Account && e.Region == t.Region {
			c, err := r.env(name)
			if err != nil {
				return nil, fmt.Errorf("sweep %s: %w", t, err)
			}
			return ecr.SweepRegistry(c), nil
		}
	}
	return nil, fmt.Errorf("sweep %s: no configured environment lives in account %s in %s", t, t.Account, t.Region)
}

// Info describes the running stack.
func (s *Stack) Info() Info {
	storePath, err := filepath.Abs(filepath.Join(s.dir, "store.db"))
	if err != nil {
		storePath = filepath.Join(s.dir, "store.db")
	}
	info := Info{Environments: map[string]EnvInfo{}, SlackAPI: s.Slack.APIURL(), Store: storePath}
	if s.Events != nil {
		info.EventsEndpoint = s.Events.URL()
	}
	info.SlackCallback, info.SlackSigningSecret = s.callbackURL, string(s.signingSecret)
	for name, srv := range s.ECR {
		env := s.Config.Environments[name]
		ei := EnvInfo{Account: env.Account, Region: env.Region, Registry: srv.Host(), ECREndpoint: srv.URL()}
		if rt, ok := s.Runtimes[name]; ok {
			ei.ECSEndpoint, ei.LambdaEndpoint, ei.SSMEndpoint = rt.URL(), rt.URL(), rt.URL()
		}
		info.Environments[name] = ei
	}
	return info
}

func (s *Stack) writeInfo() error {
	b, err := json.MarshalIndent(s.Info(), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.dir, "local.json"), append(b, '\n'), 0o600)
}

// Settle waits until every event emitted so far, and every event those caused, is handled.
func (s *Stack) Settle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// Handlers cause more events (a promotion pushes, a push is scanned), so wait until a
	// full pass finds nothing left.
	for pass := 0; pass < 50; pass++ {
		before := s.delivered.Load()
		for name, srv := range s.ECR {
			if err := srv.WaitEvents(ctx); err != nil {
				return fmt.Errorf("events of %s: %w", name, err)
			}
		}
		s.Bus.Wait()
		s.App.FollowUpsDone()
		for name, srv := range s.ECR {
			if err := srv.WaitEvents(ctx); err != nil {
				return fmt.Errorf("events of %s: %w", name, err)
			}
		}
		for name, rt := range s.Runtimes {
			if err := rt.WaitEvents(ctx); err != nil {
				return fmt.Errorf("ECS events of %s: %w", name, err)
			}
		}
		if s.delivered.Load() == before {
			return nil
		}
	}
	return fmt.Errorf("events kept coming after 50 rounds")
}

func scanner(f func(ctx context.Context, repo, digest string) ([]localecr.Finding, error)) func(ctx context.Context, repo, digest string) ([]localecr.Finding, error) {
	if f != nil {
		return f
	}
	return func(context.Context, string, string) ([]localecr.Finding, error) { return nil, nil }
}

// Close stops everything and removes local.json.
func (s *Stack) Close() {
	s.cancel()
	for _, rt := range s.Runtimes {
		_ = rt.Close()
	}
	for _, srv := range s.ECR {
		srv.Close()
	}
	if s.Events != nil {
		s.Events.Close()
	}
	if s.callback != nil {
		s.callback.Close()
	}
	if s.Slack != nil {
		s.Slack.Stop()
	}
	if s.Store != nil {
		s.Store.Close()
	}
	_ = os.Remove(filepath.Join(s.dir, "local.json"))
}

// serveCallback starts the Slack interactivity endpoint on loopback.
func (s *Stack) serveCallback(secret string) error {
	if secret == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		secret = hex.EncodeToString(b)
	}
	s.signingSecret = []byte(secret)
	mux := http.NewServeMux()
	mux.Handle("POST "+approvals.Path, approvals.ThroughAPIGateway(approvals.Lambda(s.App.Interactions), 0))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for Slack interactions: %w", err)
	}
	s.callback = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.callbackURL = "http://" + l.Addr().String() + approvals.Path
	go func() { _ = s.callback.Serve(l) }()
	return nil
}

// ClickResult is what the approvals endpoint answered a click.
type ClickResult struct {
	Status  int
	Outcome string
	Text    string
}

// Click plays Slack: it posts a signed block_actions click by user on a request's button
// (slackmsg.ActionApprove, ActionReject or ActionRollback) to the approvals endpoint.
func (s *Stack) Click(ctx context.Context, user, action, requestID string) (ClickResult, error) {
	return s.ClickFrom(ctx, s.team(), user, action, requestID)
}

// ClickFrom is Click from the Slack workspace team.
func (s *Stack) ClickFrom(ctx context.Context, team, user, action, requestID string) (ClickResult, error) {
	body := approvals.ClickForm(approvals.Click{User: user, UserName: user, Team: team, Action: action, RequestID: requestID}, time.Now())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.callbackURL, bytes.NewReader(body))
	if err != nil {
		return ClickResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	slacksig.Sign(req.Header, s.signingSecret, time.Now(), body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ClickResult{}, fmt.Errorf("post click: %w", err)
	}
	defer resp.Body.Close()
	var reply approvals.Reply
	_ = json.NewDecoder(resp.Body).Decode(&reply)
	// The answer comes first; the reply and the message rewrite follow it. Wait for them,
	// so a caller sees Slack as the clicking user would a moment later.
	s.App.FollowUpsDone()
	return ClickResult{Status: resp.StatusCode, Outcome: resp.Header.Get(approvals.HeaderOutcome), Text: reply.Text}, nil
}

// team is the workspace the stand-in's clicks come from: the configured one, so a stack
// with pipeline.slackTeam set accepts its own clicks.
func (s *Stack) team() string {
	if s.Config.Pipeline.SlackTeam != "" {
		return s.Config.Pipeline.SlackTeam
	}
	return "T0LOCAL"
}
