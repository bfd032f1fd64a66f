package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/slack-go/slack"

	"github.com/regflow/regflow/shared/bus"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/notify"
	"github.com/regflow/regflow/shared/promoter"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/scangate"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/store"
	"github.com/regflow/regflow/shared/store/dynamo"
	"github.com/regflow/regflow/shared/tagguard"
	"github.com/regflow/regflow/shared/tagpolicy"
	"github.com/regflow/regflow/shared/wiring"
)

// backend is where the commands act: AWS (the default credential chain and the
// config file) or the local stack that `regflow local` runs (--local). The use
// cases are the same ones the Lambda functions run; only the adapters differ.
type backend struct {
	cfg   *config.Config
	store store.Store
	// registry returns the ECR adapter for the registry in an account.
	registry func(account string) (*ecr.Client, error)
	// endpoint reaches an environment's registry for the promoter.
	endpoint  func(ctx context.Context, env, requestID string) (promoter.Endpoint, error)
	publisher publisher
	messenger messenger
	notifier  notifier
	// slackClient is the bot's client (approver groups); signingSecret checks Slack's signatures.
	slackClient   func(ctx context.Context) (*slack.Client, error)
	signingSecret func(ctx context.Context) ([]byte, error)
	// identity names who runs the command when --as is not given.
	identity func(ctx context.Context) (string, error)
	log      *slog.Logger
	now      func() time.Time
	local    bool
	close    func()
}

type publisher interface {
	Publish(ctx context.Context, m event.Message) error
}

type messenger interface {
	Post(ctx context.Context, channel string, r regflow.ApprovalRequest, c slackmsg.Context) (string, string, error)
	Update(ctx context.Context, r regflow.ApprovalRequest, c slackmsg.Context) error
}

type notifier interface {
	Notify(ctx context.Context, a regflow.Alert) error
}

// localInfo is local.json. EventsEndpoint is read here as well as in localstack.Info,
// so this CLI works with a stack that writes it either way.
type localInfo struct {
	localstack.Info
	EventsEndpoint string `json:"eventsEndpoint"`
}

// backend opens the backend the global flags select.
func (g *globals) backend(ctx context.Context) (*backend, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	if g.local {
		return localBackend(cfg, g.configPath, g.stateDir, g.logger())
	}
	return awsBackend(ctx, cfg, g.logger())
}

func localBackend(cfg *config.Config, configPath, stateDir string, log *slog.Logger) (*backend, error) {
	path := filepath.Join(stateDir, "local.json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("the local stack is not running (no %s): start it with `regflow local` in another terminal, with the same --config and --state-dir", path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var info localInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, fmt.Errorf("%s is not the local stack's description (%w): stop `regflow local`, delete the file and start it again", path, err)
	}
	// The stack runs the config it was started with; a different one here would mean
	// commands that name environments the stack does not have.
	var missing []string
	for _, env := range cfg.PromotionPath {
		if _, ok := info.Environments[env]; !ok {
			missing = append(missing, env)
		}
	}
	if len(missing) > 0 || len(info.Environments) != len(cfg.PromotionPath) {
		return nil, fmt.Errorf("the local stack in %s runs environments %s but %s has %s: start `regflow local` with the same --config",
			stateDir, strings.Join(sortedKeys(info.Environments), ", "), configPath, strings.Join(cfg.PromotionPath, ", "))
	}
	storePath := info.Store
	if !filepath.IsAbs(storePath) {
		// Relative to where `regflow local` ran: the file sits beside local.json.
		storePath = filepath.Join(stateDir, filepath.Base(storePath))
	}
	if _, err := os.Stat(storePath); err != nil {
		return nil, fmt.Errorf("the local stack's store %s is missing (%w): restart `regflow local`", storePath, err)
	}
	st, err := embedded.OpenShared(storePath)
	if err != nil {
		return nil, err
	}

	// Point the config at the local registries, as the stack does.
	local := *cfg
	local.Environments = map[string]config.Environment{}
	registries := map[string]*ecr.Client{}
	creds := credentials.NewStaticCredentialsProvider("local", "local", "")
	for name, env := range cfg.Environments {
		e, ok := info.Environments[name]
		if !ok {
			continue
		}
		env.Registry = e.Registry
		local.Environments[name] = env
		registries[name] = ecr.New(ecrsdk.NewFromConfig(aws.Config{
			Region: e.Region, Credentials: creds, BaseEndpoint: aws.String(e.ECREndpoint),
			Retryer: func() aws.Retryer { return retry.NewStandard() },
		}), "")
	}
	slackClient := slack.New("xoxb-local", slack.OptionAPIURL(info.SlackAPI))
	var alerts notifier = notify.Log{Logger: log}
	if cfg.Alerts.SlackChannel != "" {
		alerts = notify.NewSlack(slackClient, cfg.Alerts.SlackChannel)
	}
	var pub publisher = missingEndpoint{stateDir: stateDir}
	if info.EventsEndpoint != "" {
		pub = bus.NewEventBridge(eventbridge.NewFromConfig(aws.Config{
			Region: cfg.Pipeline.Region, Credentials: creds, BaseEndpoint: aws.String(info.EventsEndpoint),
			Retryer: func() aws.Retryer { return retry.NewStandard() },
		}), cfg.Pipeline.EventBus)
	}
	b := &backend{
		cfg: &local, store: st, publisher: pub, messenger: slackmsg.Poster{Client: slackClient}, notifier: alerts,
		slackClient: func(context.Context) (*slack.Client, error) { return slackClient, nil },
		signingSecret: func(context.Context) ([]byte, error) {
			if info.SlackSigningSecret == "" {
				return nil, fmt.Errorf("the local stack in %s has no Slack signing secret in local.json: restart it with this version of regflow", stateDir)
			}
			return []byte(info.SlackSigningSecret), nil
		},
		identity: localIdentity, log: log, now: time.Now, local: true,
		close: func() { _ = st.Close() },
	}
	b.registry = func(account string) (*ecr.Client, error) {
		env, ok := local.EnvForAccount(account)
		if !ok {
			return nil, fmt.Errorf("account %s is not any configured environment's: add it under environments in the config", account)
		}
		return registries[env], nil
	}
	b.endpoint = func(_ context.Context, env, _ string) (promoter.Endpoint, error) {
		c, ok := registries[env]
		if !ok {
			return promoter.Endpoint{}, fmt.Errorf("environment %q is not configured", env)
		}
		return promoter.Endpoint{Registry: c, Host: local.Environments[env].Registry, Insecure: true}, nil
	}
	return b, nil
}

