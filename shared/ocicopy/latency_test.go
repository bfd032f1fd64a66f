package ocicopy_test

import (
	"context"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/ocicopy"
)

// Over a WAN a copy's length is its chain of dependent round trips, not its request count.
// With a large delay on every request and tiny blobs, elapsed / delay counts that chain: the
// registry handshakes, the image read with the target tag check, one round trip per manifest
// level, two per blob (HEAD, POST and source GET at once, then the PUT), the manifest PUTs,
// the tag, and the verification, whose HEAD and GET go out together.
func TestCopyRoundTripsOverLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of injected latency")
	}
	const rtt = 100 * time.Millisecond
	src := ocitest.NewRegistry(t, nil)
	dst := ocitest.NewRegistry(t, nil)
	f := pushFixture(t, src.Host, "dev/app", 21, pushOpts{platforms: 2, layers: 3, layerSize: 4 << 10, noReferrers: true})
	srcProxy := ocitest.NewFaultProxy(t, src.Host, ocitest.Faults{Latency: rtt})
	dstProxy := ocitest.NewFaultProxy(t, dst.Host, ocitest.Faults{Latency: rtt})

	tests := []struct {
		name string
		// most is the longest chain of round trips the copy may take. Fresh: handshakes (1),
		// index and tag (1), platform manifests with their target HEADs (1), blobs (2),
		// platform PUTs (1), index PUT (1), tag HEAD and PUT (2), verification (1) = 10.
		// Again: handshakes, index and tag, platform manifests with HEADs, verification = 4.
		// The bounds leave room for a loaded machine's CPU time; before the copier sent
		// independent requests together the chains were 18 and 12.
		most       float64
		wantCopied bool
	}{
		{name: "fresh target", most: 13, wantCopied: true},
		{name: "re-promotion", most: 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res, err := ocicopy.Copy(context.Background(), srcProxy.Host+"/dev/app:"+f.tag, dstProxy.Host+"/prod/app", ocicopy.WithoutReferrers())
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("Copy: %v", err)
			}
			if got := res.BlobsCopied > 0; got != tc.wantCopied {
				t.Fatalf("blobs copied %d, want copied=%v", res.BlobsCopied, tc.wantCopied)
			}
			trips := elapsed.Seconds() / rtt.Seconds()
			t.Logf("%s: %v, %.1f round trips of %v", tc.name, elapsed.Round(time.Millisecond), trips, rtt)
			if trips > tc.most {
				t.Errorf("%s took %.1f round trips of %v (%v), want at most %.1f", tc.name, trips, rtt, elapsed.Round(time.Millisecond), tc.most)
			}
		})
	}
}
