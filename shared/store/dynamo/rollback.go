package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

type rollbackItem struct {
	keyed
	TTL int64 `json:"ttl,omitempty"`
	regflow.Rollback
}

// rollbackKeep is how long a stored rollback stays, for the audit of who asked.
const rollbackKeep = 400 * 24 * 3600

func rollbackItemOf(r regflow.Rollback) rollbackItem {
	return rollbackItem{keyed{store.RollbackPK(r.ID), store.SKMeta}, r.At.Unix() + rollbackKeep, r}
}

// CreateRollback stores a new rollback.
func (s *Store) CreateRollback(ctx context.Context, r regflow.Rollback) (bool, error) {
	r.Version = 1
	switch err := s.putVersioned(ctx, rollbackItemOf(r), 0); {
	case err == nil:
		return true, nil
	case errors.Is(err, regflow.ErrConflict):
		return false, nil
	default:
		return false, fmt.Errorf("record rollback %s: %w", r.ID, err)
	}
}

// GetRollback reads a rollback.
func (s *Store) GetRollback(ctx context.Context, id string) (regflow.Rollback, error) {
	var it rollbackItem
	if err := s.get(ctx, store.RollbackPK(id), store.SKMeta, &it); err != nil {
		return regflow.Rollback{}, fmt.Errorf("rollback %s: %w", id, err)
	}
	return it.Rollback, nil
}

// UpdateRollback writes next if nobody else wrote since it was read.
func (s *Store) UpdateRollback(ctx context.Context, next regflow.Rollback) error {
	if next.Version < 2 {
		return fmt.Errorf("update rollback %s: version %d was not advanced", next.ID, next.Version)
	}
	if err := s.putVersioned(ctx, rollbackItemOf(next), next.Version-1); err != nil {
		if errors.Is(err, regflow.ErrConflict) {
			return err
		}
		return fmt.Errorf("update rollback %s: %w", next.ID, err)
	}
	return nil
}