// missingEndpoint stands in for the publisher when local.json names no EventBridge endpoint.
type missingEndpoint struct{ stateDir string }

func (m missingEndpoint) Publish(context.Context, event.Message) error {
	return fmt.Errorf("the local stack in %s does not say where its event bus listens (no eventsEndpoint in local.json): restart `regflow local` with this version of regflow", m.stateDir)
}

func awsBackend(ctx context.Context, cfg *config.Config, log *slog.Logger) (*backend, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion(cfg.Pipeline.Region),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 6 })
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	// Fail here, with what to do, rather than on the first call deep inside a command.
	if _, err := awsCfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("no AWS credentials (%w): configure the default credential chain (AWS_PROFILE, `aws sso login`, environment variables), or pass --local to use `regflow local`", err)
	}
	deps := &wiring.Deps{Config: cfg, AWS: awsCfg, Log: log, Store: dynamo.New(dynamodb.NewFromConfig(awsCfg), cfg.Pipeline.Table)}
	return &backend{
		cfg: cfg, store: deps.Store, registry: deps.Registry, endpoint: deps.PromotionEndpoint,
		publisher: deps.Publisher(), messenger: deps.ApprovalMessenger(), notifier: deps.AlertNotifier(),
		slackClient: deps.SlackClient,
		signingSecret: func(ctx context.Context) ([]byte, error) {
			s, err := deps.Slack(ctx)
			return []byte(s.SigningSecret), err
		},
		identity: func(ctx context.Context) (string, error) {
			out, err := sts.NewFromConfig(awsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				return "", fmt.Errorf("find who you are in AWS (sts:GetCallerIdentity): %w; or pass --as", err)
			}
			return aws.ToString(out.Arn), nil
		},
		log: log, now: time.Now, close: func() {},
	}, nil
}

// localIdentity is $USER@local, for records made against the local stack.
func localIdentity(context.Context) (string, error) {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "operator"
	}
	return name + "@local", nil
}

// who is the identity to record: --as when given, else the backend's.
func (b *backend) who(ctx context.Context, as string) (string, error) {
	if as = strings.TrimSpace(as); as != "" {
		return as, nil
	}
	return b.identity(ctx)
}

// explain adds what to do to errors whose cause the user can fix.
func (b *backend) explain(err error) error {
	if err == nil {
		return nil
	}
	var noTable *dynamotypes.ResourceNotFoundException
	switch {
	case b.local && errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w\n(the local stack does not answer: is `regflow local` still running? start it again if not)", err)
	case errors.As(err, &noTable):
		return fmt.Errorf("%w\n(regflow's table %q is not in %s: deploy regflow's infra there, or fix pipeline.table/region in the config)", err, b.cfg.Pipeline.Table, b.cfg.Pipeline.Region)
	}
	return err
}

// env checks an environment name against the config.
func (b *backend) env(name string) (config.Environment, error) {
	e, ok := b.cfg.Environments[name]
	if !ok {
		return e, fmt.Errorf("unknown environment %q: the config has %s", name, strings.Join(b.cfg.PromotionPath, ", "))
	}
	return e, nil
}

// gate is the scan gate as the scangate function runs it.
func (b *backend) gate() *scangate.Gate {
	return &scangate.Gate{
		Config:     b.cfg,
		Registries: func(env string) (scangate.Registry, error) { return b.registry(b.cfg.Environments[env].Account) },
		Store:      b.store, Messenger: b.messenger, Notifier: b.notifier, Now: b.now, Log: b.log,
	}
}

// promoter is the promoter as its function runs it.
func (b *backend) promoter() *promoter.Promoter {
	return &promoter.Promoter{
		Config: b.cfg, Endpoints: b.endpoint, Store: b.store, Publisher: b.publisher,
		Messenger: b.messenger, Notifier: b.notifier, Now: b.now, Log: b.log,
	}
}

// tagguard is the tag guard as its function runs it.
func (b *backend) tagguard() (*tagguard.Handler, error) {
	policy, err := tagpolicy.New(b.cfg.TagPolicy)
	if err != nil {
		return nil, err
	}
	return &tagguard.Handler{
		Registries: func(account string) (tagguard.Registry, error) { return b.registry(account) },
		Store:      b.store, Notifier: b.notifier, Policy: policy, Now: b.now, Log: b.log,
	}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
