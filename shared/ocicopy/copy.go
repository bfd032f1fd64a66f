// Package ocicopy copies an image between registries by digest: the index with every platform
// manifest (nested indexes too), every blob, and the image's referrers (OCI 1.1 referrers API and
// cosign's sha256-<hex>.sig/.att/.sbom tags). Blobs stream through with bounded memory, in
// parallel, and are skipped when the target already has them. The tag is written only after all
// content is in the target, then the target's digest is verified against the source's.
package ocicopy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// ErrTagConflict means the target already has the tag on a different digest. Nothing was overwritten.
var ErrTagConflict = errors.New("tag conflict")

// ErrVerification means the target does not serve the source digest after the copy.
var ErrVerification = errors.New("target digest verification failed")

// TagConflictError carries both digests of a tag conflict; errors.Is(err, ErrTagConflict) holds.
type TagConflictError struct {
	Tag      string // the target reference, repository:tag
	Existing v1.Hash
	Source   v1.Hash
	// Preflight is true when the conflict was found before anything was written.
	Preflight bool
}

func (e *TagConflictError) Error() string {
	what := "nothing was written"
	if !e.Preflight {
		what = "the content was copied by digest but the tag was left as it was"
	}
	return fmt.Sprintf("tag conflict: %s already points to %s, not to the source digest %s; %s",
		e.Tag, e.Existing, e.Source, what)
}

// Unwrap makes errors.Is(err, ErrTagConflict) true.
func (e *TagConflictError) Unwrap() error { return ErrTagConflict }

// Result reports what a copy did. A re-run after success has BytesMoved == 0.
type Result struct {
	Source    string          `json:"source"` // repository@digest
	Target    string          `json:"target"` // repository@digest
	Digest    v1.Hash         `json:"digest"`
	MediaType types.MediaType `json:"mediaType"`
	Tag       string          `json:"tag,omitempty"` // the tag now on Digest in the target ("" if none was asked for)

	ManifestsPushed  int           `json:"manifestsPushed"`  // manifests written (image, children, referrers)
	ManifestsSkipped int           `json:"manifestsSkipped"` // manifests the target already had
	BlobsCopied      int           `json:"blobsCopied"`      // blobs streamed from source to target
	BlobsMounted     int           `json:"blobsMounted"`     // blobs mounted from the source repository (same registry)
	BlobsSkipped     int           `json:"blobsSkipped"`     // blobs the target already had
	BytesMoved       int64         `json:"bytesMoved"`       // blob bytes sent, retried transfers included
	Referrers        int           `json:"referrers"`        // referrer manifests found for the image (now all in the target)
	ReferrersCopied  int           `json:"referrersCopied"`  // of those, written by this run
	TagsPushed       []string      `json:"tagsPushed"`       // tags written by this run (cosign tags and the image tag)
	Warnings         []string      `json:"warnings"`         // things skipped on purpose, e.g. a cosign tag already on another digest
	Duration         time.Duration `json:"durationNs"`
}

// Copy copies src to the target named by dst.
//
// src is "repo:tag", "repo@sha256:…" or "repo:tag@sha256:…" (the digest wins). dst is a
// repository ("registry/repo"), "repo:tag" (that tag is applied), or "repo@sha256:…" (which must
// be src's digest). With a bare repository the tag is WithTag's, else src's tag, else none.
func Copy(ctx context.Context, src, dst string, opts ...Option) (Result, error) {
	o := makeOptions(opts)
	srcRef, err := o.parseReference(src)
	if err != nil {
		return Result{}, fmt.Errorf("source %q: %w", src, err)
	}
	dstRef, err := o.parseTarget(dst)
	if err != nil {
		return Result{}, fmt.Errorf("target %q: %w", dst, err)
	}
	if _, isRepo := dstRef.(name.Repository); isRepo && o.tag == "" {
		if t, ok := srcRef.(name.Tag); ok {
			o.tag = t.TagStr()
		}
	}
	return run(ctx, o, srcRef, dstRef)
}

