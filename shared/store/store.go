// Package store declares regflow's persistence port. Two adapters implement it:
// store/dynamo (DynamoDB, in AWS) and store/embedded (a bbolt file, the local
// default). Both pass the one contract suite in store/storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

// Item is how Change reads and conditionally writes one kind of store item.
type Item[T any] struct {
	// Name names the item in errors ("approval request req-…").
	Name  string
	Read  func(ctx context.Context) (T, error)
	Write func(ctx context.Context, next T) error
	// Attempts bounds the writes tried (default 8).
	Attempts int
}

// winner is a lost write's error carrying what won, so the next attempt needs no re-read.
type winner[T any] interface {
	Winner() (T, bool)
}

// Change is the one read-modify-write of store items under optimistic concurrency: it reads
// the item, lets change decide the next state, and writes it conditionally (the item's
// version). When a concurrent write wins (regflow.ErrConflict), change runs again on what
// won: the copy the store returned with the refusal where it returns one (DynamoDB does),
// else a fresh read after a short jittered pause. change returns the next state and whether
// to write it; an error from change stops and is returned as it is. Change returns the item
// as it stands afterwards.
func Change[T any](ctx context.Context, it Item[T], change func(cur T) (T, bool, error)) (T, error) {
	cur, err := it.Read(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return ChangeFrom(ctx, it, cur, change)
}

// ChangeFrom is Change starting from cur, an item the caller has just read.
func ChangeFrom[T any](ctx context.Context, it Item[T], cur T, change func(cur T) (T, bool, error)) (T, error) {
	attempts := it.Attempts
	if attempts <= 0 {
		attempts = maxChangeAttempts
	}
	for attempt := 1; ; attempt++ {
		next, write, err := change(cur)
		if err != nil || !write {
			return cur, err
		}
		err = it.Write(ctx, next)
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, regflow.ErrConflict) {
			return cur, fmt.Errorf("write %s: %w", it.Name, err)
		}
		if attempt >= attempts {
			return cur, fmt.Errorf("%s kept changing under %d attempts: %w", it.Name, attempt, err)
		}
		var w winner[T]
		if errors.As(err, &w) {
			if won, ok := w.Winner(); ok {
				cur = won
				continue
			}
		}
		select {
		case <-ctx.Done():
			return cur, ctx.Err()
		case <-time.After(time.Duration(rand.IntN(5*attempt)+1) * time.Millisecond):
		}
		if cur, err = it.Read(ctx); err != nil {
			return cur, fmt.Errorf("re-read %s: %w", it.Name, err)
		}
	}
}

// maxChangeAttempts bounds how often Change re-applies after losing a write.
const maxChangeAttempts = 8

// ChangeRequest changes approval request id with Change.
func ChangeRequest(ctx context.Context, s RequestStore, id string, change func(cur regflow.ApprovalRequest) (regflow.ApprovalRequest, bool)) (regflow.ApprovalRequest, error) {
	return Change(ctx, RequestItem(s, id), func(cur regflow.ApprovalRequest) (regflow.ApprovalRequest, bool, error) {
		next, write := change(cur)
		return next, write, nil
	})
}

// RequestItem is approval request id as a Change item.
func RequestItem(s RequestStore, id string) Item[regflow.ApprovalRequest] {
	return Item[regflow.ApprovalRequest]{
		Name:  "approval request " + id,
		Read:  func(ctx context.Context) (regflow.ApprovalRequest, error) { return s.GetRequest(ctx, id) },
		Write: s.UpdateRequest,
	}
}

// ReleaseStore reads and conditionally writes release pointers.
type ReleaseStore interface {
	GetRelease(ctx context.Context, env, repo string) (regflow.Release, error)
	PutRelease(ctx context.Context, next regflow.Release) error
}

// ReleaseItem is env's release pointer of repo as a Change item; a pointer never written
// reads as version 0.
func ReleaseItem(s ReleaseStore, env, repo string) Item[regflow.Release] {
	return Item[regflow.Release]{
		Name: env + " release pointer of " + repo,
		Read: func(ctx context.Context) (regflow.Release, error) {
			r, err := s.GetRelease(ctx, env, repo)
			if errors.Is(err, ErrNotFound) {
				return regflow.Release{Env: env, Repository: repo}, nil
			}
			return r, err
		},
		Write: s.PutRelease,
	}
}
