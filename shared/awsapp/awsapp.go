// Package awsapp hands the composition root (shared/app) its AWS adapters: DynamoDB, ECR
// through the roles each use needs, EventBridge, SQS, Slack with its secret from Secrets
// Manager, and starts a Lambda function on them. Endpoints come the standard way
// (AWS_ENDPOINT_URL_<SERVICE>); nothing is called until a handler needs it.
package awsapp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	lambdasdk "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/awsapp/pace"
	"github.com/regflow/regflow/shared/awsruntime"
	"github.com/regflow/regflow/shared/bus"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/metrics"
	"github.com/regflow/regflow/shared/promoter"
	"github.com/regflow/regflow/shared/redact"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/store/dynamo"
	"github.com/regflow/regflow/shared/sweep"
	"github.com/regflow/regflow/shared/sweep/sweepsqs"
)

// What the infrastructure (infra/) and the functions agree on: role names in environment
// accounts and the environment variables set on functions besides the config.
const (
	// ReaderRoleName is the read-only role the scan gate assumes in environment accounts.
	ReaderRoleName = "regflow-reader"
	// SweeperRoleName is the role the sweeper and its workers assume in environment accounts.
	SweeperRoleName = "regflow-sweeper"
	// DeploymentRoleName is the role the promoter assumes in environment accounts to hand a
	// release to SSM, ECS and Lambda (config: environments.<env>.deploy.role overrides it).
	DeploymentRoleName = "regflow-deployment"

	EnvSweepQueueURL = "REGFLOW_SWEEP_QUEUE_URL"
	EnvSweeperRole   = "REGFLOW_SWEEPER_ROLE"
	// EnvReaderRole overrides ReaderRoleName.
	EnvReaderRole = "REGFLOW_READER_ROLE"
	// EnvSlackAPIURL points slack-go at a stand-in (the local stack, tests) instead of slack.com.
	EnvSlackAPIURL = "REGFLOW_SLACK_API_URL"
	// EnvResponseURLPrefixes lists, comma-separated, where replies may be posted instead of
	// Slack's hooks host: a Slack stand-in's address in tests.
	EnvResponseURLPrefixes = slackbot.EnvResponseURLPrefixes
)

// Options are the deployment's choices beyond the config, from the environment in Lambda
// and from flags in the CLI.
type Options struct {
	ReaderRole       string
	SweeperRole      string
	SweepQueueURL    string
	SlackAPIURL      string
	ResponsePrefixes []string
}

// OptionsFromEnv reads Options from the variables infra sets.
func OptionsFromEnv() Options {
	return Options{
		ReaderRole:       os.Getenv(EnvReaderRole),
		SweeperRole:      os.Getenv(EnvSweeperRole),
		SweepQueueURL:    os.Getenv(EnvSweepQueueURL),
		SlackAPIURL:      os.Getenv(EnvSlackAPIURL),
		ResponsePrefixes: slackbot.Prefixes(os.Getenv(EnvResponseURLPrefixes)),
	}
}

// Start runs function fn as a Lambda function: the config and adapters are built once per
// container, and a bad config stops it at init with the field named.
func Start(fn string, opts ...StartOption) {
	log := slog.New(redact.Handler(slog.NewJSONHandler(os.Stdout, nil)))
	a, err := FromEnvironment(context.Background(), log, opts...)
	if err != nil {
		log.Error(fn+" cannot start", "error", err)
		os.Exit(1)
	}
	lambda.Start(func(ctx context.Context, raw json.RawMessage) (any, error) { return a.Invoke(ctx, fn, raw) })
}

// FromEnvironment builds the app from REGFLOW_CONFIG(_INLINE), the default credential chain
// and the variables infra sets.
func FromEnvironment(ctx context.Context, log *slog.Logger, opts ...StartOption) (*app.App, error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, err
	}
	awsCfg, err := LoadAWS(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a := Adapters(cfg, awsCfg, OptionsFromEnv(), log)
	// CloudWatch Logs extracts EMF metrics from the function's output. Each document is one
	// write(2) of a line well under PIPE_BUF, so it never interleaves with a log line.
	if a.Metrics, err = metrics.New(os.Stdout, metrics.Namespace, time.Now); err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(&a)
	}
	return app.New(a)
}

// StartOption adds what only some functions carry.
type StartOption func(*app.Adapters)

// WithSignatures gives the function the signature verifier (the scan gate and the
// promoter pass ocisig.ForApp): its libraries add ~25 MB, which the other functions do
// without.
func WithSignatures(f func(*config.Config, app.Registries) (regflow.SignatureVerifier, error)) StartOption {
	return func(a *app.Adapters) { a.Signatures = f }
}

// LoadAWS loads the default AWS configuration in the pipeline's region.
func LoadAWS(ctx context.Context, cfg *config.Config) (aws.Config, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion(cfg.Pipeline.Region),
		// Every client (DynamoDB, ECR, EventBridge, SQS...) paces each operation once it
		// is throttled, instead of retrying into the throttle (shared/awsapp/pace).
		awsconfig.WithRetryer(pace.New(pace.Options{MaxAttempts: 6})),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return awsCfg, nil
}

