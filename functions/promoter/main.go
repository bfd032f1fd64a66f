// Command promoter is the Lambda function run on "Promotion Approved": it copies the
// approved digest into the environment's account and moves its release pointer.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/regflow/regflow/shared/promoter"
	"github.com/regflow/regflow/shared/wiring"
)

func main() {
	deps, err := wiring.FromEnvironment(context.Background())
	if err != nil {
		slog.Error("promoter cannot start", "error", err)
		os.Exit(1)
	}
	p := &promoter.Promoter{
		Config:    deps.Config,
		Endpoints: deps.PromotionEndpoint,
		Store:     deps.Store,
		Publisher: deps.Publisher(),
		Messenger: deps.ApprovalMessenger(),
		Notifier:  deps.AlertNotifier(),
		Now:       time.Now,
		Log:       deps.Log,
	}
	lambda.Start(p.Invoke)
}
