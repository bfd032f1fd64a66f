// Command scangate is the Lambda function run on ECR basic and Inspector enhanced
// scan results, and on "Verification Result" events from deployment pipelines.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/regflow/regflow/shared/scangate"
	"github.com/regflow/regflow/shared/wiring"
)

func main() {
	deps, err := wiring.FromEnvironment(context.Background())
	if err != nil {
		slog.Error("scangate cannot start", "error", err)
		os.Exit(1)
	}
	g := &scangate.Gate{
		Config:     deps.Config,
		Registries: func(env string) (scangate.Registry, error) { return deps.EnvRegistry(env) },
		Store:      deps.Store,
		Messenger:  deps.ApprovalMessenger(),
		Notifier:   deps.AlertNotifier(),
		Now:        time.Now,
		Log:        deps.Log,
	}
	lambda.Start(g.Invoke)
}