// CopyReference is Copy for parsed references. dst is a name.Tag (tag the target),
// a name.Digest (must equal the source digest) or a name.Repository (tag from WithTag only).
func CopyReference(ctx context.Context, src name.Reference, dst any, opts ...Option) (Result, error) {
	o := makeOptions(opts)
	switch dst.(type) {
	case name.Tag, name.Digest, name.Repository:
	default:
		return Result{}, fmt.Errorf("target must be a name.Tag, name.Digest or name.Repository, got %T", dst)
	}
	return run(ctx, o, src, dst)
}

func (o *options) nameOpts(host string) []name.Option {
	if o.insecure[host] {
		return []name.Option{name.Insecure}
	}
	return nil
}

func hostOf(s string) string {
	if i := strings.IndexByte(s, '/'); i > 0 {
		return s[:i]
	}
	return ""
}

func (o *options) parseReference(s string) (name.Reference, error) {
	return name.ParseReference(s, o.nameOpts(hostOf(s))...)
}

// parseTarget returns a name.Digest, name.Tag or name.Repository.
func (o *options) parseTarget(s string) (any, error) {
	opts := o.nameOpts(hostOf(s))
	if strings.Contains(s, "@") {
		return name.NewDigest(s, opts...)
	}
	if t, err := name.NewTag(s, append(opts, name.StrictValidation)...); err == nil {
		return t, nil
	}
	return name.NewRepository(s, opts...)
}

func run(ctx context.Context, o *options, src name.Reference, dst any) (Result, error) {
	start := time.Now()
	var dstRepo name.Repository
	var wantDigest string
	switch d := dst.(type) {
	case name.Tag:
		dstRepo = d.Context()
		if o.tag != "" && o.tag != d.TagStr() {
			return Result{}, fmt.Errorf("target tag %q and WithTag(%q) disagree: give one tag", d.TagStr(), o.tag)
		}
		o.tag = d.TagStr()
	case name.Digest:
		dstRepo = d.Context()
		wantDigest = d.DigestStr()
	case name.Repository:
		dstRepo = d
	}
	if o.tag != "" {
		if _, err := name.NewTag(dstRepo.String()+":"+o.tag, o.nameOpts(dstRepo.RegistryStr())...); err != nil {
			return Result{}, fmt.Errorf("tag %q is not a valid tag: %w", o.tag, err)
		}
	}

	c, err := newCopier(ctx, o, src.Context(), dstRepo)
	defer c.close()
	if err != nil {
		return Result{}, err
	}

	res, err := c.run(ctx, src, wantDigest)
	res.Duration = time.Since(start)
	return res, err
}

type copier struct {
	o        *options
	src, dst name.Repository
	log      logger

	srcPull *remote.Puller
	dstPull *remote.Puller
	dstPush *remote.Pusher
	// srcBlobs fetches blobs without go-containerregistry's client-side digest check.
	srcBlobs  *http.Client
	dstBlobs  *http.Client // blob uploads to the target, authenticated for push
	mountable bool
	// speculate sends a blob's target HEAD, upload POST and source GET together; it turns
	// off once the target turns out to have a blob already (see uploadSpeculative).
	speculate atomic.Bool
	base      *http.Transport // closed at the end when we made it

	blobSem      chan struct{}
	smallBlobSem chan struct{} // blobs under smallBlob: latency-bound, a lane of their own
	smallSem     chan struct{} // manifest reads and referrer lookups
	subjectPut   sync.Mutex    // referrer PUTs may rewrite the target's fallback tag: one at a time

	manifests, blobs sync.Map // digest → *once
	// tasks runs the image walk and referrer discovery together; discovery of a manifest's
	// referrers starts as soon as the manifest is read, while its blobs are still moving.
	tasks    *errgroup.Group
	tasksCtx context.Context // cancelled when a task fails; inner errgroups' contexts end earlier
	// seenRefs and seenTags dedupe referrers found more than once (API and cosign tag).
	refMu    sync.Mutex
	seenRefs map[v1.Hash]bool
	seenTags map[string]bool
	pushed   sync.Map     // digest → true for manifests this run wrote
	present  sync.Map     // digest → true for manifests known to be in the target (no HEAD needed)
	refAPI   atomic.Int32 // apiUnknown, apiPresent, apiMissing for the source registry
	srcTags  tagList

	manifestsPushed, manifestsSkipped       atomic.Int64
	blobsCopied, blobsMounted, blobsSkipped atomic.Int64
	bytesMoved                              atomic.Int64
	referrers, referrersCopied              atomic.Int64

	resMu    sync.Mutex
	tags     []string
	warnings []string
}

