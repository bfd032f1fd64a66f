package localecr

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Tag mutability settings, as ECR names them.
const (
	Mutable                = "MUTABLE"
	Immutable              = "IMMUTABLE"
	MutableWithExclusion   = "MUTABLE_WITH_EXCLUSION"
	ImmutableWithExclusion = "IMMUTABLE_WITH_EXCLUSION"
)

// ExclusionFilter is one imageTagMutabilityExclusionFilters entry: tags that
// match Filter (where * matches any run of characters) get the opposite of the
// repository's base mutability.
type ExclusionFilter struct {
	FilterType string `json:"filterType"`
	Filter     string `json:"filter"`
}

var (
	repoNameRE   = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	tagRE        = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	filterRE     = regexp.MustCompile(`^[0-9a-zA-Z._*-]{1,128}$`)
	mutabilities = []string{Mutable, Immutable, MutableWithExclusion, ImmutableWithExclusion}
)

func validRepoName(n string) bool { return len(n) >= 2 && len(n) <= 256 && repoNameRE.MatchString(n) }

// validTag accepts what both ECR (1-300 characters) and the OCI distribution
// spec (the tag grammar) accept.
func validTag(t string) bool { return tagRE.MatchString(t) }

type repository struct {
	name        string
	createdAt   time.Time
	mutability  string
	exclusions  []ExclusionFilter
	scanOnPush  bool
	encryption  string
	kmsKey      string
	images      map[string]*image // by digest
	order       []*image          // ascending seq: the stable order pages follow
	tags        map[string]*image
	resourceTag []resourceTag
	// policy is the repository policy text ("" when none was set).
	policy string
}

type resourceTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type image struct {
	seq               uint64
	digest            string
	manifest          []byte
	mediaType         string
	artifactMediaType string
	subject           string
	size              int64
	children          []string            // manifests an index references
	parents           map[string]struct{} // indexes in the same repository that reference this one
	tags              []string            // sorted
	pushedAt          time.Time
	lastPull          time.Time
	scan              *ScanResult
}

type imageID struct {
	Digest string `json:"imageDigest,omitempty"`
	Tag    string `json:"imageTag,omitempty"`
}

// tagImmutable applies the repository's mutability and exclusion filters to one tag.
func (r *repository) tagImmutable(tag string) bool {
	switch r.mutability {
	case Immutable:
		return true
	case ImmutableWithExclusion:
		return !matchesAny(r.exclusions, tag)
	case MutableWithExclusion:
		return matchesAny(r.exclusions, tag)
	default:
		return false
	}
}

func matchesAny(filters []ExclusionFilter, tag string) bool {
	for _, f := range filters {
		if wildcardMatch(f.Filter, tag) {
			return true
		}
	}
	return false
}

// wildcardMatch matches s against pattern where * is any run of characters and
// everything else is literal. path.Match would do, but it treats [ ] ? \ as
// special and the filter grammar excludes them anyway.
func wildcardMatch(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}

// validateMutability checks a mutability setting and its filters the way ECR does.
func validateMutability(mutability string, filters []ExclusionFilter, filtersSet bool) *apiError {
	if mutability == "" {
		mutability = Mutable
	}
	if !slices.Contains(mutabilities, mutability) {
		return invalidParameter("Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [IMMUTABLE, MUTABLE, MUTABLE_WITH_EXCLUSION, IMMUTABLE_WITH_EXCLUSION]'")
	}
	withExclusion := mutability == MutableWithExclusion || mutability == ImmutableWithExclusion
	if filtersSet && (len(filters) < 1 || len(filters) > 5) {
		return invalidParameter("Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'Member must have length between 1 and 5'")
	}
	// ECR's published wording (aws/aws-cdk#35246, a CloudFormation deployment against ECR).
	if withExclusion && !filtersSet {
		return invalidParameter("Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'ImageTagMutabilityExclusionFilters can't be null when imageTagMutability is set as %s'", mutability)
	}
	// No published ECR message was found for filters on MUTABLE or IMMUTABLE (moto reuses the
	// "can't be null" text, which says the opposite of the rule); this one states the rule in
	// ECR's constraint style.
	if !withExclusion && filtersSet {
		return invalidParameter("Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'ImageTagMutabilityExclusionFilters must be null when imageTagMutability is set as %s'", mutability)
	}
	for _, f := range filters {
		if f.FilterType != "WILDCARD" {
			return invalidParameter("Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: Invalid value for 'filterType' in mutability exclusion filter: %s", f.FilterType)
		}
		if !filterRE.MatchString(f.Filter) {
			return invalidParameter("Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'filter must match ^[0-9a-zA-Z._*-]{1,128}$'")
		}
	}
	return nil
}

