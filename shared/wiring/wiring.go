// Package wiring builds a function's dependencies from its deployment: the
// config from REGFLOW_CONFIG(_INLINE), AWS clients from the default credential
// chain (endpoints from AWS_ENDPOINT_URL_<SERVICE>, the standard way), the
// DynamoDB store, and Slack with its secret fetched once per container.
package wiring

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/slack-go/slack"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/notify"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/store/dynamo"
)

// EnvSlackAPIURL points slack-go at a stand-in (the local stack, tests) instead of slack.com.
const EnvSlackAPIURL = "REGFLOW_SLACK_API_URL"

// Deps are the adapters a function uses, built once per container.
type Deps struct {
	Config *config.Config
	AWS    aws.Config
	Log    *slog.Logger
	Store  *dynamo.Store

	secretsMu  sync.Mutex
	secrets    *SlackSecret
	registries sync.Map // account/environment -> *ecr.Client
}

// SlackSecret is the Secrets Manager secret's JSON.
type SlackSecret struct {
	SigningSecret string `json:"signingSecret"`
	BotToken      string `json:"botToken"`
}

// FromEnvironment loads the config and builds the AWS clients. A bad config fails here,
// at init, with the field named.
func FromEnvironment(ctx context.Context) (*Deps, error) {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion(cfg.Pipeline.Region),
		awsconfig.WithRetryer(func() aws.Retryer {
			// ECR throttles bursts; the standard retryer backs off with jitter.
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 6 })
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return &Deps{
		Config: cfg,
		AWS:    awsCfg,
		Log:    log,
		Store:  dynamo.New(dynamodb.NewFromConfig(awsCfg), cfg.Pipeline.Table),
	}, nil
}

// EnvReaderRole overrides the name of the read-only role assumed in environment accounts.
const EnvReaderRole = "REGFLOW_READER_ROLE"

// ReaderRoleName is the role the infrastructure creates for reading other accounts' registries.
const ReaderRoleName = "regflow-reader"

// Registry returns an ECR client for the registry in account: the function's own credentials
// in the pipeline account, elsewhere the read-only regflow-reader role the environment's stack
// creates (the tag guard acts only on the pipeline account's pushes).
func (d *Deps) Registry(account string) (*ecr.Client, error) {
	name, ok := d.Config.EnvForAccount(account)
	if !ok && account != d.Config.Pipeline.Account {
		return nil, fmt.Errorf("account %s is not any configured environment's: add it under environments in the config", account)
	}
	return d.registryOf(account, name)
}

// EnvRegistry returns the ECR client for an environment's registry (its account and region).
func (d *Deps) EnvRegistry(env string) (*ecr.Client, error) {
	e, ok := d.Config.Environments[env]
	if !ok {
		return nil, fmt.Errorf("environment %q is not configured", env)
	}
	return d.registryOf(e.Account, env)
}

func (d *Deps) registryOf(account, name string) (*ecr.Client, error) {
	key := account + "/" + name
	if c, ok := d.registries.Load(key); ok {
		return c.(*ecr.Client), nil
	}
	awsCfg := d.AWS.Copy()
	env := d.Config.Environments[name]
	if env.Region != "" {
		awsCfg.Region = env.Region
	}
	if account != d.Config.Pipeline.Account {
		role := os.Getenv(EnvReaderRole)
		if role == "" {
			role = ReaderRoleName
		}
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(d.AWS),
			"arn:"+partition(env.Region)+":iam::"+account+":role/"+role,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "regflow-read-" + name }))
	}
	// The credentials are the registry owner's own (directly or by role), so no registryId is passed.
	c := ecr.New(ecrsdk.NewFromConfig(awsCfg), "")
	actual, _ := d.registries.LoadOrStore(key, c)
	return actual.(*ecr.Client), nil
}

// Slack returns the bot token and signing secret, fetched from Secrets Manager on first
// use and kept for the container's life; a failed fetch is retried on the next call.
func (d *Deps) Slack(ctx context.Context) (SlackSecret, error) {
	d.secretsMu.Lock()
	defer d.secretsMu.Unlock()
	if d.secrets != nil {
		return *d.secrets, nil
	}
	name := d.Config.Pipeline.SlackSecret
	out, err := secretsmanager.NewFromConfig(d.AWS).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return SlackSecret{}, fmt.Errorf("read Slack secret %s from Secrets Manager: %w", name, err)
	}
	var s SlackSecret
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &s); err != nil {
		return SlackSecret{}, fmt.Errorf("slack secret %s must be JSON {\"signingSecret\",\"botToken\"}: %w", name, err)
	}
	if s.BotToken == "" || s.SigningSecret == "" {
		return SlackSecret{}, fmt.Errorf("slack secret %s lacks signingSecret or botToken", name)
	}
	d.secrets = &s
	return s, nil
}

// SlackClient returns a slack-go client with the bot token.
func (d *Deps) SlackClient(ctx context.Context) (*slack.Client, error) {
	s, err := d.Slack(ctx)
	if err != nil {
		return nil, err
	}
	var opts []slack.Option
	if u := os.Getenv(EnvSlackAPIURL); u != "" {
		opts = append(opts, slack.OptionAPIURL(u))
	}
	return slack.New(s.BotToken, opts...), nil
}

// AlertNotifier posts to the alert channel, or logs when none is configured.
func (d *Deps) AlertNotifier() Notifier {
	if d.Config.Alerts.SlackChannel == "" {
		return notify.Log{Logger: d.Log}
	}
	return lazySlack{d: d, channel: d.Config.Alerts.SlackChannel}
}

// Notifier delivers alerts.
type Notifier interface {
	Notify(ctx context.Context, a regflow.Alert) error
}

// lazySlack fetches the Slack secret on the first alert, keeping it off the cold start.
type lazySlack struct {
	d       *Deps
	channel string
}

func (l lazySlack) Notify(ctx context.Context, a regflow.Alert) error {
	c, err := l.d.SlackClient(ctx)
	if err != nil {
		return err
	}
	return notify.NewSlack(c, l.channel).Notify(ctx, a)
}

// ApprovalMessenger posts approval messages with the bot token, fetched on first use.
func (d *Deps) ApprovalMessenger() SlackPoster { return SlackPoster{d: d} }

// SlackPoster posts and updates approval messages, fetching the bot token on first use so
// functions that never post keep Secrets Manager off their cold start.
type SlackPoster struct{ d *Deps }

// Post sends a new approval message.
func (l SlackPoster) Post(ctx context.Context, channel string, r regflow.ApprovalRequest, c slackmsg.Context) (string, string, error) {
	client, err := l.d.SlackClient(ctx)
	if err != nil {
		return "", "", err
	}
	return slackmsg.Poster{Client: client}.Post(ctx, channel, r, c)
}

// Update rewrites an approval message.
func (l SlackPoster) Update(ctx context.Context, r regflow.ApprovalRequest, c slackmsg.Context) error {
	client, err := l.d.SlackClient(ctx)
	if err != nil {
		return err
	}
	return slackmsg.Poster{Client: client}.Update(ctx, r, c)
}
