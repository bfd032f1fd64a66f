package ocicopy_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/ocicopy"
)

// storageBlobs keeps blobs in memory and, like ECR with S3, answers blob GETs with a redirect
// to a separate storage host.
type storageBlobs struct {
	mu      sync.Mutex
	blobs   map[string][]byte
	storage string // base URL of the storage server
}

func (s *storageBlobs) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[h.String()]
	if !ok {
		return 0, registry.ErrNotFound
	}
	return int64(len(b)), nil
}

func (s *storageBlobs) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	if _, err := s.Stat(context.Background(), "", h); err != nil {
		return nil, err
	}
	return nil, registry.RedirectError{Location: s.storage + "/" + h.String() + "?X-Amz-Signature=abc", Code: http.StatusTemporaryRedirect}
}

func (s *storageBlobs) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[h.String()] = b
	return nil
}

// A source that redirects blob downloads to storage on another host (ECR → S3): followed, and
// the registry credentials are not sent to the storage host.
func TestCopyFollowsBlobRedirects(t *testing.T) {
	store := &storageBlobs{blobs: map[string][]byte{}}
	var leaked, served atomic.Int32
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		store.mu.Lock()
		b, ok := store.blobs[strings.TrimPrefix(r.URL.Path, "/")]
		store.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		served.Add(1)
		_, _ = io.Copy(w, bytes.NewReader(b))
	}))
	t.Cleanup(storage.Close)
	store.storage = storage.URL

	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(store))
	src := httptest.NewServer(requireBasic("AWS", "tok")(h))
	t.Cleanup(src.Close)
	srcHost := strings.TrimPrefix(src.URL, "http://")
	auth := authn.FromConfig(authn.AuthConfig{Username: "AWS", Password: "tok"})
	f := pushFixture(t, srcHost, "dev/app", 70, pushOpts{noReferrers: true, auth: auth})
	dst := ocitest.NewRegistry(t, nil)

	res, err := ocicopy.Copy(context.Background(), f.ref(), dst.Host+"/prod/app", ocicopy.WithAuth(srcHost, auth))
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsCopied != len(f.blobs) || int(served.Load()) != len(f.blobs) {
		t.Errorf("copied %d blobs, storage served %d; want %d", res.BlobsCopied, served.Load(), len(f.blobs))
	}
	if leaked.Load() > 0 {
		t.Errorf("registry credentials sent to the storage host %d times", leaked.Load())
	}
	if m := f.missing(t, dst.Host, "prod/app"); len(m) > 0 {
		t.Errorf("target is missing %v", m)
	}
}
