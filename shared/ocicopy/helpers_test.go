package ocicopy_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/ocicopy"
)

// gitSHA is the kind of tag CI pushes.
const gitSHA = "3f786850e387550fdab836ed7e6dc881de23001b"

// fastRetry keeps fault tests quick while leaving plenty of attempts.
var fastRetry = ocicopy.WithRetryBackoff(remote.Backoff{Duration: 2 * time.Millisecond, Factor: 1.5, Jitter: 0.1, Steps: 10})

// fixture is an image pushed to a source registry, with what a complete copy must carry.
type fixture struct {
	repo   name.Repository
	tag    string
	digest v1.Hash

	imageManifests []v1.Hash          // index and platform manifests
	referrers      []v1.Hash          // OCI 1.1 referrers: signature and SBOM of the index, signature of the SBOM
	cosignTags     map[string]v1.Hash // tag-schema attachments
	manifests      []v1.Hash          // all of the above
	blobs          []v1.Hash          // every blob, unique
	blobBytes      int64              // their total size
}

func (f *fixture) ref() string { return f.repo.Tag(f.tag).String() }

type pushOpts struct {
	platforms, layers int
	layerSize         int64
	nested            bool // wrap the index in another index
	docker            bool // Docker media types instead of OCI
	noReferrers       bool
	single            bool                // push one platform image, no index
	auth              authn.Authenticator // for registries that want credentials (local ECR)
}

func pushFixture(t testing.TB, host, repo string, seed uint64, po pushOpts) *fixture {
	t.Helper()
	if po.platforms == 0 {
		po.platforms, po.layers, po.layerSize = 2, 3, 48<<10
	}
	ctx := context.Background()
	r, err := name.NewRepository(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	build := ocitest.RandomIndex
	if po.docker {
		build = ocitest.RandomDockerIndex
	}
	idx, err := build(seed, po.platforms, po.layers, po.layerSize)
	if err != nil {
		t.Fatal(err)
	}
	if po.nested {
		if idx, err = ocitest.Nest(idx); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{repo: r, tag: gitSHA, cosignTags: map[string]v1.Hash{}}
	ropts := []remote.Option{remote.WithContext(ctx)}
	if po.auth != nil {
		ropts = append(ropts, remote.WithAuth(po.auth))
	}
	blobs := map[v1.Hash]int64{}
	var root partial.Describable = idx
	if po.single {
		img, err := ocitest.RandomImage(seed, ocitest.Platforms()[0], po.layers, po.layerSize)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r.Tag(f.tag), img, ropts...); err != nil {
			t.Fatalf("push fixture: %v", err)
		}
		root = img
		f.digest, _ = img.Digest()
		f.imageManifests = []v1.Hash{f.digest, f.digest} // the image is its own "child" for cosign below
		m, _ := img.Manifest()
		blobs[m.Config.Digest] = m.Config.Size
		for _, l := range m.Layers {
			blobs[l.Digest] = l.Size
		}
	} else {
		if err := remote.WriteIndex(r.Tag(f.tag), idx, ropts...); err != nil {
			t.Fatalf("push fixture: %v", err)
		}
		f.digest, _ = idx.Digest()
		collect(t, idx, f, blobs)
	}

	if !po.noReferrers {
		rootDesc := v1.Descriptor{MediaType: mustMT(root), Digest: f.digest, Size: mustSize(root)}
		sbom := ocitest.SBOM(seed, rootDesc)
		arts := []ocitest.Artifact{ocitest.Signature(seed, rootDesc), sbom, ocitest.Signature(seed+7, sbom.Descriptor())}
		for _, a := range arts {
			d, err := a.Push(ctx, r, "", ropts...)
			if err != nil {
				t.Fatal(err)
			}
			f.referrers = append(f.referrers, d.Digest)
			addBlobs(a, blobs)
		}
		// cosign's tag schema: a signature and an attestation of the index, a signature of a platform image.
		child := f.imageManifests[1]
		for _, c := range []struct {
			subject v1.Hash
			suffix  string
		}{{f.digest, "sig"}, {f.digest, "att"}, {child, "sbom"}} {
			a := ocitest.CosignArtifact(seed, c.subject, c.suffix)
			tag := ocitest.CosignTag(c.subject, c.suffix)
			d, err := a.Push(ctx, r, tag, ropts...)
			if err != nil {
				t.Fatal(err)
			}
			f.cosignTags[tag] = d.Digest
			addBlobs(a, blobs)
		}
	}
	slices.SortFunc(f.imageManifests, func(a, b v1.Hash) int { return strings.Compare(a.String(), b.String()) })
	f.imageManifests = slices.Compact(f.imageManifests)
	f.manifests = slices.Concat(f.imageManifests, f.referrers)
	for _, d := range f.cosignTags {
		f.manifests = append(f.manifests, d)
	}
	for h, n := range blobs {
		f.blobs = append(f.blobs, h)
		f.blobBytes += n
	}
	return f
}

func mustMT(m partial.Describable) types.MediaType {
	mt, _ := m.MediaType()
	return mt
}

func mustSize(m partial.Describable) int64 {
	n, _ := m.Size()
	return n
}

func addBlobs(a ocitest.Artifact, blobs map[v1.Hash]int64) {
	for _, b := range a.Blobs {
		h, n, _ := v1.SHA256(bytes.NewReader(b))
		blobs[h] = n
	}
}

func collect(t testing.TB, idx v1.ImageIndex, f *fixture, blobs map[v1.Hash]int64) {
	t.Helper()
	d, _ := idx.Digest()
	f.imageManifests = append(f.imageManifests, d)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range im.Manifests {
		if c.MediaType.IsIndex() {
			child, err := idx.ImageIndex(c.Digest)
			if err != nil {
				t.Fatal(err)
			}
			collect(t, child, f, blobs)
			continue
		}
		img, err := idx.Image(c.Digest)
		if err != nil {
			t.Fatal(err)
		}
		f.imageManifests = append(f.imageManifests, c.Digest)
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		blobs[m.Config.Digest] = m.Config.Size
		for _, l := range m.Layers {
			blobs[l.Digest] = l.Size
		}
	}
}

// has asks the registry directly (plain HTTP, no copier code) whether repo has a manifest or blob.
func has(t testing.TB, host, repo string, kind string, d v1.Hash) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, fmt.Sprintf("http://%s/v2/%s/%s/%s", host, repo, kind, d), nil)
	req.Header.Set("Accept", strings.Join([]string{string(types.OCIImageIndex), string(types.OCIManifestSchema1),
		string(types.DockerManifestList), string(types.DockerManifestSchema2)}, ","))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("HEAD %s: %v", req.URL, err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// tagDigest returns what tag points at in host/repo, or "" if nothing.
func tagDigest(t testing.TB, host, repo, tag string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, repo, tag), nil)
	req.Header.Set("Accept", strings.Join([]string{string(types.OCIImageIndex), string(types.OCIManifestSchema1),
		string(types.DockerManifestList), string(types.DockerManifestSchema2)}, ","))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("HEAD %s: %v", req.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// missing lists what of f is not in host/repo.
func (f *fixture) missing(t testing.TB, host, repo string) []string {
	t.Helper()
	var out []string
	for _, d := range f.manifests {
		if !has(t, host, repo, "manifests", d) {
			out = append(out, "manifest "+d.String())
		}
	}
	for _, d := range f.blobs {
		if !has(t, host, repo, "blobs", d) {
			out = append(out, "blob "+d.String())
		}
	}
	for tag, d := range f.cosignTags {
		if got := tagDigest(t, host, repo, tag); got != d.String() {
			out = append(out, fmt.Sprintf("tag %s = %q, want %s", tag, got, d))
		}
	}
	return out
}

// writeRecorder wraps a registry handler and records every request that could change it.
type writeRecorder struct {
	mu     sync.Mutex
	writes []string
}

func (w *writeRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.mu.Lock()
			w.writes = append(w.writes, r.Method+" "+r.URL.Path)
			w.mu.Unlock()
		}
		h.ServeHTTP(rw, r)
	})
}

func (w *writeRecorder) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.writes)
}
