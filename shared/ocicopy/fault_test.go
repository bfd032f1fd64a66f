package ocicopy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/ocicopy"
)

// tagAudit sits inside the target registry and, at the moment the image tag is written,
// checks that every manifest and blob of the fixture is already there.
type tagAudit struct {
	repo, tag string
	f         *fixture

	mu       sync.Mutex
	tagPuts  int
	problems []string
}

func (a *tagAudit) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == fmt.Sprintf("/v2/%s/manifests/%s", a.repo, a.tag) {
			missing := a.missing(h)
			a.mu.Lock()
			a.tagPuts++
			if len(missing) > 0 {
				a.problems = append(a.problems, fmt.Sprintf("tag written while %d items were missing, e.g. %s", len(missing), missing[0]))
			}
			a.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// missing asks the registry handler itself, bypassing the network and any proxy.
func (a *tagAudit) missing(h http.Handler) []string {
	var out []string
	check := func(kind string, d v1.Hash) {
		req := httptest.NewRequest(http.MethodHead, fmt.Sprintf("/v2/%s/%s/%s", a.repo, kind, d), nil)
		req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			out = append(out, kind+" "+d.String())
		}
	}
	for _, d := range a.f.manifests {
		check("manifests", d)
	}
	for _, d := range a.f.blobs {
		check("blobs", d)
	}
	return out
}

// watchTag polls the target (directly, not through the proxy) and, the first time the tag is
// visible, records what was still missing. stop waits (up to 5 s) for that first sighting: the
// copy has returned by then, so the tag must be visible.
func watchTag(t *testing.T, host, repo string, f *fixture) (stop func() (seen bool, missing []string)) {
	done := make(chan struct{})
	var seen bool
	var missing []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		deadline := time.Time{}
		stopped := done
		for {
			select {
			case <-stopped:
				deadline = time.Now().Add(5 * time.Second)
				stopped = nil
			default:
			}
			if !deadline.IsZero() && time.Now().After(deadline) {
				return
			}
			req, _ := http.NewRequest(http.MethodHead, fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, repo, f.tag), nil)
			req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					seen = true
					missing = f.missing(t, host, repo)
					return
				}
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	return func() (bool, []string) {
		close(done)
		wg.Wait()
		return seen, missing
	}
}

func TestCopyThroughFaultInjectingProxies(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection copies a few MB many times over")
	}
	src := ocitest.NewRegistry(t, nil)
	audit := &tagAudit{repo: "prod/app", tag: gitSHA}
	dst := ocitest.NewRegistry(t, audit.wrap)
	f := pushFixture(t, src.Host, "dev/app", 8, pushOpts{platforms: 2, layers: 5, layerSize: 200 << 10})
	audit.f = f

	faults := ocitest.Faults{ServerErrors: 0.12, Throttle: 0.12, Cut: 0.3, MaxPerRequest: 3}
	faults.Seed = 11
	srcProxy := ocitest.NewFaultProxy(t, src.Host, faults)
	faults.Seed = 12
	dstProxy := ocitest.NewFaultProxy(t, dst.Host, faults)

	stop := watchTag(t, dst.Host, "prod/app", f)
	res, err := ocicopy.Copy(context.Background(), srcProxy.Host+"/dev/app@"+f.digest.String(), dstProxy.Host+"/prod/app",
		ocicopy.WithTag(f.tag), fastRetry, ocicopy.WithJobs(4))
	seen, missingAtSight := stop()
	if err != nil {
		t.Fatalf("Copy through faults: %v (faults: src %+v, dst %+v)", err, srcProxy.Counts(), dstProxy.Counts())
	}
	if res.Digest != f.digest {
		t.Errorf("digest %s, want %s", res.Digest, f.digest)
	}
	if m := f.missing(t, dst.Host, "prod/app"); len(m) > 0 {
		t.Errorf("target is missing %v", m)
	}
	sc, dc := srcProxy.Counts(), dstProxy.Counts()
	t.Logf("faults injected: source %+v, target %+v; result %+v", sc, dc, res)
	if sc.CutDownloads == 0 || dc.CutUploads == 0 || sc.ServerErrors+dc.ServerErrors == 0 || sc.Throttled+dc.Throttled == 0 {
		t.Errorf("the test did not exercise every fault kind: source %+v, target %+v", sc, dc)
	}
	if res.BytesMoved <= f.blobBytes {
		t.Errorf("moved %d bytes for %d bytes of blobs: cut transfers should have been re-sent", res.BytesMoved, f.blobBytes)
	}
	if !seen {
		t.Error("the watcher never saw the tag")
	}
	if len(missingAtSight) > 0 {
		t.Errorf("the tag was visible while %d items were missing: %v", len(missingAtSight), missingAtSight)
	}
	audit.mu.Lock()
	defer audit.mu.Unlock()
	if audit.tagPuts == 0 || len(audit.problems) > 0 {
		t.Errorf("tag writes %d, problems %v", audit.tagPuts, audit.problems)
	}
}

