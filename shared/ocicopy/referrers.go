package ocicopy

import (
	"context"
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"
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

// copyReferrers copies the referrers of every manifest of the image, then referrers of those
// referrers, up to the configured depth.
func (c *copier) copyReferrers(ctx context.Context) error {
	c.treeMu.Lock()
	level := slices.Clone(c.tree)
	c.treeMu.Unlock()
	seen := map[v1.Hash]bool{}
	for _, d := range level {
		seen[d] = true
	}
	for depth := 1; depth <= c.o.referrerDepth && len(level) > 0; depth++ {
		found := make([][]referrer, len(level))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(c.o.jobs)
		for i, d := range level {
			g.Go(func() error {
				var err error
				found[i], err = c.referrersOf(gctx, d)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}

		var next []v1.Hash
		var todo []referrer
		for _, rs := range found {
			for _, r := range rs {
				if r.tag != "" {
					todo = append(todo, r) // tag it even when the manifest is also an OCI referrer
				} else if seen[r.desc.Digest] {
					continue
				} else {
					todo = append(todo, r)
				}
				if !seen[r.desc.Digest] {
					seen[r.desc.Digest] = true
					next = append(next, r.desc.Digest)
					c.referrers.Add(1)
				}
			}
		}
		g, gctx = errgroup.WithContext(ctx)
		for _, r := range todo {
			g.Go(func() error {
				if err := c.copyManifest(gctx, r.desc, r.raw); err != nil {
					return fmt.Errorf("referrer %s: %w", r.desc.Digest, err)
				}
				if r.tag == "" {
					return nil
				}
				raw := r.raw
				return c.putTag(gctx, c.dst.Tag(r.tag), r.desc, raw, false)
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for _, d := range next {
			if _, ok := c.pushed.Load(d.String()); ok {
				c.referrersCopied.Add(1)
			}
		}
		level = next
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
