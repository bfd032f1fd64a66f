package ocicopy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/ocicopy"
)

// A layer bigger than what one attempt can send still arrives: the link to the target breaks
// every cutEvery bytes, so an upload that starts over from zero on each attempt never gets past
// cutEvery, whatever its attempt budget. Resumed at the offset the target reports (upload status
// GET, then chunked PATCHes from there), every attempt adds to what the target already holds.
func TestCopyResumesLargeBlobUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("moves a large layer several times over")
	}
	const (
		layer    = 256 << 20
		cutEvery = 64 << 20
		chunk    = 16 << 20
	)
	dev, devAuth := startECR(t, "111111111111")
	prod, prodAuth := startECR(t, "333333333333")
	start := time.Now()
	f := pushFixture(t, dev.Host(), "team/big", 31, pushOpts{single: true, platforms: 1, layers: 1, layerSize: layer, noReferrers: true, auth: devAuth})
	t.Logf("pushed a %d MiB layer in %v", layer>>20, time.Since(start).Round(time.Millisecond))
	// Each attempt gets through at least cutEvery-chunk bytes: enough attempts for the layer,
	// and far fewer than a restart from zero would need (it never finishes).
	attempts := layer/(cutEvery-chunk) + 2
	tests := []struct {
		name string
		opts []ocicopy.Option
	}{
		{name: "source read from the offset (range request)"},
		{name: "client verification re-reads the start to hash it", opts: []ocicopy.Option{ocicopy.WithClientVerification()}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			link := ocitest.NewFaultProxy(t, prod.Host(), ocitest.Faults{CutUploadsEvery: cutEvery})
			repo := fmt.Sprintf("team/big%d", i)
			start := time.Now()
			res, err := ocicopy.Copy(context.Background(), f.ref(), link.Host+"/"+repo, append([]ocicopy.Option{
				ocicopy.WithAuth(dev.Host(), devAuth), ocicopy.WithAuth(link.Host, prodAuth),
				ocicopy.WithChunkSize(chunk),
				ocicopy.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: attempts}),
			}, tc.opts...)...)
			cuts := link.Counts().CutUploads
			t.Logf("copy: %v, %d bytes moved, %d cuts", time.Since(start).Round(time.Millisecond), res.BytesMoved, cuts)
			if err != nil {
				t.Fatalf("Copy with the link cut every %d MiB: %v", cutEvery>>20, err)
			}
			if res.Digest != f.digest || res.BlobsCopied != len(f.blobs) {
				t.Errorf("copied %d of %d blobs, digest %s, want %s", res.BlobsCopied, len(f.blobs), res.Digest, f.digest)
			}
			if cuts < layer/cutEvery-1 {
				t.Errorf("the link was cut %d times, want at least %d: the test did not exercise resumption", cuts, layer/cutEvery-1)
			}
			// Resumed, not restarted: what was sent is the layer plus at most one chunk per cut.
			if limit := f.blobBytes + cuts*chunk; res.BytesMoved > limit {
				t.Errorf("moved %d bytes for %d bytes of blobs (limit %d): uploads restarted instead of resuming", res.BytesMoved, f.blobBytes, limit)
			}
		})
	}
}

// The promoter's case: each copy is one attempt (one invocation that dies when the link breaks),
// and the next invocation runs a new copy. With the sessions kept between copies, each copy
// resumes the layer where the target got to; without them every copy starts it over and none
// ever finishes.
func TestCopyResumesAcrossCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("moves a large layer several times over")
	}
	const (
		layer    = 256 << 20
		cutEvery = 64 << 20
		chunk    = 16 << 20
	)
	dev, devAuth := startECR(t, "111111111111")
	prod, prodAuth := startECR(t, "333333333333")
	f := pushFixture(t, dev.Host(), "team/big", 32, pushOpts{single: true, platforms: 1, layers: 1, layerSize: layer, noReferrers: true, auth: devAuth})
	copies := layer/(cutEvery-chunk) + 2 // the attempt budget: far below a restart's need (never)

	tests := []struct {
		name     string
		sessions *ocicopy.MemoryUploadSessions
		finishes bool
	}{
		{name: "sessions kept between copies", sessions: &ocicopy.MemoryUploadSessions{}, finishes: true},
		{name: "no sessions: every copy starts over"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			link := ocitest.NewFaultProxy(t, prod.Host(), ocitest.Faults{CutUploadsEvery: cutEvery})
			opts := []ocicopy.Option{
				ocicopy.WithAuth(dev.Host(), devAuth), ocicopy.WithAuth(link.Host, prodAuth), ocicopy.WithChunkSize(chunk),
				ocicopy.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 1}), // one attempt per copy
			}
			if tc.sessions != nil {
				opts = append(opts, ocicopy.WithUploadSessions(tc.sessions))
			}
			dst := fmt.Sprintf("%s/team/across%d", link.Host, i)
			var moved int64
			var err error
			n := 0
			for n < copies {
				n++
				var res ocicopy.Result
				res, err = ocicopy.Copy(context.Background(), f.ref(), dst, opts...)
				moved += res.BytesMoved
				if err == nil {
					break
				}
			}
			cuts := link.Counts().CutUploads
			t.Logf("%d copies, %d bytes moved, %d cuts, last error: %v", n, moved, cuts, err)
			if !tc.finishes {
				if err == nil {
					t.Fatalf("finished in %d copies without sessions: the link did not break the layer", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("not finished after %d copies: %v", n, err)
			}
			if n < 2 {
				t.Errorf("finished in one copy: the test did not exercise resumption")
			}
			if limit := f.blobBytes + cuts*chunk; moved > limit {
				t.Errorf("moved %d bytes over %d copies for %d bytes of blobs (limit %d): copies restarted the layer", moved, n, f.blobBytes, limit)
			}
			if tc.sessions.Len() != 0 {
				t.Errorf("%d upload sessions left in the store after the blob was committed", tc.sessions.Len())
			}
		})
	}
}
