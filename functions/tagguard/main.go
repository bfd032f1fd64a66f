// Command tagguard is the Lambda function run on every ECR push: it enforces the
// tag policy, keeps repositories tag-immutable and records the image.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/regflow/regflow/shared/tagguard"
	"github.com/regflow/regflow/shared/tagpolicy"
	"github.com/regflow/regflow/shared/wiring"
)

func main() {
	deps, err := wiring.FromEnvironment(context.Background())
	if err != nil {
		slog.Error("tagguard cannot start", "error", err)
		os.Exit(1)
	}
	policy, err := tagpolicy.New(deps.Config.TagPolicy)
	if err != nil {
		deps.Log.Error("tagguard cannot start", "error", err)
		os.Exit(1)
	}
	h := &tagguard.Handler{
		Registries: func(account string) (tagguard.Registry, error) { return deps.Registry(account) },
		Store:      deps.Store,
		Notifier:   deps.AlertNotifier(),
		Publisher:  deps.Publisher(),
		Policy:     policy,
		Now:        time.Now,
		Log:        deps.Log,
	}
	lambda.Start(h.Invoke)
}
