package ocicopy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// CosignTag is the tag cosign's tag schema uses for an attachment of subject ("sig", "att", "sbom").
func CosignTag(subject v1.Hash, suffix string) string {
	return fmt.Sprintf("%s-%s.%s", subject.Algorithm, subject.Hex, suffix)
}

type referrer struct {
	desc v1.Descriptor
	raw  []byte // set for cosign tags, which we had to GET to resolve
	tag  string // cosign tag, "" for an OCI 1.1 referrer
}

// discoverReferrers finds the referrers of d (at depth) and copies each new one.
func (c *copier) discoverReferrers(ctx context.Context, d v1.Hash, depth int) error {
	var found []referrer
	err := c.small(ctx, func() error {
		var err error
		found, err = c.referrersOf(ctx, d)
		return err
	})
	if err != nil {
		return err
	}
	for _, r := range found {
		c.refMu.Lock()
		newRef := !c.seenRefs[r.desc.Digest]
		c.seenRefs[r.desc.Digest] = true
		newTag := r.tag != "" && !c.seenTags[r.tag]
		if newTag {
			c.seenTags[r.tag] = true
		}
		c.refMu.Unlock()
		if newRef {
			c.referrers.Add(1)
		}
		if !newRef && !newTag {
			continue
		}
		c.tasks.Go(func() error {
			if err := c.copyManifest(ctx, r.desc, r.raw, depth); err != nil {
				return fmt.Errorf("referrer %s of %s: %w", r.desc.Digest, d, err)
			}
			if newRef {
				if _, ok := c.pushed.Load(r.desc.Digest.String()); ok {
					c.referrersCopied.Add(1)
				}
			}
			if r.tag == "" {
				return nil
			}
			return c.putTag(ctx, c.dst.Tag(r.tag), r.desc, r.raw, false)
		})
	}
	return nil
}

// referrersOf lists the source's referrers of d: the OCI 1.1 referrers API, or the sha256-<hex>
// tag index that stands in for it on registries without the API, and cosign's tags. The
// source's tag list (one request, when it fits in one page) says which tags exist, so a
// manifest without attachments costs one request instead of five.
func (c *copier) referrersOf(ctx context.Context, d v1.Hash) ([]referrer, error) {
	var out []referrer
	if c.refAPI.Load() != apiMissing {
		im, ok, err := c.referrersAPI(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("list referrers of %s@%s: %w", c.src, d, err)
		}
		if ok {
			c.refAPI.Store(apiPresent)
			for _, m := range im.Manifests {
				out = append(out, referrer{desc: m})
			}
		} else {
			c.refAPI.Store(apiMissing)
		}
	}
	if c.refAPI.Load() == apiMissing {
		tag := c.src.Tag(fmt.Sprintf("%s-%s", d.Algorithm, d.Hex))
		if c.sourceMayHaveTag(ctx, tag.TagStr()) {
			got, err := c.srcPull.Get(ctx, tag)
			switch {
			case isNotFound(err):
			case err != nil:
				return nil, fmt.Errorf("read referrers tag %s: %w", tag, err)
			default:
				im, err := v1.ParseIndexManifest(bytes.NewReader(got.Manifest))
				if err != nil {
					return nil, fmt.Errorf("referrers tag %s is not an index: %w", tag, err)
				}
				for _, m := range im.Manifests {
					out = append(out, referrer{desc: m})
				}
			}
		}
	}
	for _, suffix := range [...]string{"sig", "att", "sbom"} { // cosign's tag schema
		tag := c.src.Tag(CosignTag(d, suffix))
		if !c.sourceMayHaveTag(ctx, tag.TagStr()) {
			continue
		}
		got, err := c.srcPull.Get(ctx, tag)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read cosign tag %s: %w", tag, err)
		}
		out = append(out, referrer{desc: got.Descriptor, raw: got.Manifest, tag: tag.TagStr()})
	}
	return out, nil
}

// Whether the source registry has the referrers API, learnt from the first answer.
const (
	apiUnknown int32 = iota
	apiPresent
	apiMissing
)

// referrersAPI asks GET /v2/<repo>/referrers/<digest>; ok is false when the registry lacks the API
// (registries that have it answer 200 with an index, even an empty one).
func (c *copier) referrersAPI(ctx context.Context, d v1.Hash) (*v1.IndexManifest, bool, error) {
	u := url.URL{Scheme: c.src.Scheme(), Host: c.src.RegistryStr(), Path: fmt.Sprintf("/v2/%s/referrers/%s", c.src.RepositoryStr(), d)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := c.srcBlobs.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode == http.StatusOK && types.MediaType(mt) == types.OCIImageIndex:
		im, err := v1.ParseIndexManifest(io.LimitReader(resp.Body, maxManifest))
		if err != nil {
			return nil, false, fmt.Errorf("referrers answer is not an index: %w", err)
		}
		return im, true, nil
	case resp.StatusCode == http.StatusOK, resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusBadRequest,
		resp.StatusCode == http.StatusMethodNotAllowed, resp.StatusCode == http.StatusNotAcceptable:
		return nil, false, nil
	}
	return nil, false, transport.CheckError(resp, http.StatusOK)
}

// maxManifest bounds what we read of a manifest or index answer (ECR's limit is 4 MiB).
const maxManifest = 4 << 20

// sourceMayHaveTag answers from the source's tag list when it came in one page, else says yes.
func (c *copier) sourceMayHaveTag(ctx context.Context, tag string) bool {
	c.srcTags.once.Do(func() { c.srcTags.tags, c.srcTags.complete = c.listSourceTags(ctx) })
	return !c.srcTags.complete || c.srcTags.tags[tag]
}

type tagList struct {
	once     sync.Once
	tags     map[string]bool
	complete bool
}

// listSourceTags reads one page of GET /v2/<repo>/tags/list; complete is false when the list
// did not fit (a Link to a next page) or could not be read (e.g. no permission to list).
func (c *copier) listSourceTags(ctx context.Context) (map[string]bool, bool) {
	u := url.URL{Scheme: c.src.Scheme(), Host: c.src.RegistryStr(), Path: fmt.Sprintf("/v2/%s/tags/list", c.src.RepositoryStr()), RawQuery: "n=1000"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, false
	}
	resp, err := c.srcBlobs.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		return nil, false
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&list); err != nil {
		return nil, false
	}
	tags := make(map[string]bool, len(list.Tags))
	for _, t := range list.Tags {
		tags[t] = true
	}
	return tags, true
}
