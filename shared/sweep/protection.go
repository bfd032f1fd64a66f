package sweep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/retention"
	"github.com/regflow/regflow/shared/store"
)

// Protections is what the store protects, by repository name. Digests name content,
// and the promoter copies by digest, so a repository's protections hold in every
// registry: an image kept for prod is kept in dev and staging too.
type Protections map[string]retention.Protected

// protectedStatuses are the approval request states whose digest may need to stay
// (regflow.ApprovalRequest.Protects says until when): pending, waiting, approved, and
// failed for its grace.
var protectedStatuses = regflow.ProtectingStatuses()

// protects says whether a request keeps its digest at now.
func protects(r regflow.ApprovalRequest, now time.Time) bool { return r.Protects(now) }

// LoadProtections reads every release pointer and open approval request once.
func LoadProtections(ctx context.Context, p Protection, now time.Time) (Protections, error) {
	out := Protections{}
	rels, err := p.Releases(ctx)
	if err != nil {
		return nil, fmt.Errorf("read release pointers (the sweep deletes nothing without them): %w", err)
	}
	for _, r := range rels {
		pr := out[r.Repository]
		pr.Releases = append(pr.Releases, retention.Release{Env: r.Env, Current: r.Digest, Previous: r.Previous})
		out[r.Repository] = pr
	}
	for _, status := range protectedStatuses {
		reqs, err := p.Requests(ctx, status)
		if err != nil {
			return nil, fmt.Errorf("read %s approval requests (the sweep deletes nothing without them): %w", status, err)
		}
		for _, r := range reqs {
			if !protects(r, now) {
				continue
			}
			pr := out[r.Repository]
			pr.Pending = append(pr.Pending, retention.Pending{Env: r.Env, Digest: r.Digest})
			out[r.Repository] = pr
		}
	}
	return out, nil
}

// RepositoryProtections reads again what protects repo now: each environment's
// release pointer (a consistent read per environment) and the open requests. The
// sweep calls it right before each delete call, so a rollback or a request made
// since the selection keeps its image.
func RepositoryProtections(ctx context.Context, p Protection, envs []string, repo string, now time.Time) (retention.Protected, error) {
	var out retention.Protected
	for _, env := range envs {
		r, err := p.GetRelease(ctx, env, repo)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("re-read %s's release pointer of %s before deleting: %w", env, repo, err)
		}
		out.Releases = append(out.Releases, retention.Release{Env: r.Env, Current: r.Digest, Previous: r.Previous})
	}
	for _, status := range protectedStatuses {
		reqs, err := p.Requests(ctx, status)
		if err != nil {
			return out, fmt.Errorf("re-read %s approval requests before deleting from %s: %w", status, repo, err)
		}
		for _, r := range reqs {
			if r.Repository == repo && protects(r, now) {
				out.Pending = append(out.Pending, retention.Pending{Env: r.Env, Digest: r.Digest})
			}
		}
	}
	return out, nil
}

// sameProtection compares two protections regardless of order.
func sameProtection(a, b retention.Protected) bool {
	norm := func(p retention.Protected) retention.Protected {
		p.Releases, p.Pending = slices.Clone(p.Releases), slices.Clone(p.Pending)
		slices.SortFunc(p.Releases, func(x, y retention.Release) int { return strings.Compare(x.Env, y.Env) })
		slices.SortFunc(p.Pending, func(x, y retention.Pending) int {
			return cmp.Or(strings.Compare(x.Env, y.Env), strings.Compare(x.Digest, y.Digest))
		})
		return p
	}
	a, b = norm(a), norm(b)
	return slices.EqualFunc(a.Releases, b.Releases, func(x, y retention.Release) bool {
		return x.Env == y.Env && x.Current == y.Current && slices.Equal(x.Previous, y.Previous)
	}) && slices.Equal(a.Pending, b.Pending)
}
