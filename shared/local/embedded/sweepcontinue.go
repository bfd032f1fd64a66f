package embedded

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/regflow/regflow/shared/store"
)

// ContinueSweepBatch completes batch and adds one to the total, in one transaction.
func (s *Store) ContinueSweepBatch(_ context.Context, id, batch string, c store.SweepCounts) (store.SweepRun, bool, error) {
	run, err := s.updateRun(id, func(r *store.SweepRun) error {
		if slices.Contains(r.Batches, batch) {
			return errUnchanged
		}
		if r.Total == 0 {
			return errors.New("the run's batches are not counted yet (total 0)")
		}
		r.Batches = append(r.Batches, batch)
		r.Total++
		r.SweepCounts = r.SweepCounts.Add(c)
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return run, false, nil
	}
	if err != nil {
		return store.SweepRun{}, false, fmt.Errorf("continue batch %s of sweep run %s: %w", batch, id, err)
	}
	return run, true, nil
}
