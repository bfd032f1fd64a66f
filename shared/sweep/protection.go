package sweep

import (
	"context"
	"fmt"
	"time"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/retention"
)

// Protections is what the store protects, by repository name. Digests name content,
// and the promoter copies by digest, so a repository's protections hold in every
// registry: an image kept for prod is kept in dev and staging too.
type Protections map[string]retention.Protected

// protectedStatuses are the approval request states whose digest must stay:
// pending (awaiting approvers), waiting (awaiting verification in the previous
// environment) and approved (about to be copied from the previous environment).
var protectedStatuses = []string{regflow.StatusPending, regflow.StatusWaiting, regflow.StatusApproved}

// LoadProtections reads every release pointer and open approval request once. A pending
// request past its expiry can no longer be approved, so it protects nothing at now.
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
			if r.Status == regflow.StatusPending && !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
				continue
			}
			pr := out[r.Repository]
			pr.Pending = append(pr.Pending, retention.Pending{Env: r.Env, Digest: r.Digest})
			out[r.Repository] = pr
		}
	}
	return out, nil
}
