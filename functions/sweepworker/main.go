// Command sweepworker is the Lambda function that sweeps one batch of repositories
// per SQS message, adds its counts to the run, and posts the summary when it
// completes the run's last batch.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/regflow/regflow/shared/sweep/sweepsqs"
	"github.com/regflow/regflow/shared/wiring"
)

func main() {
	deps, err := wiring.FromEnvironment(context.Background())
	if err != nil {
		slog.Error("sweepworker cannot start", "error", err)
		os.Exit(1)
	}
	lambda.Start(sweepsqs.Handler(deps.SweepWorker()))
}
