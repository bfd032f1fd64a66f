// Command sweeper is the scheduled Lambda function of the retention sweep: it lists
// every environment's repositories and queues them in batches for sweepworker
// (or, without REGFLOW_SWEEP_QUEUE_URL, sweeps them itself through the same worker).
package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/regflow/regflow/shared/sweep"
	"github.com/regflow/regflow/shared/wiring"
)

func main() {
	deps, err := wiring.FromEnvironment(context.Background())
	if err != nil {
		slog.Error("sweeper cannot start", "error", err)
		os.Exit(1)
	}
	planner := deps.SweepPlanner()
	lambda.Start(func(ctx context.Context, event json.RawMessage) (sweep.Plan, error) {
		run, err := sweep.RunFromEvent(event, deps.Config.Retention.DryRun)
		if err != nil {
			return sweep.Plan{}, err
		}
		return planner.Plan(ctx, run)
	})
}
