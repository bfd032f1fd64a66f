package store

import (
	"context"
	"time"

	"github.com/regflow/regflow/shared/regflow"
)

// SweepStore keeps retention sweeps: one record per run with counters that the
// workers add to atomically, the parts of each run's report, and a cache of what
// the sweeper read from manifests. It is separate from Store so that functions
// which never sweep need not implement it.
type SweepStore interface {
	// CreateSweepRun stores a new run; it returns false, and changes nothing, if the ID exists.
	CreateSweepRun(ctx context.Context, run SweepRun) (bool, error)
	// GetSweepRun returns a run or ErrNotFound.
	GetSweepRun(ctx context.Context, id string) (SweepRun, error)
	// SetSweepTotal records how many batches the run was split into. Setting the
	// same total again changes nothing; a different one is an error. It returns the
	// run as stored afterwards.
	SetSweepTotal(ctx context.Context, id string, total int) (SweepRun, error)
	// CompleteSweepBatch marks batch done and adds c to the run's counters in one
	// atomic write, once per batch name: for a batch already done it adds nothing
	// and returns counted false. It returns the run as stored afterwards (so the
	// caller that sees Done() == Total is the one that finished the run, give or
	// take a concurrent finisher, which Claim settles). ErrNotFound if no such run.
	CompleteSweepBatch(ctx context.Context, id, batch string, c SweepCounts) (run SweepRun, counted bool, err error)
	// ContinueSweepBatch is CompleteSweepBatch for a batch that stopped before its
	// deadline and handed the rest of its repositories to one new batch: in the same
	// atomic write it also adds one to the run's total, so the run finishes only once
	// the continuation is done too. Once per batch name, like CompleteSweepBatch; an
	// error while the total is still 0 (the planner has not counted its batches).
	ContinueSweepBatch(ctx context.Context, id, batch string, c SweepCounts) (run SweepRun, counted bool, err error)
	// PutSweepPart stores (or replaces) a named part of a run's report; at most
	// MaxSweepPartBytes of data.
	PutSweepPart(ctx context.Context, id string, p SweepPart) error
	// SweepParts returns a run's report parts in name order.
	SweepParts(ctx context.Context, id string) ([]SweepPart, error)

	// AppendAudits writes many audit entries at once, each as AppendAudit would:
	// an entry whose subject, time and ID exist is left as it is.
	AppendAudits(ctx context.Context, entries []regflow.AuditEntry) error

	// ManifestInfos returns the cached manifest facts of those digests that have them.
	ManifestInfos(ctx context.Context, digests []string) (map[string]ManifestInfo, error)
	// PutManifestInfos caches manifest facts; a digest names immutable content, so
	// an entry never changes, only expires.
	PutManifestInfos(ctx context.Context, infos []ManifestInfo) error
}

// MaxSweepPartBytes bounds one report part: DynamoDB items hold at most 400 KB.
const MaxSweepPartBytes = 350_000

// SweepRun is one retention sweep over the estate.
type SweepRun struct {
	ID string `json:"id"`
	// Now is the time the sweep measures ages against.
	Now       time.Time `json:"now"`
	DryRun    bool      `json:"dryRun"`
	StartedAt time.Time `json:"startedAt"`
	// Total is the number of batches; 0 until the planner has sent them all.
	Total int `json:"total"`
	// Batches are the names of the completed batches.
	Batches []string `json:"batches,omitempty"`
	SweepCounts
	// Expires is when the run and its report may be forgotten (DynamoDB TTL).
	Expires time.Time `json:"expires"`
}

// Done is the number of completed batches.
func (r SweepRun) Done() int { return len(r.Batches) }

// Finished says whether every planned batch is done.
func (r SweepRun) Finished() bool { return r.Total > 0 && r.Done() >= r.Total }

// SweepCounts are a run's running totals.
type SweepCounts struct {
	Repositories int `json:"repositories"`
	Images       int `json:"images"`
	Kept         int `json:"kept"`
	// Selected is how many images the policy chose to delete.
	Selected int `json:"selected"`
	// Deleted is how many the sweep removed (always 0 in a dry run).
	Deleted int `json:"deleted"`
	// AlreadyGone were selected but deleted before the sweep got to them.
	AlreadyGone int `json:"alreadyGone"`
	// NotDeleted were selected but ECR refused to delete them.
	NotDeleted int `json:"notDeleted"`
	// FailedRepositories could not be swept at all.
	FailedRepositories int `json:"failedRepositories"`
	// BytesReclaimed sums the sizes of the images removed (an upper bound: layers are shared).
	BytesReclaimed int64 `json:"bytesReclaimed"`
}

// Add returns the sum of two counts.
func (c SweepCounts) Add(o SweepCounts) SweepCounts {
	return SweepCounts{
		Repositories:       c.Repositories + o.Repositories,
		Images:             c.Images + o.Images,
		Kept:               c.Kept + o.Kept,
		Selected:           c.Selected + o.Selected,
		Deleted:            c.Deleted + o.Deleted,
		AlreadyGone:        c.AlreadyGone + o.AlreadyGone,
		NotDeleted:         c.NotDeleted + o.NotDeleted,
		FailedRepositories: c.FailedRepositories + o.FailedRepositories,
		BytesReclaimed:     c.BytesReclaimed + o.BytesReclaimed,
	}
}

// SweepPart is one stored piece of a run's report.
type SweepPart struct {
	Name    string    `json:"name"`
	Data    []byte    `json:"data"`
	Expires time.Time `json:"expires"`
}

// ManifestInfo is what selection reads from a manifest: an index's children, a
// referrer's subject, the media and artifact types.
type ManifestInfo struct {
	Digest       string   `json:"digest"`
	MediaType    string   `json:"mediaType,omitempty"`
	ArtifactType string   `json:"artifactType,omitempty"`
	Index        bool     `json:"index,omitempty"`
	Children     []string `json:"children,omitempty"`
	Subject      string   `json:"subject,omitempty"`
	// Expires bounds how long the entry is kept after its image is gone.
	Expires time.Time `json:"expires"`
}

// Keys of sweep items.
const (
	SKSweepRun = "RUN"
)

// SweepPK is the partition of one sweep run, its batches and report parts.
func SweepPK(id string) string { return PrefixSweep + id }

// SweepPartSK is the sort key of a report part.
func SweepPartSK(name string) string { return "PART#" + name }

// ManifestPK is the partition of one manifest's cached facts.
func ManifestPK(digest string) string { return PrefixManifest + digest }
