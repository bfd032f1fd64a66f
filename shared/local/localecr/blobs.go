package localecr

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// blobStore keeps blobs in memory, content-addressed and stored once per
// server, and records which repositories hold each one: as in ECR, a
// repository sees only the layers pushed or mounted into it. It implements
// go-containerregistry's registry.BlobHandler family, so the upload protocol
// (monolithic, chunked, streamed) is go-containerregistry's; membership is
// recorded by the server around those calls, because go-containerregistry
// does not hand the handler a consistent repository name.
type blobStore struct {
	mu      sync.RWMutex
	m       map[string][]byte
	members map[string]map[string]struct{} // repository -> digests
}

func newBlobStore() *blobStore {
	return &blobStore{m: map[string][]byte{}, members: map[string]map[string]struct{}{}}
}

// inRepo reports whether repo holds the blob.
func (b *blobStore) inRepo(repo, digest string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.members[repo][digest]
	return ok
}

// link records that repo holds the (stored) blob.
func (b *blobStore) link(repo, digest string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	set, ok := b.members[repo]
	if !ok {
		set = map[string]struct{}{}
		b.members[repo] = set
	}
	set[digest] = struct{}{}
}

// dropRepo forgets a deleted repository's blobs (their bytes stay for other repositories).
func (b *blobStore) dropRepo(repo string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.members, repo)
}

// sizeIn returns the blob's size if repo holds it.
func (b *blobStore) sizeIn(repo, digest string) (int64, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if _, ok := b.members[repo][digest]; !ok {
		return 0, false
	}
	return int64(len(b.m[digest])), true
}

var (
	_ registry.BlobHandler       = (*blobStore)(nil)
	_ registry.BlobStatHandler   = (*blobStore)(nil)
	_ registry.BlobPutHandler    = (*blobStore)(nil)
	_ registry.BlobDeleteHandler = (*blobStore)(nil)
)

func (b *blobStore) put(digest string, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[digest] = data
}

func (b *blobStore) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	data, ok := b.m[h.String()]
	if !ok {
		return 0, registry.ErrNotFound
	}
	return int64(len(data)), nil
}

func (b *blobStore) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	data, ok := b.m[h.String()]
	if !ok {
		return nil, registry.ErrNotFound
	}
	// A bytes.Reader is an io.ReaderAt, so ranged GETs seek instead of copying.
	return readerAtCloser{bytes.NewReader(data)}, nil
}

func (b *blobStore) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	// The reader verifies size and digest as it is drained; store only on success.
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	b.put(h.String(), data)
	return nil
}

func (b *blobStore) Delete(_ context.Context, _ string, h v1.Hash) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[h.String()]; !ok {
		return registry.ErrNotFound
	}
	delete(b.m, h.String())
	return nil
}

type readerAtCloser struct{ *bytes.Reader }

func (readerAtCloser) Close() error { return nil }