// repo returns the named repository or ECR's RepositoryNotFoundException. Callers hold s.mu.
func (s *Server) repo(name string) (*repository, *apiError) {
	r, ok := s.repos[name]
	if !ok {
		return nil, s.repoNotFound(name)
	}
	return r, nil
}

type createRepoInput struct {
	name          string
	mutability    string
	exclusions    []ExclusionFilter
	exclusionsSet bool
	scanOnPush    bool
	encryption    string
	kmsKey        string
	tags          []resourceTag
}

// createRepo adds a repository. Callers hold s.mu for writing.
func (s *Server) createRepo(in createRepoInput) (*repository, *apiError) {
	if !validRepoName(in.name) {
		return nil, invalidParameter("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '%s''", repoNameRE.String())
	}
	if _, ok := s.repos[in.name]; ok {
		return nil, newAPIError("RepositoryAlreadyExistsException",
			"The repository with name '%s' already exists in the registry with id '%s'", in.name, s.account)
	}
	if err := validateMutability(in.mutability, in.exclusions, in.exclusionsSet); err != nil {
		return nil, err
	}
	if in.mutability == "" {
		in.mutability = Mutable
	}
	if in.encryption == "" {
		in.encryption = "AES256"
	}
	r := &repository{
		name:        in.name,
		createdAt:   s.clock.Now(),
		mutability:  in.mutability,
		exclusions:  in.exclusions,
		scanOnPush:  in.scanOnPush,
		encryption:  in.encryption,
		kmsKey:      in.kmsKey,
		images:      map[string]*image{},
		tags:        map[string]*image{},
		resourceTag: in.tags,
	}
	s.repos[in.name] = r
	return r, nil
}

// putManifestInput is one manifest write, from the registry API (PUT
// /v2/<name>/manifests/<ref>) or from PutImage.
type putManifestInput struct {
	repo      string
	tag       string // "" for a push by digest
	digest    string // expected digest, "" if not given
	body      []byte
	mediaType string // declared media type, "" to use the manifest's own
	putImage  bool   // PutImage semantics: an unchanged re-push is ImageAlreadyExistsException
}

