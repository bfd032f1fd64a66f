package localecr

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// SeedImage describes an image record for Seed.
type SeedImage struct {
	// Tags to give the image; a tag already on another image moves (mutability is not checked).
	Tags []string
	// PushedAt is imagePushedAt; zero means the clock's now.
	PushedAt time.Time
	// LastPulledAt is lastRecordedPullTime; zero means never pulled.
	LastPulledAt time.Time
	// SizeBytes is reported as imageSizeInBytes.
	SizeBytes int64
	// Manifest is the stored manifest; nil generates a small unique OCI image
	// manifest whose config blob exists, so the image can be pulled.
	Manifest []byte
	// MediaType of Manifest; empty means its own mediaType field.
	MediaType string
}

// emptyConfig is the config blob of generated seed manifests: the smallest
// valid image config (no layers).
var emptyConfig = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}`)

const seedConfigType = "application/vnd.oci.image.config.v1+json"

// Seed inserts image records into repo (created if missing) directly, without
// HTTP, without events and without checking that layers exist: a fast way to
// build large fixtures (100,000 images) for retention and listing benchmarks.
// It returns the digests in order. Images pushed through the registry API or
// PutImage are the real thing; use Seed only for volume.
func (s *Server) Seed(repo string, images ...SeedImage) ([]string, error) {
	configDigest := sha256Digest(emptyConfig)
	s.blobs.put(configDigest, emptyConfig)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repo]
	if !ok {
		var err *apiError
		if r, err = s.createRepo(createRepoInput{name: repo}); err != nil {
			return nil, fmt.Errorf("seed %s: %w", repo, err)
		}
	}
	s.blobs.link(repo, configDigest)
	digests := make([]string, 0, len(images))
	for i, si := range images {
		body := si.Manifest
		var (
			m            *parsedManifest
			mt, artifact string
		)
		if body == nil {
			// Written by hand rather than parsed back: seeding 100,000 images stays fast.
			body = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[],"annotations":{"dev.regflow.localecr.seed":%q}}`,
				MediaTypeOCIManifest, seedConfigType, configDigest, len(emptyConfig), fmt.Sprintf("%s#%d", repo, s.seq+1))
			mt, artifact, m = MediaTypeOCIManifest, seedConfigType, &parsedManifest{}
		} else {
			var perr error
			if m, mt, perr = parseManifest(body, si.MediaType); perr != nil {
				return nil, fmt.Errorf("seed %s image %d: %w", repo, i, perr)
			}
			artifact = m.artifactMediaType()
		}
		digest := sha256Digest(body)
		img, exists := r.images[digest]
		if !exists {
			s.seq++
			img = &image{
				seq:               s.seq,
				digest:            digest,
				manifest:          body,
				mediaType:         mt,
				artifactMediaType: artifact,
				parents:           map[string]struct{}{},
			}
			if m.Subject != nil {
				img.subject = m.Subject.Digest
			}
			for _, d := range m.Manifests {
				img.children = append(img.children, d.Digest)
				if child, ok := r.images[d.Digest]; ok {
					child.parents[digest] = struct{}{}
				}
			}
			r.images[digest] = img
			r.order = append(r.order, img)
		}
		img.size = si.SizeBytes
		img.pushedAt = si.PushedAt
		if img.pushedAt.IsZero() {
			img.pushedAt = s.clock.Now()
		}
		img.lastPull = si.LastPulledAt
		for _, t := range si.Tags {
			if !validTag(t) {
				return nil, fmt.Errorf("seed %s image %d: invalid tag %q", repo, i, t)
			}
			if holder, ok := r.tags[t]; ok && holder != img {
				holder.tags = slices.DeleteFunc(holder.tags, func(x string) bool { return x == t })
			}
			if !slices.Contains(img.tags, t) {
				img.tags = append(img.tags, t)
			}
			r.tags[t] = img
		}
		sort.Strings(img.tags)
		digests = append(digests, digest)
	}
	return digests, nil
}
