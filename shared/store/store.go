// Package store declares regflow's persistence port. Two adapters implement it:
// store/dynamo (DynamoDB, in AWS) and store/embedded (a bbolt file, the local
// default). Both pass the one contract suite in store/storetest.
package store

import (
	"context"
	"errors"
	"fmt"
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
	// Renew sets a held claim's expiry (once its effect is done, to keep it long).
	Renew(ctx context.Context, key string, until time.Time) error

	// CreateRequest stores a new approval request (Version 1); false if the ID exists.
	CreateRequest(ctx context.Context, r regflow.ApprovalRequest) (bool, error)
	// UpdateRequest writes next only if the stored version is next.Version-1, else regflow.ErrConflict.
	UpdateRequest(ctx context.Context, next regflow.ApprovalRequest) error
	// GetRequest returns a request or ErrNotFound.
	GetRequest(ctx context.Context, id string) (regflow.ApprovalRequest, error)
	// Requests lists the requests in a status, oldest first.
	Requests(ctx context.Context, status string) ([]regflow.ApprovalRequest, error)

	// PutRelease writes an environment's release pointer if the stored version is next.Version-1
	// (absent counts as 0), else regflow.ErrConflict.
	PutRelease(ctx context.Context, next regflow.Release) error
	// GetRelease returns the pointer or ErrNotFound.
	GetRelease(ctx context.Context, env, repo string) (regflow.Release, error)
	// Releases lists every environment's pointers.
	Releases(ctx context.Context) ([]regflow.Release, error)

	// PutVerification records (or replaces) a verification result.
	PutVerification(ctx context.Context, v regflow.Verification) error
	// GetVerification returns the result for a digest in an environment, or ErrNotFound.
	GetVerification(ctx context.Context, env, repo, digest string) (regflow.Verification, error)

	// PutScan records (or replaces) a digest's scan result in an environment.
	PutScan(ctx context.Context, s regflow.Scan) error
	// GetScan returns the recorded scan, or ErrNotFound.
	GetScan(ctx context.Context, env, repo, digest string) (regflow.Scan, error)
}

// Claimer is the part of a Store that makes side effects happen once.
type Claimer interface {
	Claim(ctx context.Context, key string, now, until time.Time) (bool, error)
	Release(ctx context.Context, key string) error
	Renew(ctx context.Context, key string, until time.Time) error
}

// DefaultLease bounds how long a crashed worker can hold a claim before a retry may take it:
// longer than any function's timeout, shorter than Lambda's and EventBridge's retry backoff.
const DefaultLease = 15 * time.Minute

// Once runs effect at most once per key and reports whether it ran. While it runs the key is
// held for lease only, so a process that dies mid-effect frees it for the retry; after success
// it is held until keep. A failed effect gives the key back so the retry redoes it.
func Once(ctx context.Context, c Claimer, key string, now time.Time, lease, keep time.Duration, effect func() error) (bool, error) {
	won, err := c.Claim(ctx, key, now, now.Add(lease))
	if err != nil || !won {
		return false, err
	}
	if err := effect(); err != nil {
		// Release even if the caller's context is done, so the retry can claim.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := c.Release(rctx, key); rerr != nil {
			err = errors.Join(err, fmt.Errorf("and claim %s could not be released: %w", key, rerr))
		}
		return false, err
	}
	if err := c.Renew(context.WithoutCancel(ctx), key, now.Add(keep)); err != nil {
		return true, fmt.Errorf("keep claim %s after its effect: %w", key, err)
	}
	return true, nil
}

// RequestStore reads and conditionally writes approval requests.
type RequestStore interface {
	GetRequest(ctx context.Context, id string) (regflow.ApprovalRequest, error)
	UpdateRequest(ctx context.Context, next regflow.ApprovalRequest) error
}

// maxChangeAttempts bounds how often ChangeRequest re-reads after losing a write.
const maxChangeAttempts = 8

// ChangeRequest reads request id and writes change's result, re-reading and re-applying
// when a concurrent write wins. change returns the next state (Version advanced) and
// whether to write it; false leaves the request as read. It returns the request as it
// stands afterwards.
func ChangeRequest(ctx context.Context, s RequestStore, id string, change func(cur regflow.ApprovalRequest) (regflow.ApprovalRequest, bool)) (regflow.ApprovalRequest, error) {
	for attempt := 1; ; attempt++ {
		cur, err := s.GetRequest(ctx, id)
		if err != nil {
			return cur, err
		}
		next, write := change(cur)
		if !write {
			return cur, nil
		}
		err = s.UpdateRequest(ctx, next)
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, regflow.ErrConflict) || attempt >= maxChangeAttempts {
			return cur, fmt.Errorf("update approval request %s: %w", id, err)
		}
	}
}