type once struct {
	sync.Once
	err  error
	done chan struct{}
}

// do runs f once per key and gives every caller its result.
func do(m *sync.Map, key string, f func() error) error {
	v, _ := m.LoadOrStore(key, &once{done: make(chan struct{})})
	t := v.(*once)
	t.Do(func() {
		t.err = f()
		close(t.done)
	})
	return t.err
}

// wait blocks until do(m, key, …) has finished, for a key some caller has started or will start.
func wait(ctx context.Context, m *sync.Map, key string) error {
	v, _ := m.LoadOrStore(key, &once{done: make(chan struct{})})
	t := v.(*once)
	select {
	case <-t.done:
		return t.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *copier) auth(ctx context.Context, repo name.Repository) (authn.Authenticator, error) {
	if a, ok := c.o.auths[repo.RegistryStr()]; ok {
		return a, nil
	}
	if c.o.keychain != nil {
		a, err := authn.Resolve(ctx, c.o.keychain, repo)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
		}
		return a, nil
	}
	return authn.Anonymous, nil
}

// newCopier always returns a copier, to be closed even when err is set.
func newCopier(ctx context.Context, o *options, src, dst name.Repository) (*copier, error) {
	c := &copier{
		o:            o,
		src:          src,
		dst:          dst,
		log:          logger{o.logger},
		mountable:    src.RegistryStr() == dst.RegistryStr() && src.String() != dst.String(),
		blobSem:      make(chan struct{}, o.jobs),
		smallBlobSem: make(chan struct{}, o.jobs),
		smallSem:     make(chan struct{}, o.jobs),
		seenRefs:     map[v1.Hash]bool{},
		seenTags:     map[string]bool{},
	}
	c.speculate.Store(true)
	base := o.transport
	if base == nil {
		c.base = newTransport(o.bufferSize)
		base = c.base
	}
	base = &statusRetrier{inner: base, backoff: o.backoff}
	srcAuth, err := c.auth(ctx, src)
	if err != nil {
		return c, err
	}
	dstAuth, err := c.auth(ctx, dst)
	if err != nil {
		return c, err
	}
	// One authenticated transport per registry, both set up at once: each handshake is a ping
	// (and a token, for bearer registries), a round trip that every later request waits for.
	// The pullers and the pusher reuse them (a transport.Wrapper is not pinged again), so a copy
	// pays for the handshake once per registry, not once per client.
	retrying := transport.NewRetry(base, transport.WithRetryBackoff(o.backoff), transport.WithRetryPredicate(retryable))
	scopes := []string{dst.Scope(transport.PushScope)}
	if c.mountable {
		scopes = append(scopes, src.Scope(transport.PullScope))
	}
	var rt, wt http.RoundTripper
	var hs errgroup.Group
	hs.Go(func() error {
		var err error
		rt, err = transport.NewWithContext(ctx, src.Registry, srcAuth, transport.NewUserAgent(retrying, o.userAgent),
			[]string{src.Scope(transport.PullScope)})
		if err != nil {
			return fmt.Errorf("connect to source registry %s: %w", src.RegistryStr(), err)
		}
		return nil
	})
	hs.Go(func() error {
		var err error
		wt, err = transport.NewWithContext(ctx, dst.Registry, dstAuth, transport.NewUserAgent(retrying, o.userAgent), scopes)
		if err != nil {
			return fmt.Errorf("connect to target registry %s: %w", dst.RegistryStr(), err)
		}
		return nil
	})
	if err := hs.Wait(); err != nil {
		return c, err
	}
	c.srcBlobs = &http.Client{Transport: rt, CheckRedirect: checkRedirect}
	common := []remote.Option{
		remote.WithContext(ctx),
		remote.WithUserAgent(o.userAgent),
		remote.WithJobs(o.jobs),
	}
	if c.srcPull, err = remote.NewPuller(append(common, remote.WithTransport(rt))...); err != nil {
		return c, err
	}
	if c.dstPull, err = remote.NewPuller(append(common, remote.WithTransport(wt))...); err != nil {
		return c, err
	}
	if c.dstPush, err = remote.NewPusher(append(common, remote.WithTransport(wt))...); err != nil {
		return c, err
	}
	c.dstBlobs = &http.Client{Transport: wt, CheckRedirect: checkRedirect}
	return c, nil
}

