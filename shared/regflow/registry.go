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
