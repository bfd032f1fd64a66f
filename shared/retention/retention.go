// Package retention decides which images of a repository the sweeper deletes.
//
// Selection is pure: the caller lists a repository's images (from ECR DescribeImages,
// plus child digests of indexes and the subject of referrers, read from manifests),
// the digests the store protects (release pointers, pending approval requests), the
// policy and the time; Select returns one explained decision per image and the order
// in which BatchDeleteImage may delete them.
//
// The rules, in one place:
//
//   - Protected, always kept: digests that run (Protected.InUse), each environment's current release and the releases
//     before it up to Policy.KeepReleases, digests with a pending approval request,
//     images with a tag matching Policy.ExcludeTags.
//   - Judged on their own: tagged images (IncludeTags, KeepNewest, MaxAge,
//     UnpulledFor) and untagged images that no index lists (UntaggedMaxAge, UnpulledFor).
//   - Followers, never judged by age: untagged children of an index follow their
//     parents; referrers (signatures, SBOMs, attestations: manifests whose subject is
//     in the repository) follow their subject.
//   - Kept closure: a kept index keeps its children (nested indexes too), a kept image
//     keeps its referrers, and a kept referrer keeps its subject, so nothing kept is
//     ever left without what it needs.
//   - Everything outside that closure is deleted: indexes before their children,
//     referrers before their subjects, in batches of at most MaxBatch.
package retention

import (
	"time"

	"github.com/regflow/regflow/shared/regflow"
)

// MaxBatch is the most image ids BatchDeleteImage accepts in one call.
const MaxBatch = regflow.MaxDeleteBatch

// Image is what the sweep knows of one image in a registry (regflow.ImageDetail).
type Image = regflow.ImageDetail

// Protected is what the store says must stay in this repository.
type Protected struct {
	Releases []Release `json:"releases,omitempty"`
	Pending  []Pending `json:"pending,omitempty"`
	// InUse are the digests that run (ECS tasks and services, Lambda functions), with
	// where: never deleted, whatever their age or pointers.
	InUse []InUse `json:"inUse,omitempty"`
}

// InUse names a digest that runs, and where ("ECS service prod/web, 3 tasks").
type InUse struct {
	Digest string `json:"digest"`
	Where  string `json:"where"`
}

// Release is one environment's release pointer for the repository.
type Release struct {
	Env     string `json:"env"`
	Current string `json:"current"`
	// Previous are the earlier release digests, most recent first. Selection protects
	// as many as Policy.KeepReleases allows (counting Current); the caller may pass more.
	Previous []string `json:"previous,omitempty"`
}

// Pending names a digest with a pending approval request into Env.
type Pending struct {
	Env    string `json:"env"`
	Digest string `json:"digest"`
}

// Input is everything Select needs for one repository.
type Input struct {
	Repository string
	Images     []Image
	Protected  Protected
	Policy     Policy
	// Now is the time ages are measured against; --now previews a future sweep.
	Now time.Time
}

// Action is what happens to an image.
type Action string

// Actions.
const (
	Keep   Action = "keep"
	Delete Action = "delete"
)

// Code is the machine-readable reason for a decision.
type Code string

// Reasons for keeping.
const (
	CodeReleaseCurrent  Code = "release-current"  // an environment's current release
	CodeReleasePrevious Code = "release-previous" // an earlier release within KeepReleases
	CodePendingApproval Code = "pending-approval" // a pending approval request names it
	CodeInUse           Code = "in-use"           // it runs (an ECS task or service, a Lambda function)
	CodeExcludedTag     Code = "excluded-tag"     // a tag matches ExcludeTags
	CodeNotIncluded     Code = "not-included"     // IncludeTags is set and no tag matches
	CodeUnknownAge      Code = "unknown-age"      // ECR gave no push time
	CodeNewestTagged    Code = "newest-tagged"    // among the newest KeepNewest tagged images
	CodeYoung           Code = "young"            // tagged, pushed within MaxAge
	CodeUntaggedYoung   Code = "untagged-young"   // untagged, pushed within UntaggedMaxAge
	CodeRecentlyPulled  Code = "recently-pulled"  // expired but pulled within UnpulledFor
	CodeChildOfKept     Code = "child-of-kept"    // listed by a kept index
	CodeReferrerOfKept  Code = "referrer-of-kept" // its subject is kept
	CodeSubjectOfKept   Code = "subject-of-kept"  // a kept referrer needs it
)

// Reasons for deleting.
const (
	CodeExpired           Code = "expired"             // tagged, older than MaxAge (and unpulled, if asked)
	CodeUntaggedExpired   Code = "untagged-expired"    // untagged, older than UntaggedMaxAge (and unpulled)
	CodeChildOfDeleted    Code = "child-of-deleted"    // every index listing it is deleted
	CodeReferrerOfDeleted Code = "referrer-of-deleted" // its subject is deleted
)

// Decision is the verdict on one image.
type Decision struct {
	Repository string   `json:"repository,omitempty"`
	Digest     string   `json:"digest"`
	Tags       []string `json:"tags,omitempty"`
	Action     Action   `json:"action"`
	Code       Code     `json:"code"`
	// Reason is the explanation for people, starting with "kept:" or "delete:".
	Reason string `json:"reason"`
	// Related is the digest the reason names (the kept index, the deleted subject...).
	Related   string    `json:"related,omitempty"`
	PushedAt  time.Time `json:"pushedAt,omitzero"`
	SizeBytes int64     `json:"sizeBytes"`
	// Batch is the 1-based deletion batch of a deleted image (0 for kept images).
	Batch int `json:"batch,omitempty"`
}

// Result is the selection for one repository.
type Result struct {
	Repository string    `json:"repository"`
	Now        time.Time `json:"now"`
	Policy     Policy    `json:"policy"`
	// Decisions has one entry per input image, sorted by digest.
	Decisions []Decision `json:"decisions"`
	// Batches are the digests to pass to BatchDeleteImage, one call per batch, in order.
	// Each holds at most MaxBatch digests, and an image's index parents and referrers
	// that are deleted too are always in an earlier batch, so no call deletes a manifest
	// that a not-yet-deleted index still lists (ImageReferencedByManifestList).
	Batches [][]string `json:"batches"`
	Kept    int        `json:"kept"`
	Deleted int        `json:"deleted"`
	// BytesReclaimedUpperBound sums imageSizeInBytes of the deleted images. Layers shared
	// with kept images (or between deleted ones) are stored once, so storage actually
	// freed is at most this.
	BytesReclaimedUpperBound int64 `json:"bytesReclaimedUpperBound"`
}