// putManifest stores a manifest with ECR's rules and queues the PUSH event.
func (s *Server) putManifest(in putManifestInput) (*image, *apiError) {
	m, mt, perr := parseManifest(in.body, in.mediaType)
	if perr != nil {
		if perr == errInvalidManifestJSON {
			return nil, invalidParameter("Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'")
		}
		if perr == errUnsupportedMediaType {
			return nil, newAPIError("UnsupportedImageTypeException", "The image media type %q is not supported", mt)
		}
		return nil, invalidParameter("Invalid parameter at 'ImageManifest' failed to satisfy constraint: '%s'", perr.Error())
	}
	digest := sha256Digest(in.body)
	if in.digest != "" && in.digest != digest {
		return nil, newAPIError("ImageDigestDoesNotMatchException",
			"Invalid parameter at 'imageDigest' failed to satisfy constraint: 'The provided digest %s does not match the digest %s calculated for the manifest'", in.digest, digest)
	}
	if in.tag != "" && !validTag(in.tag) {
		return nil, invalidParameter("Invalid parameter at 'imageTag' failed to satisfy constraint: 'must satisfy regular expression '%s''", tagRE.String())
	}

	// Blobs are checked before taking the index lock: the blob store has its own.
	var missing []string
	if isManifestType(mt) {
		refs := append([]descriptor{*m.Config}, m.Layers...)
		for _, d := range refs {
			if len(d.URLs) > 0 { // foreign layers live elsewhere
				continue
			}
			if !s.blobs.inRepo(in.repo, d.Digest) {
				missing = append(missing, d.Digest)
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[in.repo]
	if !ok {
		if !s.opts.AutoCreateRepos || in.putImage {
			return nil, s.repoNotFound(in.repo)
		}
		var err *apiError
		if r, err = s.createRepo(createRepoInput{name: in.repo}); err != nil {
			return nil, err
		}
	}
	if len(missing) > 0 {
		return nil, newAPIError("LayersNotFoundException",
			"Layers with digests '%s' required for pushing image into repository with name '%s' in the registry with id '%s' do not exist",
			strings.Join(missing, ", "), in.repo, s.account)
	}
	var size int64
	if isIndexType(mt) {
		for _, d := range m.Manifests {
			child, ok := r.images[d.Digest]
			if !ok {
				return nil, newAPIError("ReferencedImagesNotFoundException",
					"The manifest list references image %s, which does not exist in the repository with name '%s' in the registry with id '%s'",
					d.Digest, in.repo, s.account)
			}
			size = max(size, child.size)
		}
	} else {
		for _, l := range m.Layers {
			size += l.Size
		}
	}

	existing := r.images[digest]
	if in.tag != "" {
		if holder, ok := r.tags[in.tag]; ok {
			if holder.digest == digest {
				if in.putImage {
					return nil, newAPIError("ImageAlreadyExistsException",
						"Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'",
						digest, in.tag, in.repo, s.account)
				}
				s.emitImageAction(actionPush, r.name, digest, in.tag)
				return holder, nil
			}
			if r.tagImmutable(in.tag) {
				return nil, newAPIError("ImageTagAlreadyExistsException",
					"The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the tag is immutable.",
					in.tag, in.repo)
			}
		}
	} else if existing != nil && in.putImage {
		return nil, newAPIError("ImageAlreadyExistsException",
			"Image with digest '%s' already exists in the repository with name '%s' in registry with id '%s'", digest, in.repo, s.account)
	}

	img := existing
	if img == nil {
		s.seq++
		img = &image{
			seq:               s.seq,
			digest:            digest,
			manifest:          in.body,
			mediaType:         mt,
			artifactMediaType: m.artifactMediaType(),
			size:              size,
			parents:           map[string]struct{}{},
			pushedAt:          s.clock.Now(),
		}
		if m.Subject != nil {
			img.subject = m.Subject.Digest
		}
		for _, d := range m.Manifests {
			img.children = append(img.children, d.Digest)
			r.images[d.Digest].parents[digest] = struct{}{}
		}
		r.images[digest] = img
		r.order = append(r.order, img)
	}
	if in.tag != "" {
		if holder, ok := r.tags[in.tag]; ok {
			holder.tags = slices.DeleteFunc(holder.tags, func(t string) bool { return t == in.tag })
		}
		r.tags[in.tag] = img
		img.tags = append(img.tags, in.tag)
		sort.Strings(img.tags)
	}
	s.emitImageAction(actionPush, r.name, digest, in.tag)
	if existing == nil && r.scanOnPush && s.opts.Scanner != nil && scannable(img) {
		s.queueScan(r.name, img)
	}
	return img, nil
}

// lookup resolves an image id (digest, tag or both) in r.
func (r *repository) lookup(id imageID) *image {
	if id.Tag != "" {
		img, ok := r.tags[id.Tag]
		if !ok || (id.Digest != "" && img.digest != id.Digest) {
			return nil
		}
		return img
	}
	return r.images[id.Digest]
}

// imageFailure is one per-item failure of a batch operation.
type imageFailure struct {
	ImageID       imageID `json:"imageId"`
	FailureCode   string  `json:"failureCode"`
	FailureReason string  `json:"failureReason"`
}

// deleteImages applies BatchDeleteImage's rules to ids in order. Callers hold s.mu for writing.
func (s *Server) deleteImages(r *repository, ids []imageID) (deleted []imageID, failures []imageFailure) {
	deleted, failures = []imageID{}, []imageFailure{}
	for _, id := range ids {
		switch {
		case id.Digest == "" && id.Tag == "":
			failures = append(failures, imageFailure{id, "MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null"})
			continue
		case id.Digest != "" && !validDigest(id.Digest):
			failures = append(failures, imageFailure{id, "InvalidImageDigest", "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"})
			continue
		case id.Tag != "" && len(id.Tag) > 300:
			failures = append(failures, imageFailure{id, "InvalidImageTag", "Invalid request parameters: image tag must be between 1 and 300 characters"})
			continue
		}
		if id.Tag != "" && id.Digest != "" {
			if img, ok := r.tags[id.Tag]; ok && img.digest != id.Digest {
				failures = append(failures, imageFailure{id, "ImageTagDoesNotMatchDigest", "Invalid request parameters: image tag does not match digest"})
				continue
			}
		}
		img := r.lookup(id)
		if img == nil {
			failures = append(failures, imageFailure{id, "ImageNotFound", "Requested image not found"})
			continue
		}
		if id.Tag != "" && len(img.tags) > 1 {
			s.untag(r, img, id.Tag)
			deleted = append(deleted, imageID{Digest: img.digest, Tag: id.Tag})
			continue
		}
		if len(img.parents) > 0 {
			failures = append(failures, imageFailure{id, "ImageReferencedByManifestList",
				fmt.Sprintf("Requested image referenced by manifest list: [%s]", strings.Join(sortedKeys(img.parents), ", "))})
			continue
		}
		deleted = append(deleted, s.removeImage(r, img)...)
	}
	return deleted, failures
}

func (s *Server) untag(r *repository, img *image, tag string) {
	img.tags = slices.DeleteFunc(img.tags, func(t string) bool { return t == tag })
	delete(r.tags, tag)
	s.emitImageAction(actionDelete, r.name, img.digest, tag)
}

// removeImage deletes img and all its tags from r and returns one id per
// removed tag (or the bare digest when it had none), as BatchDeleteImage reports.
func (s *Server) removeImage(r *repository, img *image) []imageID {
	var out []imageID
	for _, t := range img.tags {
		delete(r.tags, t)
		out = append(out, imageID{Digest: img.digest, Tag: t})
		s.emitImageAction(actionDelete, r.name, img.digest, t)
	}
	if len(img.tags) == 0 {
		out = append(out, imageID{Digest: img.digest})
		s.emitImageAction(actionDelete, r.name, img.digest, "")
	}
	for _, c := range img.children {
		if child, ok := r.images[c]; ok {
			delete(child.parents, img.digest)
		}
	}
	delete(r.images, img.digest)
	if i, ok := slices.BinarySearchFunc(r.order, img.seq, func(e *image, seq uint64) int { return cmpUint(e.seq, seq) }); ok {
		r.order = slices.Delete(r.order, i, i+1)
	}
	return out
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// after returns the index in r.order of the first image with seq > seq.
func (r *repository) after(seq uint64) int {
	i, found := slices.BinarySearchFunc(r.order, seq, func(e *image, seq uint64) int { return cmpUint(e.seq, seq) })
	if found {
		i++
	}
	return i
}

// scannable is true for container images, which ECR scans on push; indexes (their platform
// images are scanned instead), signatures, SBOMs and other artifacts are not scanned.
func scannable(img *image) bool {
	if len(img.children) > 0 || img.subject != "" {
		return false
	}
	switch img.artifactMediaType {
	case "", "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json":
		return true
	}
	return false
}