func (c *copier) close() {
	if c.base != nil {
		c.base.CloseIdleConnections()
	}
}

func (c *copier) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.log.warn(msg)
	c.resMu.Lock()
	c.warnings = append(c.warnings, msg)
	c.resMu.Unlock()
}

func (c *copier) result(d *remote.Descriptor) Result {
	r := Result{
		Source:           c.src.String(),
		Target:           c.dst.String(),
		ManifestsPushed:  int(c.manifestsPushed.Load()),
		ManifestsSkipped: int(c.manifestsSkipped.Load()),
		BlobsCopied:      int(c.blobsCopied.Load()),
		BlobsMounted:     int(c.blobsMounted.Load()),
		BlobsSkipped:     int(c.blobsSkipped.Load()),
		BytesMoved:       c.bytesMoved.Load(),
		Referrers:        int(c.referrers.Load()),
		ReferrersCopied:  int(c.referrersCopied.Load()),
	}
	if d != nil {
		r.Digest = d.Digest
		r.MediaType = d.MediaType
		r.Source = c.src.Digest(d.Digest.String()).String()
		r.Target = c.dst.Digest(d.Digest.String()).String()
	}
	c.resMu.Lock()
	r.TagsPushed = append([]string(nil), c.tags...)
	r.Warnings = append([]string(nil), c.warnings...)
	c.resMu.Unlock()
	return r
}

func (c *copier) run(ctx context.Context, srcRef name.Reference, wantDigest string) (Result, error) {
	// The source image and the target tag are read at once: over a WAN each is a round trip.
	var tagRef name.Tag
	var existing v1.Hash
	var found bool
	var tagErr error
	tagDone := make(chan struct{})
	if c.o.tag != "" {
		tagRef = c.dst.Tag(c.o.tag)
		go func() {
			defer close(tagDone)
			existing, found, tagErr = c.targetDigest(ctx, tagRef)
		}()
	} else {
		close(tagDone)
	}
	root, err := c.srcPull.Get(ctx, srcRef)
	<-tagDone
	if err != nil {
		return c.result(nil), fmt.Errorf("read source %s: %w", srcRef, explainAuth(err, c.src.RegistryStr()))
	}
	if wantDigest != "" && wantDigest != root.Digest.String() {
		return c.result(root), fmt.Errorf("target digest %s is not the source digest %s of %s", wantDigest, root.Digest, srcRef)
	}
	c.log.info("copy start", "source", c.src.Digest(root.Digest.String()).String(), "target", c.dst.String(), "tag", c.o.tag)
	if c.o.tag != "" {
		if tagErr != nil {
			return c.result(root), fmt.Errorf("check target tag %s: %w", tagRef, tagErr)
		}
		if found && existing != root.Digest {
			return c.result(root), &TagConflictError{Tag: tagRef.String(), Existing: existing, Source: root.Digest, Preflight: true}
		}
		if found {
			// The tag is on the image already, so the image is in the target: no HEAD for it.
			c.present.Store(root.Digest.String(), true)
		}
	}

	// Content first, bottom-up, by digest: blobs, child manifests, the image manifest; and the
	// signatures, attestations and SBOMs, so that they are there when the tag appears.
	g, gctx := errgroup.WithContext(ctx)
	c.tasks, c.tasksCtx = g, gctx
	g.Go(func() error { return c.copyManifest(gctx, root.Descriptor, root.Manifest, 0) })
	if err := g.Wait(); err != nil {
		return c.result(root), err
	}
	if c.o.tag != "" && !found {
		// After everything, referrers included, so that they are there when the tag appears.
		if err := c.putTag(ctx, tagRef, root.Descriptor, root.Manifest, true); err != nil {
			return c.result(root), err
		}
	}
	if err := c.verify(ctx, root.Digest, tagRef); err != nil {
		return c.result(root), err
	}
	res := c.result(root)
	res.Tag = c.o.tag
	c.log.info("copy done", "target", res.Target, "tag", res.Tag, "bytes", res.BytesMoved,
		"blobs_copied", res.BlobsCopied, "blobs_skipped", res.BlobsSkipped, "blobs_mounted", res.BlobsMounted,
		"manifests_pushed", res.ManifestsPushed, "referrers", res.Referrers)
	return res, nil
}

