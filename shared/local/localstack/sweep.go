package localstack

import (
	"context"
	"fmt"

	"github.com/regflow/regflow/shared/sweep"
	"github.com/regflow/regflow/shared/wiring"
)

// Sweep runs the retention sweep inline over every environment's local registry at the
// stack's clock, as the scheduled sweeper does in AWS.
func (s *Stack) Sweep(ctx context.Context, runID string, dryRun bool) (*sweep.Report, error) {
	sw := &sweep.Sweeper{Retention: s.Config.Retention, Repositories: s.Config.Repositories, Audit: s.Store, Cache: s.Store, Log: s.Log}
	prot, err := sweep.LoadProtections(ctx, s.Store, s.Clock.Now())
	if err != nil {
		return nil, err
	}
	registries := func(_ context.Context, t sweep.Target) (sweep.Registry, error) {
		c, err := s.registryForAccount(t.Account)
		if err != nil {
			return nil, fmt.Errorf("sweep %s: %w", t, err)
		}
		return wiring.SweepRegistry(c), nil
	}
	run := sweep.Run{ID: runID, Now: s.Clock.Now(), DryRun: dryRun}
	return sw.Estate(ctx, run, sweep.Targets(s.Config), registries, prot), nil
}