// Adapters are regflow's AWS adapters. None of them calls AWS before it is used.
func Adapters(cfg *config.Config, awsCfg aws.Config, o Options, log *slog.Logger) app.Adapters {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.ReaderRole == "" {
		o.ReaderRole = ReaderRoleName
	}
	// Two secrets, each read on first use: a function that only posts never asks for the
	// signing secret, which IAM lets only approvals read.
	sm := secretsmanager.NewFromConfig(awsCfg)
	token := &secretField{name: cfg.Pipeline.SlackSecret, field: "botToken", api: sm}
	signing := &secretField{name: cfg.Pipeline.SlackSigningSecret, field: "signingSecret", api: sm}
	regs := &registries{cfg: cfg, aws: awsCfg, opts: o}
	a := app.Adapters{
		Config:     cfg,
		Store:      dynamo.New(dynamodb.NewFromConfig(awsCfg), cfg.Pipeline.Table),
		Registries: regs,
		Publisher:  bus.NewEventBridge(eventbridge.NewFromConfig(awsCfg), cfg.Pipeline.EventBus),
		Slack: slackbot.New(slackbot.Options{
			Token:        token.get,
			APIURL:       o.SlackAPIURL,
			AlertChannel: cfg.Alerts.SlackChannel, ResponsePrefixes: o.ResponsePrefixes, Log: log,
		}),
		SigningSecret: func(ctx context.Context) ([]byte, error) {
			v, err := signing.get(ctx)
			return []byte(v), err
		},
		Runtimes:  regs.Runtime,
		InUse:     regs.InUse,
		FollowUps: selfInvoke(awsCfg),
		Now:       time.Now,
		Log:       log,
	}
	if o.SweepQueueURL != "" {
		a.SweepQueue = &sweepsqs.Queue{API: sqs.NewFromConfig(awsCfg), URL: o.SweepQueueURL}
	}
	return a
}

// secretField is one field of a Secrets Manager secret's JSON, read on first use and kept
// for the container's life; a failed read is retried on the next call.
type secretField struct {
	name, field string
	api         *secretsmanager.Client

	mu  sync.Mutex
	val string
}

func (s *secretField) get(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.val != "" {
		return s.val, nil
	}
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.name)})
	if err != nil {
		return "", fmt.Errorf("read Slack secret %s from Secrets Manager: %w", s.name, err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
		// The error would quote the secret's text: say only where it went wrong.
		return "", fmt.Errorf("slack secret %s must be JSON {%q: \"...\"}; it is not JSON", s.name, s.field)
	}
	val, _ := v[s.field].(string)
	if val == "" {
		return "", fmt.Errorf("slack secret %s lacks %q: store {%q: \"...\"} there (put-secret-value)", s.name, s.field, s.field)
	}
	s.val = val
	return val, nil
}

// registries reach ECR: with the function's own credentials in the pipeline account, and
// elsewhere through the role each use needs (reader, promotion, sweeper). One client per
// registry and role, so concurrent calls share one retryer and its rate limiting.
type registries struct {
	cfg  *config.Config
	aws  aws.Config
	opts Options

	readers  sync.Map // account/region -> *ecr.Client
	sweep    sync.Map // Target.Key() -> sweep.Registry
	runtimes sync.Map // env -> deploy.Runtime
}

func (r *registries) Registry(account, region string) (*ecr.Client, error) {
	if region == "" {
		region = r.cfg.Pipeline.Region
	}
	if _, ok := r.cfg.EnvFor(account, region); !ok && account != r.cfg.Pipeline.Account {
		return nil, fmt.Errorf("account %s in %s is not any configured environment's: add it under environments in the config", account, region)
	}
	key := account + "/" + region
	if c, ok := r.readers.Load(key); ok {
		return c.(*ecr.Client), nil
	}
	awsCfg := r.aws.Copy()
	awsCfg.Region = region
	if account != r.cfg.Pipeline.Account {
		awsCfg.Credentials = r.assume(RoleARN(region, account, r.opts.ReaderRole), "regflow-read-"+account, nil)
	}
	// The credentials are the registry owner's own (directly or by role), so no registryId is passed.
	c, _ := r.readers.LoadOrStore(key, ecr.New(ecrsdk.NewFromConfig(awsCfg), ""))
	return c.(*ecr.Client), nil
}

// Promotion assumes the environment's promotion role with its external id and a session
// name carrying the request id (CloudTrail shows it), whenever one is configured: the
// promoter's own role may only pull.
func (r *registries) Promotion(_ context.Context, env, requestID string) (promoter.Endpoint, error) {
	e, ok := r.cfg.Environments[env]
	if !ok {
		return promoter.Endpoint{}, fmt.Errorf("environment %q is not configured", env)
	}
	awsCfg := r.aws.Copy()
	awsCfg.Region = e.Region
	if e.PromotionRole != "" {
		awsCfg.Credentials = r.assume(e.PromotionRole, "regflow-"+requestID, func(o *stscreds.AssumeRoleOptions) {
			o.ExternalID = aws.String(e.ExternalID)
		})
	}
	return promoter.Endpoint{Registry: ecr.New(ecrsdk.NewFromConfig(awsCfg), ""), Host: e.Registry}, nil
}