// corrupting flips one byte in every blob download: the copier does not hash blobs itself by
// default, so this proves the target registry's digest check catches what the copier lets through.
func corrupting(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if len(body) > 10 {
				body[len(body)/2] ^= 0xff
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestCopyRefusesCorruptBlobs(t *testing.T) {
	// go-containerregistry's registry reports digest mismatches on the standard logger.
	log.SetOutput(io.Discard)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	cases := []struct {
		name    string
		opts    []ocicopy.Option
		wantErr string
	}{
		{"target registry verifies", nil, "DIGEST_INVALID"},
		{"client verifies too", []ocicopy.Option{ocicopy.WithClientVerification()}, "does not hash to its digest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := ocitest.NewRegistry(t, nil)
			f := pushFixture(t, src.Host, "dev/app", 9, pushOpts{noReferrers: true})
			src.Server.Config.Handler = corrupting(src.Server.Config.Handler)
			dst := ocitest.NewRegistry(t, nil)
			_, err := ocicopy.Copy(context.Background(), f.ref(), dst.Host+"/prod/app", append(tc.opts, fastRetry)...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
			if got := tagDigest(t, dst.Host, "prod/app", f.tag); got != "" {
				t.Errorf("tag written despite corrupt content: %s", got)
			}
		})
	}
}

// A target that stores the image but then serves something else must fail the copy loudly.
func TestCopyVerificationFailsLoudly(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(r *http.Request, rec *httptest.ResponseRecorder, digest string) bool
	}{
		{"tag serves other bytes", func(r *http.Request, rec *httptest.ResponseRecorder, _ string) bool {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/"+gitSHA) {
				rec.Body.WriteString(" ")
				rec.Header().Del("Content-Length")
				return true
			}
			return false
		}},
		{"digest HEAD reports another digest", func(r *http.Request, rec *httptest.ResponseRecorder, digest string) bool {
			if r.Method == http.MethodHead && strings.HasSuffix(r.URL.Path, "/manifests/"+digest) && rec.Code == http.StatusOK {
				rec.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("e", 64))
				return true
			}
			return false
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := ocitest.NewRegistry(t, nil)
			f := pushFixture(t, src.Host, "dev/app", uint64(60+i), pushOpts{noReferrers: true})
			var after atomic.Bool // tamper only once the tag is there, i.e. during verification
			dst := ocitest.NewRegistry(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, r)
					if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/"+gitSHA) {
						after.Store(true)
					}
					if after.Load() {
						tc.tamper(r, rec, f.digest.String())
					}
					for k, v := range rec.Header() {
						w.Header()[k] = v
					}
					w.WriteHeader(rec.Code)
					_, _ = w.Write(rec.Body.Bytes())
				})
			})
			_, err := ocicopy.Copy(context.Background(), f.ref(), dst.Host+"/prod/app", fastRetry)
			if !errors.Is(err, ocicopy.ErrVerification) {
				t.Fatalf("err = %v, want ErrVerification", err)
			}
			t.Log(err)
		})
	}
}
