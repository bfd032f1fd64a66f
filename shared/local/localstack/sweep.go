package localstack

import (
	"context"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/sweep"
)

// Sweep runs the retention sweep inline over every environment's local registry at the
// stack's clock, as the scheduled sweeper does in AWS.
func (s *Stack) Sweep(ctx context.Context, runID string, dryRun bool) (*sweep.Report, error) {
	return s.App.Sweep(ctx, app.SweepOptions{Run: sweep.Run{ID: runID, Now: s.Clock.Now(), DryRun: dryRun}})
}
