// Package store declares regflow's persistence port. Two adapters implement it:
// store/dynamo (DynamoDB, in AWS) and store/embedded (a bbolt file, the local
// default). Both pass the one contract suite in store/storetest.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/regflow/regflow/shared/regflow"
)

// ErrNotFound is returned when an item does not exist.
var ErrNotFound = errors.New("not found")

// Store is everything regflow persists.
type Store interface {
	// PutImage records an image's identity (tags, commit, pushed at), leaving any other state on it untouched.
	PutImage(ctx context.Context, img regflow.Image) error
	// GetImage returns the recorded image or ErrNotFound.
	GetImage(ctx context.Context, repo, digest string) (regflow.Image, error)
	// AppendAudit writes an entry once: it returns false, and changes nothing, if an entry
	// with the same subject, time and ID exists.
	AppendAudit(ctx context.Context, e regflow.AuditEntry) (bool, error)
	// Audit returns a subject's entries, oldest first.
	Audit(ctx context.Context, subject string) ([]regflow.AuditEntry, error)
	// Claim takes key until the given time, returning false if someone holds an unexpired claim.
	// It makes side effects that cannot be undone (a Slack message) happen once.
	Claim(ctx context.Context, key string, now, until time.Time) (bool, error)
	// Release gives a claim back, so a failed side effect can be retried.
	Release(ctx context.Context, key string) error
}
