package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/store"
)

// ErrNotPermitted is wrapped by every write or publish a function's rights do not cover.
var ErrNotPermitted = errors.New("not permitted")

type functionKey struct{}

// As marks ctx as running function fn: the store and publisher New hands the use cases
// then allow only what fn's rights (route.Writes, route.Publishes) allow, as IAM does in
// AWS. Invoke marks every invocation; calls outside one (the CLI, under the operator's own
// credentials) are not limited.
func As(ctx context.Context, fn string) context.Context {
	return context.WithValue(ctx, functionKey{}, fn)
}

func functionOf(ctx context.Context) string {
	fn, _ := ctx.Value(functionKey{}).(string)
	return fn
}

// Rights wraps a store and a publisher so that each refuses, inside a function's
// invocation (As), what that function may not do.
func Rights(s Store, p event.Publisher) (Store, event.Publisher) {
	return &rightsStore{Store: s}, &rightsPublisher{p}
}

type rightsPublisher struct{ next event.Publisher }

func (r *rightsPublisher) Publish(ctx context.Context, m event.Message) error {
	if fn := functionOf(ctx); fn != "" && !slices.Contains(route.Publishes(fn), m.DetailType()) {
		return fmt.Errorf("%s may not publish %q (it publishes %s; route.Publishes, which infra grants in IAM): %w",
			fn, m.DetailType(), strings.Join(route.Publishes(fn), ", "), ErrNotPermitted)
	}
	return r.next.Publish(ctx, m)
}

// rightsStore checks each write's item kind; reads pass through (every function may read).
type rightsStore struct{ Store }

func may(ctx context.Context, prefix, what string) error {
	fn := functionOf(ctx)
	if fn == "" || slices.Contains(route.Writes(fn), prefix) {
		return nil
	}
	return fmt.Errorf("%s may not write %s (item kind %s; its kinds are %s in route.Writes, which infra grants in IAM): %w",
		fn, what, prefix, strings.Join(route.Writes(fn), ", "), ErrNotPermitted)
}

func (r *rightsStore) PutImage(ctx context.Context, img regflow.Image) error {
	if err := may(ctx, store.PrefixImage, "image records"); err != nil {
		return err
	}
	return r.Store.PutImage(ctx, img)
}

func (r *rightsStore) AppendAudit(ctx context.Context, e regflow.AuditEntry) (bool, error) {
	if err := may(ctx, store.PrefixAudit, "audit entries"); err != nil {
		return false, err
	}
	return r.Store.AppendAudit(ctx, e)
}

func (r *rightsStore) AppendAudits(ctx context.Context, entries []regflow.AuditEntry) error {
	if err := may(ctx, store.PrefixAudit, "audit entries"); err != nil {
		return err
	}
	return r.Store.AppendAudits(ctx, entries)
}

func (r *rightsStore) Claim(ctx context.Context, key string, now, until time.Time) (bool, error) {
	if err := may(ctx, store.PrefixClaim, "claims"); err != nil {
		return false, err
	}
	return r.Store.Claim(ctx, key, now, until)
}

func (r *rightsStore) Release(ctx context.Context, key string) error {
	if err := may(ctx, store.PrefixClaim, "claims"); err != nil {
		return err
	}
	return r.Store.Release(ctx, key)
}

func (r *rightsStore) Renew(ctx context.Context, key string, until time.Time) error {
	if err := may(ctx, store.PrefixClaim, "claims"); err != nil {
		return err
	}
	return r.Store.Renew(ctx, key, until)
}

func (r *rightsStore) CreateRequest(ctx context.Context, req regflow.ApprovalRequest) (bool, error) {
	if err := may(ctx, store.PrefixRequest, "approval requests"); err != nil {
		return false, err
	}
	return r.Store.CreateRequest(ctx, req)
}

func (r *rightsStore) UpdateRequest(ctx context.Context, next regflow.ApprovalRequest) error {
	if err := may(ctx, store.PrefixRequest, "approval requests"); err != nil {
		return err
	}
	return r.Store.UpdateRequest(ctx, next)
}

func (r *rightsStore) PutRelease(ctx context.Context, next regflow.Release) error {
	if err := may(ctx, store.PrefixRelease, "release pointers"); err != nil {
		return err
	}
	return r.Store.PutRelease(ctx, next)
}

func (r *rightsStore) PutVerification(ctx context.Context, v regflow.Verification) error {
	if err := may(ctx, store.PrefixVerification, "verification results"); err != nil {
		return err
	}
	return r.Store.PutVerification(ctx, v)
}

func (r *rightsStore) PutScan(ctx context.Context, s regflow.Scan) error {
	if err := may(ctx, store.PrefixScan, "scan results"); err != nil {
		return err
	}
	return r.Store.PutScan(ctx, s)
}

func (r *rightsStore) CreateSweepRun(ctx context.Context, run store.SweepRun) (bool, error) {
	if err := may(ctx, store.PrefixSweep, "sweep runs"); err != nil {
		return false, err
	}
	return r.Store.CreateSweepRun(ctx, run)
}

func (r *rightsStore) SetSweepTotal(ctx context.Context, id string, total int) (store.SweepRun, error) {
	if err := may(ctx, store.PrefixSweep, "sweep runs"); err != nil {
		return store.SweepRun{}, err
	}
	return r.Store.SetSweepTotal(ctx, id, total)
}

func (r *rightsStore) CompleteSweepBatch(ctx context.Context, id, batch string, c store.SweepCounts) (store.SweepRun, bool, error) {
	if err := may(ctx, store.PrefixSweep, "sweep runs"); err != nil {
		return store.SweepRun{}, false, err
	}
	return r.Store.CompleteSweepBatch(ctx, id, batch, c)
}

func (r *rightsStore) PutSweepPart(ctx context.Context, id string, p store.SweepPart) error {
	if err := may(ctx, store.PrefixSweep, "sweep reports"); err != nil {
		return err
	}
	return r.Store.PutSweepPart(ctx, id, p)
}

func (r *rightsStore) PutManifestInfos(ctx context.Context, infos []store.ManifestInfo) error {
	if err := may(ctx, store.PrefixManifest, "manifest facts"); err != nil {
		return err
	}
	return r.Store.PutManifestInfos(ctx, infos)
}

func (r *rightsStore) ContinueSweepBatch(ctx context.Context, id, batch string, c store.SweepCounts) (store.SweepRun, bool, error) {
	if err := may(ctx, store.PrefixSweep, "sweep runs"); err != nil {
		return store.SweepRun{}, false, err
	}
	return r.Store.ContinueSweepBatch(ctx, id, batch, c)
}

func (r *rightsStore) CreateRollback(ctx context.Context, rb regflow.Rollback) (bool, error) {
	if err := may(ctx, store.PrefixRollback, "stored rollbacks"); err != nil {
		return false, err
	}
	return r.Store.CreateRollback(ctx, rb)
}

func (r *rightsStore) UpdateRollback(ctx context.Context, next regflow.Rollback) error {
	if err := may(ctx, store.PrefixRollback, "stored rollbacks"); err != nil {
		return err
	}
	return r.Store.UpdateRollback(ctx, next)
}
