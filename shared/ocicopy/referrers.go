package ocicopy

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// cosignSuffixes are the tag-schema attachments cosign writes as <alg>-<hex>.<suffix>.
var cosignSuffixes = []string{"sig", "att", "sbom"}

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

// referrersOf lists the source's referrers of d: the OCI 1.1 referrers API (go-containerregistry
// falls back to the sha256-<hex> tag index when the registry lacks the API) and cosign's tags.
func (c *copier) referrersOf(ctx context.Context, d v1.Hash) ([]referrer, error) {
	subject := c.src.Digest(d.String())
	idx, err := remote.Referrers(subject, remote.Reuse(c.srcPull), remote.WithContext(ctx))
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("list referrers of %s: %w", subject, err)
	}
	var out []referrer
	if err == nil {
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("list referrers of %s: %w", subject, err)
		}
		for _, m := range im.Manifests {
			out = append(out, referrer{desc: m})
		}
	}
	for _, suffix := range cosignSuffixes {
		tag := c.src.Tag(CosignTag(d, suffix))
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
