package ocicopy

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// manifestRefs is what any manifest kind can point at: an index's manifests, an image's config
// and layers, the deprecated OCI artifact manifest's blobs, and a subject.
type manifestRefs struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     types.MediaType `json:"mediaType"`
	Config        *v1.Descriptor  `json:"config"`
	Layers        []v1.Descriptor `json:"layers"`
	Blobs         []v1.Descriptor `json:"blobs"`
	Manifests     []v1.Descriptor `json:"manifests"`
	Subject       *v1.Descriptor  `json:"subject"`
	FSLayers      []any           `json:"fsLayers"`
}

// parsed is a manifest's media type and the things it needs in the target before it can be pushed.
type parsed struct {
	mediaType types.MediaType
	manifests []v1.Descriptor
	blobs     []v1.Descriptor
	subject   *v1.Descriptor
}

// parseManifest reads any manifest kind; headerType is the Content-Type the registry sent.
func parseManifest(raw []byte, headerType types.MediaType) (parsed, error) {
	var m manifestRefs
	if err := json.Unmarshal(raw, &m); err != nil {
		return parsed{}, fmt.Errorf("manifest is not valid JSON: %w", err)
	}
	p := parsed{mediaType: m.MediaType, subject: m.Subject}
	if p.mediaType == "" {
		p.mediaType = headerType
	}
	if p.mediaType.IsSchema1() || m.SchemaVersion == 1 || len(m.FSLayers) > 0 {
		return parsed{}, fmt.Errorf("docker schema 1 manifests (%s) cannot be copied by digest; rebuild the image", p.mediaType)
	}
	if p.mediaType == "" {
		return parsed{}, fmt.Errorf("manifest has no mediaType and the registry sent no Content-Type")
	}
	p.manifests = m.Manifests
	if m.Config != nil {
		p.blobs = append(p.blobs, *m.Config)
	}
	p.blobs = append(p.blobs, m.Layers...)
	p.blobs = append(p.blobs, m.Blobs...)
	for _, d := range append(append([]v1.Descriptor(nil), p.manifests...), p.blobs...) {
		if d.Digest.Algorithm == "" || d.Digest.Hex == "" {
			return parsed{}, fmt.Errorf("manifest lists a descriptor without a digest (%s)", d.MediaType)
		}
	}
	return p, nil
}

