package localecr

import (
	"sync"
)

// blobStore keeps blobs in memory, content-addressed and stored once per
// server, and records which repositories hold each one: as in ECR, a
// repository sees only the layers pushed or mounted into it. Open uploads
// live here too (see uploads.go).
type blobStore struct {
	mu      sync.RWMutex
	m       map[string][]byte
	members map[string]map[string]struct{} // repository -> digests
	uploads map[string]*upload             // upload id -> session
}

func newBlobStore() *blobStore {
	return &blobStore{m: map[string][]byte{}, members: map[string]map[string]struct{}{}, uploads: map[string]*upload{}}
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
	b.linkLocked(repo, digest)
}

func (b *blobStore) linkLocked(repo, digest string) {
	set, ok := b.members[repo]
	if !ok {
		set = map[string]struct{}{}
		b.members[repo] = set
	}
	set[digest] = struct{}{}
}

// dropRepo forgets a deleted repository's blobs and open uploads (their bytes
// stay for other repositories).
func (b *blobStore) dropRepo(repo string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.members, repo)
	for id, u := range b.uploads {
		if u.repo == repo {
			delete(b.uploads, id)
		}
	}
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

// getIn returns the blob's bytes if repo holds it. The slice is never written to.
func (b *blobStore) getIn(repo, digest string) ([]byte, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if _, ok := b.members[repo][digest]; !ok {
		return nil, false
	}
	data, ok := b.m[digest]
	return data, ok
}

func (b *blobStore) put(digest string, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[digest] = data
}

// store keeps data under digest and records it in repo, in one step, so a
// client never sees a completed upload its repository does not hold.
func (b *blobStore) store(repo, digest string, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[digest]; !ok {
		b.m[digest] = data
	}
	b.linkLocked(repo, digest)
}
