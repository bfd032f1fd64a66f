package regflow

import (
	"errors"
	"slices"
	"strings"
	"time"
)

// Registry errors that use cases act on.
var (
	ErrRepositoryNotFound = errors.New("repository not found")
	ErrImageNotFound      = errors.New("image not found")
	// ErrTagMoved means a tag no longer names the digest an event was about.
	ErrTagMoved = errors.New("tag now names another digest")
)

// RegistryImage is an image as the registry describes it.
type RegistryImage struct {
	Digest            string
	Tags              []string
	PushedAt          time.Time
	LastPulledAt      time.Time
	ManifestMediaType string
	ArtifactMediaType string
	SizeBytes         int64
}

// Tag mutability settings, as ECR names them.
const (
	Mutable                = "MUTABLE"
	Immutable              = "IMMUTABLE"
	ImmutableWithExclusion = "IMMUTABLE_WITH_EXCLUSION"
	MutableWithExclusion   = "MUTABLE_WITH_EXCLUSION"
)

// TagMutability is a repository's tag mutability setting.
type TagMutability struct {
	Mode string
	// Exclusions are the wildcard filters of the *_WITH_EXCLUSION modes.
	Exclusions []string
}

// WantImmutable returns the setting that makes tags immutable except those matching mutableTags.
func WantImmutable(mutableTags []string) TagMutability {
	if len(mutableTags) == 0 {
		return TagMutability{Mode: Immutable}
	}
	ex := slices.Clone(mutableTags)
	slices.Sort(ex)
	return TagMutability{Mode: ImmutableWithExclusion, Exclusions: ex}
}

// Equal compares settings, ignoring the order of exclusions.
func (m TagMutability) Equal(o TagMutability) bool {
	a, b := slices.Clone(m.Exclusions), slices.Clone(o.Exclusions)
	slices.Sort(a)
	slices.Sort(b)
	return m.Mode == o.Mode && slices.Equal(a, b)
}

// Finding is one vulnerability a scan reported.
type Finding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Package  string `json:"package,omitempty"`
	URI      string `json:"uri,omitempty"`
}

// Scan is a completed scan of a digest, as recorded on the image.
type Scan struct {
	Env        string         `json:"env"`
	Repository string         `json:"repository"`
	Digest     string         `json:"digest"`
	Enhanced   bool           `json:"enhanced"`
	Status     string         `json:"status"`
	Counts     map[string]int `json:"counts"`
	At         time.Time      `json:"at"`
}

// CommitFromTags returns the first tag that is a full lowercase git commit SHA, or "".
func CommitFromTags(tags []string) string {
	for _, t := range tags {
		if len(t) == 40 && strings.Trim(t, "0123456789abcdef") == "" {
			return t
		}
	}
	return ""
}

// Index is a tagged image index (or Docker manifest list) and the platform images it lists.
type Index struct {
	Digest   string
	Tags     []string
	PushedAt time.Time
	// Platforms are the children ECR scans: platform images, not attestation manifests.
	Platforms []string
}

// RepositorySettings are what a promotion target repository must have.
type RepositorySettings struct {
	Mutability TagMutability
	// KMSKey encrypts the repository with a customer key; empty means AES256.
	KMSKey string
	// PushRole, when set, is the only principal the repository policy lets push (the
	// environment's promotion role): nothing reaches a later environment but by promotion.
	PushRole string
}

// MaxDeleteBatch is the most image ids ECR's BatchDeleteImage accepts in one call.
const MaxDeleteBatch = 100

// ImageDetail is one manifest of a repository as the sweeper found it.
type ImageDetail struct {
	Digest string   `json:"digest"`
	Tags   []string `json:"tags,omitempty"`
	// PushedAt is ECR's imagePushedAt. A zero time keeps the image ("push time unknown").
	PushedAt time.Time `json:"pushedAt"`
	// LastPulledAt is ECR's lastRecordedPullTime; zero means never recorded.
	LastPulledAt time.Time `json:"lastPulledAt,omitzero"`
	// MediaType is ECR's imageManifestMediaType.
	MediaType string `json:"mediaType,omitempty"`
	// ArtifactType is ECR's artifactMediaType (the config media type, or the OCI artifactType).
	ArtifactType string `json:"artifactType,omitempty"`
	SizeBytes    int64  `json:"sizeBytes"`
	// Children are the manifest digests an index lists. For an index (OCI image index
	// or Docker manifest list media type) nil means "not fetched" and is refused,
	// because selection could then sweep children of a kept index; an empty non-nil
	// slice is an empty index.
	Children []string `json:"children"`
	// Subject is the digest in the manifest's subject field (OCI referrers). When empty,
	// a cosign-style tag "sha256-<hex>.sig|.att|.sbom" names the subject instead.
	Subject string `json:"subject,omitempty"`
}
