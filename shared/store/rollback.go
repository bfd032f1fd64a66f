package store

import (
	"context"

	"github.com/regflow/regflow/shared/regflow"
)

// RollbackStore keeps the rollbacks people asked for (a Slack click, the CLI), so the
// promoter acts only on one regflow recorded, and only once.
type RollbackStore interface {
	// CreateRollback stores a new rollback (Version 1); false, and nothing changed, if its ID exists.
	CreateRollback(ctx context.Context, r regflow.Rollback) (bool, error)
	// GetRollback returns a rollback or ErrNotFound.
	GetRollback(ctx context.Context, id string) (regflow.Rollback, error)
	// UpdateRollback writes next only if the stored version is next.Version-1, else regflow.ErrConflict.
	UpdateRollback(ctx context.Context, next regflow.Rollback) error
}

// RollbackPK is the partition of one stored rollback.
func RollbackPK(id string) string { return PrefixRollback + id }

// RollbackItem is stored rollback id as a Change item.
func RollbackItem(s RollbackStore, id string) Item[regflow.Rollback] {
	return Item[regflow.Rollback]{
		Name:  "rollback " + id,
		Read:  func(ctx context.Context) (regflow.Rollback, error) { return s.GetRollback(ctx, id) },
		Write: s.UpdateRollback,
	}
}
