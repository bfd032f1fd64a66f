// Package sweep is the retention sweep use case: for each repository of each
// environment's registry it lists the images, reads the manifests selection needs,
// asks shared/retention what goes, deletes in batches of at most 100 (manifest
// lists and referrers before what they point at), writes an audit entry for every
// deletion and reports every decision.
//
// Three ways to run the same code:
//
//   - Sweeper.Estate sweeps everything inline with bounded concurrency (the CLI,
//     small estates);
//   - Planner lists repositories and sends them in batches to a Queue; Worker
//     sweeps one batch per message, adds its counts to the run atomically
//     (store.SweepStore) and the worker that completes the last batch stores the
//     merged report and posts the summary;
//   - InlineQueue hands the planner's batches straight to a Worker, so a
//     deployment without a queue runs the fan-out path in one process.
//
// A dry run is a flag on the same path: the report is the same, nothing is
// deleted and nothing is audited.
package sweep

import (
	"context"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/retention"
	"github.com/regflow/regflow/shared/store"
)

// Registry is one registry (an account's ECR in one region) as the sweep uses it.
type Registry interface {
	// Repositories lists every repository name.
	Repositories(ctx context.Context) ([]string, error)
	// ListImages describes every image of a repository, without manifest content.
	ListImages(ctx context.Context, repo string) ([]retention.Image, error)
	// Manifests returns stored manifests by digest; digests gone from the
	// repository are absent from the result.
	Manifests(ctx context.Context, repo string, digests []string) (map[string][]byte, error)
	// DeleteImages deletes at most retention.MaxBatch images by digest in one call.
	DeleteImages(ctx context.Context, repo string, digests []string) (Deletion, error)
}

// Deletion sorts the digests of one delete call by outcome.
type Deletion struct {
	Deleted  []string
	NotFound []string
	// DeletedOnRetry are in Deleted too: the call's retry found them gone after an
	// attempt whose answer was lost.
	DeletedOnRetry []string
	// Referenced are still listed by manifest lists (Parents, as the registry named them).
	Referenced []Referenced
	Failed     []Failure
}

// Referenced is an image a manifest list still lists.
type Referenced struct {
	Digest  string
	Parents []string
	Reason  string
}

// Failure is any other per-image failure.
type Failure struct {
	Digest string
	Code   string
	Reason string
}

// Protection is where release pointers and approval requests come from (store.Store).
type Protection interface {
	Releases(ctx context.Context) ([]regflow.Release, error)
	// GetRelease reads one pointer (store.ErrNotFound if none), consistently.
	GetRelease(ctx context.Context, env, repo string) (regflow.Release, error)
	Requests(ctx context.Context, status string) ([]regflow.ApprovalRequest, error)
}

// Auditor records deletions.
type Auditor interface {
	AppendAudits(ctx context.Context, entries []regflow.AuditEntry) error
}

// ManifestCache remembers what manifests said, so each is fetched once: fetching a
// manifest (BatchGetImage) counts as a pull in ECR and would otherwise make every
// image look pulled on the day of every sweep.
type ManifestCache interface {
	ManifestInfos(ctx context.Context, digests []string) (map[string]store.ManifestInfo, error)
	PutManifestInfos(ctx context.Context, infos []store.ManifestInfo) error
}

// RunStore keeps runs, their counters and report parts, and settles who finishes a run.
type RunStore interface {
	store.SweepStore
	// store.Store's claims: one claim per run makes one finisher.
	store.Claimer
}

// Queue delivers batches to workers.
type Queue interface {
	Send(ctx context.Context, msgs []Message) error
}
