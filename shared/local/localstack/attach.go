package localstack

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/awsruntime"
	"github.com/regflow/regflow/shared/bus"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/signature/ocisig"
)

// Attach returns the adapters for commands run against a stack another process runs
// (`regflow local`), from the Info it wrote: its registries, its Slack stand-in, its
// EventBridge endpoint and st, its store opened shared. The config is pointed at the
// stack's registries, as the stack points its own.
func Attach(cfg *config.Config, info Info, st app.Store, log *slog.Logger) app.Adapters {
	local := *cfg
	local.Environments = map[string]config.Environment{}
	for name, env := range cfg.Environments {
		if e, ok := info.Environments[name]; ok {
			env.Registry = e.Registry
			local.Environments[name] = env
		}
	}
	var pub event.Publisher = noEndpoint{}
	if info.EventsEndpoint != "" {
		pub = bus.NewEventBridge(eventbridge.NewFromConfig(aws.Config{
			Region: cfg.Pipeline.Region, Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
			BaseEndpoint: aws.String(info.EventsEndpoint), Retryer: func() aws.Retryer { return retry.NewStandard() },
		}), cfg.Pipeline.EventBus)
	}
	return app.Adapters{
		Config: &local, Store: st, Registries: Registries(&local, info.Environments), Publisher: pub,
		Slack: slackBot(&local, info.SlackAPI, log),
		SigningSecret: func(context.Context) ([]byte, error) {
			if info.SlackSigningSecret == "" {
				return nil, fmt.Errorf("the local stack has no Slack signing secret in local.json: restart it with this version of regflow")
			}
			return []byte(info.SlackSigningSecret), nil
		},
		Runtimes: func(_ context.Context, env string) (deploy.Runtime, error) {
			e, ok := info.Environments[env]
			if !ok || e.SSMEndpoint == "" {
				return deploy.Runtime{}, deploy.ErrNoRuntimes
			}
			return awsruntime.New(aws.Config{
				Region: e.Region, Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
				BaseEndpoint: aws.String(e.SSMEndpoint), Retryer: func() aws.Retryer { return retry.NewStandard() },
			}), nil
		},
		Signatures: ocisig.ForApp,
		Now:        time.Now, Log: log,
	}
}

// noEndpoint stands in for the publisher when local.json names no EventBridge endpoint.
type noEndpoint struct{}

func (noEndpoint) Publish(context.Context, event.Message) error {
	return fmt.Errorf("the local stack does not say where its event bus listens (no eventsEndpoint in local.json): restart `regflow local` with this version of regflow")
}
