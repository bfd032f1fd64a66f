package embedded

import (
	"context"
	"errors"
	"fmt"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

func rbVersion(r regflow.Rollback) int { return r.Version }

// CreateRollback stores a new rollback.
func (s *Store) CreateRollback(_ context.Context, r regflow.Rollback) (bool, error) {
	r.Version = 1
	switch err := putVersioned(s.db, store.RollbackPK(r.ID), r, rbVersion, 0); {
	case err == nil:
		return true, nil
	case errors.Is(err, regflow.ErrConflict):
		return false, nil
	default:
		return false, fmt.Errorf("record rollback %s: %w", r.ID, err)
	}
}

// GetRollback reads a rollback.
func (s *Store) GetRollback(_ context.Context, id string) (regflow.Rollback, error) {
	var r regflow.Rollback
	if err := s.view(store.RollbackPK(id), store.SKMeta, &r); err != nil {
		return r, fmt.Errorf("rollback %s: %w", id, err)
	}
	return r, nil
}

// UpdateRollback writes next if nobody else wrote since it was read.
func (s *Store) UpdateRollback(_ context.Context, next regflow.Rollback) error {
	if next.Version < 2 {
		return fmt.Errorf("update rollback %s: version %d was not advanced", next.ID, next.Version)
	}
	return putVersioned(s.db, store.RollbackPK(next.ID), next, rbVersion, next.Version-1)
}
