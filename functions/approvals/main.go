// Command approvals is the Lambda function behind Slack's interactivity Request URL
// (API Gateway HTTP API, payload 2.0, POST /slack/interactions). It adapts the
// event to the same net/http handler the local stack serves, which verifies the
// click, records the decision exactly once, publishes it on the regflow bus and
// updates the Slack message.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/promoter"
	"github.com/regflow/regflow/shared/wiring"
)

func main() {
	deps, err := wiring.FromEnvironment(context.Background())
	if err != nil {
		slog.Error("approvals cannot start", "error", err)
		os.Exit(1)
	}
	publisher := deps.Publisher()
	svc := &approvals.Service{
		Config:    deps.Config,
		Store:     deps.Store,
		Publisher: publisher,
		// The Roll back button asks the promoter over the bus; this function holds no registry roles.
		Rollback: promoter.SlackRollback{Store: deps.Store, Publisher: publisher, Now: time.Now},
		Messages: approvals.SlackMessages{Client: deps.SlackClient},
		Groups:   approvals.NewSlackGroups(deps.SlackClient, approvals.GroupTTL, time.Now),
		Now:      time.Now,
		Log:      deps.Log,
	}
	h := &approvals.Handler{
		Decider: svc,
		// Secrets Manager is read once per container (wiring caches it).
		SigningSecret: func(ctx context.Context) ([]byte, error) {
			s, err := deps.Slack(ctx)
			return []byte(s.SigningSecret), err
		},
		Responder: approvals.Webhook{Prefixes: approvals.ResponsePrefixes(os.Getenv(approvals.EnvResponseURLPrefixes))},
		Team:      deps.Config.Pipeline.SlackTeam,
		Log:       deps.Log,
	}
	lambda.Start(approvals.Lambda(h))
}