// targetDigest resolves ref in the target; found is false when it does not exist.
func (c *copier) targetDigest(ctx context.Context, ref name.Reference) (v1.Hash, bool, error) {
	d, err := c.dstPull.Head(ctx, ref)
	if err == nil {
		return d.Digest, true, nil
	}
	if isNotFound(err) {
		return v1.Hash{}, false, nil
	}
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode != http.StatusMethodNotAllowed && terr.StatusCode != http.StatusBadRequest {
		return v1.Hash{}, false, explainAuth(err, ref.Context().RegistryStr())
	}
	// Some registries answer HEAD badly (no digest header, 405); a GET settles it.
	g, gerr := c.dstPull.Get(ctx, ref)
	if gerr == nil {
		return g.Digest, true, nil
	}
	if isNotFound(gerr) {
		return v1.Hash{}, false, nil
	}
	return v1.Hash{}, false, explainAuth(gerr, ref.Context().RegistryStr())
}

// explainAuth adds what an operator should check when a registry refuses the credentials.
func explainAuth(err error, host string) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%w (registry %s refused the credentials: check the role's permissions, and for ECR pass a fresh GetAuthorizationToken as user AWS)", err, host)
	}
	return err
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// putTag points tag at desc, unless it already does. For the image tag (strict) a tag on another
// digest is a conflict; for cosign tags it is left alone with a warning.
func (c *copier) putTag(ctx context.Context, tag name.Tag, desc v1.Descriptor, raw []byte, strict bool) error {
	existing, found, err := c.targetDigest(ctx, tag)
	if err != nil {
		return fmt.Errorf("check target tag %s: %w", tag, err)
	}
	if found && existing == desc.Digest {
		return nil
	}
	if found {
		if strict {
			return &TagConflictError{Tag: tag.String(), Existing: existing, Source: desc.Digest}
		}
		c.warn("target tag %s already points to %s, not to the source's %s: left unchanged", tag, existing, desc.Digest)
		return nil
	}
	if err := c.dstPush.Put(ctx, tag, rawManifest{raw, desc.MediaType}); err != nil {
		return fmt.Errorf("write target tag %s: %w", tag, err)
	}
	c.log.debug("tagged", "tag", tag.String(), "digest", desc.Digest.String())
	c.resMu.Lock()
	c.tags = append(c.tags, tag.String())
	c.resMu.Unlock()
	return nil
}

// verify checks that the target reports the source digest for the image (HEAD by digest) and
// serves, under the tag, bytes that hash to it (GET by tag; by digest when there is no tag).
func (c *copier) verify(ctx context.Context, want v1.Hash, tag name.Tag) error {
	byDigest := c.dst.Digest(want.String())
	var ref name.Reference = byDigest
	if c.o.tag != "" {
		ref = tag
	}
	// Both questions at once: they are independent, and each is a round trip.
	var h *v1.Descriptor
	var herr error
	headDone := make(chan struct{})
	go func() {
		defer close(headDone)
		h, herr = c.dstPull.Head(ctx, byDigest)
	}()
	g, gerr := c.dstPull.Get(ctx, ref) // go-containerregistry hashes the body
	<-headDone
	if herr != nil {
		return fmt.Errorf("%w: HEAD %s: %w", ErrVerification, byDigest, herr)
	}
	if h.Digest != want {
		return fmt.Errorf("%w: HEAD %s reports %s", ErrVerification, byDigest, h.Digest)
	}
	if gerr != nil {
		return fmt.Errorf("%w: GET %s: %w", ErrVerification, ref, gerr)
	}
	if g.Digest != want {
		return fmt.Errorf("%w: %s serves content hashing to %s, want %s", ErrVerification, ref, g.Digest, want)
	}
	return nil
}

// rawManifest pushes manifest bytes unchanged, so digests are preserved.
type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }
