package ocicopy_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/ocicopy"
)

// Two registries stand for two accounts (dev and prod).
func TestCopyBetweenRegistries(t *testing.T) {
	cases := []struct {
		name string
		po   pushOpts
	}{
		{"oci index, two platforms, referrers and cosign tags", pushOpts{}},
		{"docker manifest list", pushOpts{docker: true}},
		{"nested index", pushOpts{nested: true}},
		{"no referrers", pushOpts{noReferrers: true}},
		{"single-platform image, no index", pushOpts{single: true, layers: 2, layerSize: 32 << 10}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := ocitest.NewRegistry(t, nil)
			dst := ocitest.NewRegistry(t, nil)
			f := pushFixture(t, src.Host, "dev/app", uint64(100+i), tc.po)
			ctx := context.Background()

			res, err := ocicopy.Copy(ctx, f.repo.Digest(f.digest.String()).String(), dst.Host+"/prod/app", ocicopy.WithTag(f.tag))
			if err != nil {
				t.Fatalf("Copy: %v", err)
			}
			if res.Digest != f.digest {
				t.Errorf("Result.Digest = %s, want the source digest %s", res.Digest, f.digest)
			}
			if got := tagDigest(t, dst.Host, "prod/app", f.tag); got != f.digest.String() {
				t.Errorf("target tag %s = %q, want %s", f.tag, got, f.digest)
			}
			if m := f.missing(t, dst.Host, "prod/app"); len(m) > 0 {
				t.Errorf("target is missing %d items, first: %v", len(m), m[:min(3, len(m))])
			}
			if res.BlobsCopied != len(f.blobs) || res.BytesMoved != f.blobBytes || res.BlobsSkipped != 0 {
				t.Errorf("copied %d blobs (%d bytes, %d skipped), want %d blobs (%d bytes, 0 skipped)",
					res.BlobsCopied, res.BytesMoved, res.BlobsSkipped, len(f.blobs), f.blobBytes)
			}
			if res.ManifestsPushed != len(f.manifests) {
				t.Errorf("pushed %d manifests, want %d", res.ManifestsPushed, len(f.manifests))
			}
			wantReferrers := len(f.referrers) + len(f.cosignTags)
			if res.Referrers != wantReferrers || res.ReferrersCopied != wantReferrers {
				t.Errorf("referrers found %d, copied %d; want %d", res.Referrers, res.ReferrersCopied, wantReferrers)
			}
			if !slices.Contains(res.TagsPushed, dst.Host+"/prod/app:"+f.tag) || len(res.TagsPushed) != 1+len(f.cosignTags) {
				t.Errorf("TagsPushed = %v, want the image tag and %d cosign tags", res.TagsPushed, len(f.cosignTags))
			}
			if len(f.referrers) > 0 {
				assertReferrers(t, dst.Host+"/prod/app", f.digest, f.referrers[:2])
			}

			// A redelivered promotion moves nothing and writes nothing.
			again, err := ocicopy.Copy(ctx, f.repo.Digest(f.digest.String()).String(), dst.Host+"/prod/app", ocicopy.WithTag(f.tag))
			if err != nil {
				t.Fatalf("second Copy: %v", err)
			}
			if again.BytesMoved != 0 || again.BlobsCopied != 0 || again.ManifestsPushed != 0 || len(again.TagsPushed) != 0 {
				t.Errorf("re-copy moved %d bytes, %d blobs, pushed %d manifests and tags %v; want nothing",
					again.BytesMoved, again.BlobsCopied, again.ManifestsPushed, again.TagsPushed)
			}
			if again.Referrers != wantReferrers || again.Digest != f.digest {
				t.Errorf("re-copy found %d referrers (want %d), digest %s", again.Referrers, wantReferrers, again.Digest)
			}
		})
	}
}

func assertReferrers(t *testing.T, repo string, subject v1.Hash, want []v1.Hash, opts ...remote.Option) {
	t.Helper()
	d, err := name.NewDigest(repo + "@" + subject.String())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(d, opts...)
	if err != nil {
		t.Fatalf("target referrers of %s: %v", subject, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []v1.Hash
	for _, m := range im.Manifests {
		got = append(got, m.Digest)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("target referrers API for %s lacks %s (has %v)", subject, w, got)
		}
	}
}

func TestCopyTagConflictWritesNothing(t *testing.T) {
	src := ocitest.NewRegistry(t, nil)
	rec := &writeRecorder{}
	dst := ocitest.NewRegistry(t, rec.wrap)
	f := pushFixture(t, src.Host, "dev/app", 1, pushOpts{})
	other := pushFixture(t, dst.Host, "prod/app", 2, pushOpts{noReferrers: true}) // same tag, another image
	before := len(rec.list())

	_, err := ocicopy.Copy(context.Background(), f.ref(), dst.Host+"/prod/app")
	if !errors.Is(err, ocicopy.ErrTagConflict) {
		t.Fatalf("Copy over a tag on another digest: err = %v, want ErrTagConflict", err)
	}
	var tc *ocicopy.TagConflictError
	if !errors.As(err, &tc) || tc.Existing != other.digest || tc.Source != f.digest || !tc.Preflight {
		t.Fatalf("conflict error = %#v, want existing %s, source %s, preflight", tc, other.digest, f.digest)
	}
	for _, s := range []string{other.digest.String(), f.digest.String(), "nothing was written"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if w := rec.list()[before:]; len(w) > 0 {
		t.Errorf("a refused copy wrote to the target: %v", w)
	}
	if got := tagDigest(t, dst.Host, "prod/app", f.tag); got != other.digest.String() {
		t.Errorf("tag now %s, want it left on %s", got, other.digest)
	}
}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// A copy that dies halfway leaves no tag, and the next run finishes the job without resending what arrived.
func TestCopyCompletesAfterPartialFailure(t *testing.T) {
	src := ocitest.NewRegistry(t, nil)
	f := pushFixture(t, src.Host, "dev/app", 3, pushOpts{platforms: 2, layers: 4, layerSize: 32 << 10})
	var (
		failing   atomic.Bool
		uploads   atomic.Int32
		mu        sync.Mutex
		committed = map[string]int{} // blob digest → run that committed it
		run       = 1
	)
	failing.Store(true)
	dst := ocitest.NewRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if (r.Method == http.MethodPatch || r.Method == http.MethodPut) && r.ContentLength > 0 && strings.Contains(r.URL.Path, "/blobs/uploads/") {
				uploads.Add(1)
			}
			// After three blob uploads, the target refuses everything as if permissions broke.
			if failing.Load() && uploads.Load() > 3 && r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED","message":"injected"}]}`))
				return
			}
			sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
			h.ServeHTTP(sw, r)
			if d := r.URL.Query().Get("digest"); r.Method == http.MethodPut && d != "" && sw.code == http.StatusCreated {
				mu.Lock()
				if prev, ok := committed[d]; ok {
					t.Errorf("blob %s committed in run %d and again in run %d", d, prev, run)
				}
				committed[d] = run
				mu.Unlock()
			}
		})
	})
	ctx := context.Background()
	_, err := ocicopy.Copy(ctx, f.ref(), dst.Host+"/prod/app", ocicopy.WithJobs(1))
	if err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Fatalf("Copy through a registry that denies writes: err = %v, want DENIED", err)
	}
	if got := tagDigest(t, dst.Host, "prod/app", f.tag); got != "" {
		t.Fatalf("tag visible after a failed copy: %s", got)
	}
	mu.Lock()
	first := len(committed)
	run = 2
	mu.Unlock()
	if first == 0 {
		t.Fatal("the first run committed no blob: the test does not test a partial copy")
	}
	failing.Store(false)
	res, err := ocicopy.Copy(ctx, f.ref(), dst.Host+"/prod/app", ocicopy.WithJobs(1))
	if err != nil {
		t.Fatalf("second Copy: %v", err)
	}
	if res.BlobsCopied+first != len(f.blobs) || res.BytesMoved >= f.blobBytes {
		t.Errorf("second run copied %d blobs (%d bytes) after %d in the first; want %d in all",
			res.BlobsCopied, res.BytesMoved, first, len(f.blobs))
	}
	if m := f.missing(t, dst.Host, "prod/app"); len(m) > 0 {
		t.Errorf("target is missing %v", m)
	}
	if got := tagDigest(t, dst.Host, "prod/app", f.tag); got != f.digest.String() {
		t.Errorf("tag = %q, want %s", got, f.digest)
	}
}

func TestCopySameRegistryMounts(t *testing.T) {
	reg := ocitest.NewRegistry(t, nil)
	f := pushFixture(t, reg.Host, "dev/app", 4, pushOpts{noReferrers: true})
	res, err := ocicopy.Copy(context.Background(), f.ref(), reg.Host+"/prod/app")
	if err != nil {
		t.Fatal(err)
	}
	// go-containerregistry's in-memory registry keeps blobs per registry, not per repository,
	// so the HEAD before the mount already finds them: no bytes either way.
	if res.BytesMoved != 0 || res.BlobsCopied != 0 || res.BlobsMounted+res.BlobsSkipped != len(f.blobs) {
		t.Errorf("same-registry copy moved %d bytes (%d copied, %d mounted, %d skipped), want 0 bytes for %d blobs",
			res.BytesMoved, res.BlobsCopied, res.BlobsMounted, res.BlobsSkipped, len(f.blobs))
	}
	if got := tagDigest(t, reg.Host, "prod/app", f.tag); got != f.digest.String() {
		t.Errorf("tag = %s, want %s", got, f.digest)
	}
}

// requireBasic puts a registry behind HTTP basic auth, as ECR does ("AWS", <token>).
func requireBasic(user, pass string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"basic auth required"}]}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestCopyCredentials(t *testing.T) {
	src := ocitest.NewRegistry(t, nil)
	f := pushFixture(t, src.Host, "dev/app", 5, pushOpts{noReferrers: true})
	// Protect the source after pushing the fixture.
	src.Server.Config.Handler = requireBasic("AWS", "src-token")(src.Server.Config.Handler)
	dst := ocitest.NewRegistry(t, requireBasic("AWS", "dst-token"))
	ecr := func(tok string) authn.Authenticator {
		return authn.FromConfig(authn.AuthConfig{Username: "AWS", Password: tok})
	}
	ctx := context.Background()
	cases := []struct {
		name    string
		opts    []ocicopy.Option
		wantErr string
	}{
		{"no credentials", nil, "registry " + src.Host + " refused the credentials"},
		{"source only", []ocicopy.Option{ocicopy.WithAuth(src.Host, ecr("src-token"))}, "registry " + dst.Host + " refused the credentials"},
		{"wrong target token", []ocicopy.Option{ocicopy.WithAuth(src.Host, ecr("src-token")), ocicopy.WithAuth(dst.Host, ecr("nope"))}, "registry " + dst.Host + " refused the credentials"},
		{"per-registry tokens", []ocicopy.Option{ocicopy.WithAuth(src.Host, ecr("src-token")), ocicopy.WithAuth(dst.Host, ecr("dst-token"))}, ""},
		{"keychain", []ocicopy.Option{ocicopy.WithKeychain(keychain{src.Host: ecr("src-token"), dst.Host: ecr("dst-token")})}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ocicopy.Copy(ctx, f.ref(), dst.Host+"/prod/app", tc.opts...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || res.Digest != f.digest {
				t.Fatalf("Copy = %s, %v; want %s", res.Digest, err, f.digest)
			}
		})
	}
}

type keychain map[string]authn.Authenticator

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := k[r.RegistryStr()]; ok {
		return a, nil
	}
	return authn.Anonymous, nil
}

func TestCopyReferenceForms(t *testing.T) {
	src := ocitest.NewRegistry(t, nil)
	dst := ocitest.NewRegistry(t, nil)
	f := pushFixture(t, src.Host, "dev/app", 6, pushOpts{noReferrers: true})
	byDigest := f.repo.Digest(f.digest.String()).String()
	ctx := context.Background()
	cases := []struct {
		name, src, dst string
		opts           []ocicopy.Option
		wantTag        string // tag expected on the digest in the target; "" = none
		wantErr        string
	}{
		{"tag to bare repository keeps the source tag", f.ref(), dst.Host + "/a", nil, f.tag, ""},
		{"digest to bare repository tags nothing", byDigest, dst.Host + "/b", nil, "", ""},
		{"digest with WithTag", byDigest, dst.Host + "/c", []ocicopy.Option{ocicopy.WithTag("v1")}, "v1", ""},
		{"digest to an explicit tag", byDigest, dst.Host + "/d:release", nil, "release", ""},
		{"tag and digest: the digest wins", f.ref() + "@" + f.digest.String(), dst.Host + "/e", nil, "", ""},
		{"target digest must match", byDigest, dst.Host + "/f@sha256:" + strings.Repeat("0", 64), nil, "", "is not the source digest"},
		{"target digest matching", byDigest, dst.Host + "/g@" + f.digest.String(), nil, "", ""},
		{"two different tags", byDigest, dst.Host + "/h:one", []ocicopy.Option{ocicopy.WithTag("two")}, "", "disagree"},
		{"invalid tag", byDigest, dst.Host + "/i", []ocicopy.Option{ocicopy.WithTag("not a tag")}, "", "not a valid tag"},
		{"unparsable source", "UPPER CASE", dst.Host + "/j", nil, "", "source"},
		{"missing source", src.Host + "/dev/none:latest", dst.Host + "/k", nil, "", "read source"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ocicopy.Copy(ctx, tc.src, tc.dst, tc.opts...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Digest != f.digest || res.Tag != tc.wantTag {
				t.Errorf("copied %s tagged %q, want %s tagged %q", res.Digest, res.Tag, f.digest, tc.wantTag)
			}
			repo := strings.SplitN(strings.SplitN(strings.TrimPrefix(tc.dst, dst.Host+"/"), ":", 2)[0], "@", 2)[0]
			if !has(t, dst.Host, repo, "manifests", f.digest) {
				t.Errorf("%s lacks %s", repo, f.digest)
			}
			if tc.wantTag != "" {
				if got := tagDigest(t, dst.Host, repo, tc.wantTag); got != f.digest.String() {
					t.Errorf("tag %s = %q", tc.wantTag, got)
				}
			}
		})
	}
}

// A registry under a name that is not loopback: plain HTTP only with WithInsecureRegistry.
// WithTransport (a dialer that resolves the made-up names) stands in for DNS.
func TestCopyInsecureRegistryByName(t *testing.T) {
	src := ocitest.NewRegistry(t, nil)
	dst := ocitest.NewRegistry(t, nil)
	f := pushFixture(t, src.Host, "dev/app", 7, pushOpts{noReferrers: true})
	names := map[string]string{"registry.dev.example:5000": src.Host, "registry.prod.example:5000": dst.Host}
	dialer := &net.Dialer{}
	rt := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if real, ok := names[addr]; ok {
			addr = real
		}
		return dialer.DialContext(ctx, network, addr)
	}}
	srcRef := "registry.dev.example:5000/dev/app:" + f.tag
	cases := []struct {
		name    string
		opts    []ocicopy.Option
		wantErr bool
	}{
		{"https assumed without the option", []ocicopy.Option{ocicopy.WithTransport(rt), fastRetry}, true},
		{"plain HTTP for both hosts", []ocicopy.Option{ocicopy.WithTransport(rt),
			ocicopy.WithInsecureRegistry("registry.dev.example:5000"), ocicopy.WithInsecureRegistry("registry.prod.example:5000")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ocicopy.Copy(context.Background(), srcRef, "registry.prod.example:5000/prod/app", tc.opts...)
			if tc.wantErr {
				if err == nil {
					t.Fatal("copy over plain HTTP to a non-loopback name succeeded without WithInsecureRegistry")
				}
				return
			}
			if err != nil || res.Digest != f.digest {
				t.Fatalf("Copy = %s, %v", res.Digest, err)
			}
			if got := tagDigest(t, dst.Host, "prod/app", f.tag); got != f.digest.String() {
				t.Errorf("tag = %q, want %s", got, f.digest)
			}
		})
	}
}

// Referrer discovery with and without the referrers API, and with a tag list that is complete,
// paginated or forbidden; a complete tag list spares the lookups of tags that do not exist.
func TestCopyReferrerDiscovery(t *testing.T) {
	cases := []struct {
		name     string
		api      bool
		tagList  string // "ok", "paged", "forbidden"
		wantGets int    // GETs of cosign and fallback tags at the source; -1: not checked
	}{
		{"referrers API, tag list", true, "ok", 3},
		{"referrers API, tag list paginated", true, "paged", -1},
		{"no referrers API, tag list", false, "ok", -1},
		{"no referrers API, tag list forbidden", false, "forbidden", -1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tagGets atomic.Int32
			wrap := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasSuffix(r.URL.Path, "/tags/list") {
						switch tc.tagList {
						case "paged":
							w.Header().Set("Link", `</v2/dev/app/tags/list?n=1000&last=x>; rel="next"`)
						case "forbidden":
							w.WriteHeader(http.StatusForbidden)
							return
						}
					}
					if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/sha256-") {
						tagGets.Add(1)
					}
					h.ServeHTTP(w, r)
				})
			}
			newReg := ocitest.NewRegistry
			if !tc.api {
				newReg = ocitest.NewRegistryWithoutReferrersAPI
			}
			src := newReg(t, wrap)
			dst := newReg(t, nil)
			f := pushFixture(t, src.Host, "dev/app", uint64(40+i), pushOpts{})
			tagGets.Store(0)
			res, err := ocicopy.Copy(context.Background(), f.ref(), dst.Host+"/prod/app")
			if err != nil {
				t.Fatal(err)
			}
			if want := len(f.referrers) + len(f.cosignTags); res.Referrers != want {
				t.Errorf("found %d referrers, want %d", res.Referrers, want)
			}
			if m := f.missing(t, dst.Host, "prod/app"); len(m) > 0 {
				t.Errorf("target is missing %v", m)
			}
			if tc.wantGets >= 0 && int(tagGets.Load()) != tc.wantGets {
				t.Errorf("%d GETs of sha256-* tags at the source, want %d (only the cosign tags that exist)", tagGets.Load(), tc.wantGets)
			}
			if !tc.api {
				assertReferrers(t, dst.Host+"/prod/app", f.digest, f.referrers[:2])
			}
		})
	}
}

// The copy died after all content was in but before the tag: the rerun only tags.
func TestCopyCompletesWhenOnlyTheTagIsMissing(t *testing.T) {
	src := ocitest.NewRegistry(t, nil)
	f := pushFixture(t, src.Host, "dev/app", 50, pushOpts{})
	var denyTag atomic.Bool
	denyTag.Store(true)
	dst := ocitest.NewRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if denyTag.Load() && r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/"+gitSHA) {
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED","message":"injected"}]}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ctx := context.Background()
	if _, err := ocicopy.Copy(ctx, f.ref(), dst.Host+"/prod/app"); err == nil {
		t.Fatal("Copy succeeded although the tag was refused")
	}
	if m := f.missing(t, dst.Host, "prod/app"); len(m) > 0 {
		t.Fatalf("content incomplete before the tag step: %v", m)
	}
	denyTag.Store(false)
	res, err := ocicopy.Copy(ctx, f.ref(), dst.Host+"/prod/app")
	if err != nil {
		t.Fatal(err)
	}
	if res.BytesMoved != 0 || res.ManifestsPushed != 0 || !slices.Equal(res.TagsPushed, []string{dst.Host + "/prod/app:" + gitSHA}) {
		t.Errorf("rerun moved %d bytes, pushed %d manifests, tags %v; want only the image tag", res.BytesMoved, res.ManifestsPushed, res.TagsPushed)
	}
}