// Sweep reaches a registry as the sweeper role outside the pipeline account, with the
// sweep's adaptive retryer.
func (r *registries) Sweep(_ context.Context, t sweep.Target) (sweep.Registry, error) {
	if reg, ok := r.sweep.Load(t.Key()); ok {
		return reg.(sweep.Registry), nil
	}
	if !sweep.Configured(r.cfg, t) {
		return nil, fmt.Errorf("sweep %s: no configured environment lives in account %s in %s", t, t.Account, t.Region)
	}
	awsCfg, err := r.sweeper(t)
	if err != nil {
		return nil, err
	}
	awsCfg.Retryer = ecr.SweepRetryer
	reg, _ := r.sweep.LoadOrStore(t.Key(), ecr.SweepRegistry(ecr.New(ecrsdk.NewFromConfig(awsCfg), "")))
	return reg.(sweep.Registry), nil
}

// sweeper is the SDK config of the sweeper role in t's account (the function's own
// credentials in the pipeline account).
func (r *registries) sweeper(t sweep.Target) (aws.Config, error) {
	awsCfg := r.aws.Copy()
	awsCfg.Region = t.Region
	if t.Account != r.cfg.Pipeline.Account {
		if r.opts.SweeperRole == "" {
			return aws.Config{}, fmt.Errorf("registry %s is in another account than the pipeline's (%s): set %s to the role regflow may assume there", t, r.cfg.Pipeline.Account, EnvSweeperRole)
		}
		awsCfg.Credentials = r.assume(RoleARN(t.Region, t.Account, r.opts.SweeperRole), "regflow-sweep-"+strings.ReplaceAll(t.Name, "+", "-"),
			func(o *stscreds.AssumeRoleOptions) { o.Duration = time.Hour })
	}
	return awsCfg, nil
}

// InUse reads what runs in t's account (every ECS cluster and Lambda function of its
// region) as the sweeper role, which needs ecs:ListClusters, ecs:ListServices,
// ecs:DescribeServices, ecs:ListTasks, ecs:DescribeTasks, ecs:DescribeTaskDefinition,
// lambda:ListFunctions, lambda:ListAliases and lambda:GetFunction there, and
// inspector2:ListCoverage when retention.inUseWithin is set.
func (r *registries) InUse(_ context.Context, t sweep.Target) (sweep.InUse, error) {
	env, ok := r.cfg.EnvFor(t.Account, t.Region)
	if !ok {
		return nil, fmt.Errorf("read what runs for %s: no configured environment lives in account %s in %s", t, t.Account, t.Region)
	}
	awsCfg, err := r.sweeper(t)
	if err != nil {
		return nil, err
	}
	u := awsruntime.InUse{ECS: ecs.NewFromConfig(awsCfg), Lambda: lambdasdk.NewFromConfig(awsCfg), Registry: r.cfg.Environments[env].Registry}
	if w := r.cfg.Retention.InUseWithin.D(); w > 0 {
		// With enhanced scanning on, Inspector's lastInUseAt as well (inspector2:ListCoverage).
		u.Inspector, u.Account, u.Within = inspector2.NewFromConfig(awsCfg), t.Account, w
	}
	return u, nil
}

// Runtime reaches env's SSM, ECS and Lambda as its deployment role, with the environment's
// external id: the promoter's own role has no deployment rights anywhere.
func (r *registries) Runtime(_ context.Context, env string) (deploy.Runtime, error) {
	e, ok := r.cfg.Environments[env]
	if !ok {
		return deploy.Runtime{}, fmt.Errorf("environment %q is not configured", env)
	}
	if rt, ok := r.runtimes.Load(env); ok {
		return rt.(deploy.Runtime), nil
	}
	role := e.Deploy.Role
	if role == "" {
		role = RoleARN(e.Region, e.Account, DeploymentRoleName)
	}
	awsCfg := r.aws.Copy()
	awsCfg.Region = e.Region
	awsCfg.Credentials = r.assume(role, "regflow-deploy-"+env, func(o *stscreds.AssumeRoleOptions) {
		if e.ExternalID != "" {
			o.ExternalID = aws.String(e.ExternalID)
		}
	})
	rt, _ := r.runtimes.LoadOrStore(env, awsruntime.New(awsCfg))
	return rt.(deploy.Runtime), nil
}

func (r *registries) assume(arn, session string, more func(*stscreds.AssumeRoleOptions)) aws.CredentialsProvider {
	if len(session) > 64 {
		session = session[:64]
	}
	return aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(r.aws), arn, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = session
		if more != nil {
			more(o)
		}
	}))
}

// RoleARN is the ARN of role name in account, in region's partition.
func RoleARN(region, account, name string) string {
	return "arn:" + Partition(region) + ":iam::" + account + ":role/" + name
}

// Partition returns the ARN partition of a region.
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	}
	return "aws"
}
