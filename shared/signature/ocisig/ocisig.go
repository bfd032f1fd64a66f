// Package ocisig reads signatures from an OCI registry for shared/signature, over
// go-containerregistry's remote client (the OCI 1.1 referrers API, with its
// sha256-<hex> tag fallback, and manifests and blobs by digest).
package ocisig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regflow/regflow/shared/signature"
)

// Registry is a signature.Registry over one set of remote options (auth, transport).
type Registry struct {
	opts     []remote.Option
	insecure bool
}

var _ signature.Registry = (*Registry)(nil)

// New reads registries with opts (remote.WithAuth or remote.WithAuthFromKeychain, a transport).
func New(opts ...remote.Option) *Registry { return &Registry{opts: opts} }

// Insecure returns a copy that speaks plain HTTP (the local stack's loopback registries).
func (r *Registry) Insecure() *Registry {
	c := *r
	c.insecure = true
	return &c
}

func (r *Registry) repository(repo string) (name.Repository, error) {
	var o []name.Option
	if r.insecure {
		o = append(o, name.Insecure)
	}
	rp, err := name.NewRepository(repo, o...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q: %w", repo, err)
	}
	return rp, nil
}

func (r *Registry) with(ctx context.Context) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx)}, r.opts...)
}

// Manifest returns the manifest repo:ref or repo@ref names.
func (r *Registry) Manifest(ctx context.Context, repo, ref string) ([]byte, string, error) {
	rp, err := r.repository(repo)
	if err != nil {
		return nil, "", err
	}
	var nr name.Reference
	if h, herr := v1.NewHash(ref); herr == nil {
		nr = rp.Digest(h.String())
	} else {
		nr = rp.Tag(ref)
	}
	d, err := remote.Get(nr, r.with(ctx)...)
	if err != nil {
		return nil, "", notFound(err)
	}
	if len(d.Manifest) > signature.MaxManifestBytes {
		return nil, "", fmt.Errorf("manifest %s is %d bytes, more than %d", nr, len(d.Manifest), signature.MaxManifestBytes)
	}
	return d.Manifest, string(d.MediaType), nil
}

// Referrers lists subject's referrers (go-containerregistry falls back to the tag schema).
func (r *Registry) Referrers(ctx context.Context, repo string, subject v1.Hash) ([]v1.Descriptor, error) {
	rp, err := r.repository(repo)
	if err != nil {
		return nil, err
	}
	idx, err := remote.Referrers(rp.Digest(subject.String()), r.with(ctx)...)
	if err != nil {
		return nil, notFound(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("referrers of %s@%s: %w", repo, subject, err)
	}
	return im.Manifests, nil
}

// Blob returns the blob, refusing more than limit bytes.
func (r *Registry) Blob(ctx context.Context, repo string, d v1.Hash, limit int64) ([]byte, error) {
	rp, err := r.repository(repo)
	if err != nil {
		return nil, err
	}
	l, err := remote.Layer(rp.Digest(d.String()), r.with(ctx)...)
	if err != nil {
		return nil, notFound(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, notFound(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, notFound(err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("blob %s@%s is larger than %d bytes", repo, d, limit)
	}
	return b, nil
}

// notFound maps a registry's 404 (MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN) to signature.ErrNotFound.
func notFound(err error) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %w", signature.ErrNotFound, err)
	}
	return err
}