// copyManifest makes sure the manifest desc (raw, if already fetched) and everything under it
// is in the target, pushing children before parents so that a manifest in the target always
// has its content there too. depth is 0 for the image, n for a referrer n levels away; it
// starts the discovery of the manifest's referrers.
func (c *copier) copyManifest(ctx context.Context, desc v1.Descriptor, raw []byte, depth int) error {
	return do(&c.manifests, desc.Digest.String(), func() error {
		ref := c.src.Digest(desc.Digest.String())
		target := c.dst.Digest(desc.Digest.String())

		// The target HEAD goes out with the source GET, and the walk into child manifests does
		// not wait for it (only blobs do: a present manifest has its blobs): over a WAN each
		// level of the image then costs one round trip, not two.
		var present bool
		var headErr error
		headDone := make(chan struct{})
		if _, known := c.present.Load(desc.Digest.String()); known {
			present = true
			close(headDone)
		} else {
			go func() {
				defer close(headDone)
				headErr = c.small(ctx, func() error {
					var err error
					_, present, err = c.targetDigest(ctx, target)
					return err
				})
			}()
		}
		// Every return below waits for the HEAD first, so that it never outlives the copy.
		mt := desc.MediaType
		var p parsed
		err := c.small(ctx, func() error {
			if raw == nil {
				d, err := c.srcPull.Get(ctx, ref) // by digest: go-containerregistry checks the hash
				if err != nil {
					return fmt.Errorf("read source manifest %s: %w", ref, err)
				}
				raw, mt = d.Manifest, d.MediaType
			}
			var err error
			if p, err = parseManifest(raw, mt); err != nil {
				return fmt.Errorf("source manifest %s: %w", ref, err)
			}
			if c.o.referrers && depth < c.o.referrerDepth {
				c.tasks.Go(func() error { return c.discoverReferrers(c.tasksCtx, desc.Digest, depth+1) })
			}
			return nil
		})
		if err != nil {
			<-headDone
			return err
		}

		g, gctx := errgroup.WithContext(ctx)
		for _, child := range p.manifests {
			// Children are walked even when this manifest is present, to find their referrers.
			g.Go(func() error { return c.copyManifest(gctx, child, nil, depth) })
		}
		<-headDone
		if headErr != nil {
			_ = g.Wait()
			return fmt.Errorf("check target manifest %s: %w", target, headErr)
		}
		if !present {
			// Largest first: the big blobs bound the copy's length, so they start at once
			// while the small, latency-bound ones fill the other slots.
			blobs := slices.Clone(p.blobs)
			slices.SortStableFunc(blobs, func(a, b v1.Descriptor) int { return cmp.Compare(b.Size, a.Size) })
			for _, b := range blobs {
				g.Go(func() error { return c.copyBlob(gctx, b) })
			}
		}
		if err := g.Wait(); err != nil {
			return err
		}
		if present {
			c.manifestsSkipped.Add(1)
			c.log.debug("manifest present", "digest", desc.Digest.String())
			return nil
		}
		if p.subject != nil {
			// A referrer goes in after its subject (when we are copying the subject too):
			// OCI 1.1 allows the other order, but not every registry likes it.
			if _, ours := c.manifests.Load(p.subject.Digest.String()); ours {
				if err := wait(ctx, &c.manifests, p.subject.Digest.String()); err != nil {
					return err
				}
			}
			c.subjectPut.Lock()
			defer c.subjectPut.Unlock()
		}
		if err := c.dstPush.Put(ctx, target, rawManifest{raw, p.mediaType}); err != nil {
			return fmt.Errorf("write target manifest %s: %w", target, err)
		}
		c.manifestsPushed.Add(1)
		c.pushed.Store(desc.Digest.String(), true)
		c.log.debug("manifest pushed", "digest", desc.Digest.String(), "mediaType", string(p.mediaType))
		return nil
	})
}

// copyBlob streams one blob into the target unless it is there already (or can be mounted).
func (c *copier) copyBlob(ctx context.Context, desc v1.Descriptor) error {
	return do(&c.blobs, desc.Digest.String(), func() error {
		if !desc.MediaType.IsDistributable() {
			c.warn("blob %s (%s) is non-distributable: not copied", desc.Digest, desc.MediaType)
			return nil
		}
		// Small blobs are bound by round trips, large ones by bandwidth: each has its own lane,
		// so a config or a 100 KiB layer never waits behind a 50 MiB one.
		sem := c.blobSem
		if desc.Size < smallBlob {
			sem = c.smallBlobSem
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-sem }()

		outcome, err := c.uploadBlob(ctx, desc)
		if err != nil {
			return fmt.Errorf("copy blob %s (%d bytes) to %s: %w", desc.Digest, desc.Size, c.dst, err)
		}
		switch outcome {
		case "copied":
			c.blobsCopied.Add(1)
			c.log.debug("blob copied", "digest", desc.Digest.String(), "size", desc.Size)
		case "mounted":
			c.blobsMounted.Add(1)
		default:
			c.blobsSkipped.Add(1)
		}
		return nil
	})
}

// smallBlob is the size under which a blob goes through the latency-bound lane.
const smallBlob = 1 << 20

// small runs f, a handful of small requests, while holding one of jobs slots, so that a wide
// index or many referrers do not fire hundreds of requests at a registry at once.
func (c *copier) small(ctx context.Context, f func() error) error {
	select {
	case c.smallSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.smallSem }()
	return f()
}

type logger struct{ l *slog.Logger }

func (l logger) info(msg string, args ...any)  { l.l.Info(msg, args...) }
func (l logger) debug(msg string, args ...any) { l.l.Debug(msg, args...) }
func (l logger) warn(msg string, args ...any)  { l.l.Warn(msg, args...) }
