package ocicopy

import (
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// statusRetrier retries requests without a body (GET, HEAD, the POST that starts an upload, the
// PUT that commits one) when the registry answers 5xx, 429 or 408, honouring Retry-After.
//
// go-containerregistry retries a failed upload as a whole, re-reading the blob from the source;
// and it turns its own per-request retries off inside uploads. Retrying the small requests here,
// under its transport, means a throttled commit costs one more small request, not a re-transfer.
// Requests with a body are left to go-containerregistry's whole-upload retry.
type statusRetrier struct {
	inner   http.RoundTripper
	backoff remote.Backoff
}

// maxRetryAfter caps how long a Retry-After header can make us wait.
const maxRetryAfter = 30 * time.Second

func (s *statusRetrier) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0 {
		return s.inner.RoundTrip(req)
	}
	wait := s.backoff.Duration
	for attempt := 1; ; attempt++ {
		resp, err := s.inner.RoundTrip(req)
		if err != nil || !slices.Contains(retryStatusCodes, resp.StatusCode) || attempt >= s.backoff.Steps {
			return resp, err
		}
		d := jitter(wait, s.backoff.Jitter)
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra >= 0 {
			d = max(d, min(time.Duration(ra)*time.Second, maxRetryAfter))
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		t := time.NewTimer(d)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
		wait = time.Duration(float64(wait) * s.backoff.Factor)
	}
}

func jitter(d time.Duration, j float64) time.Duration {
	if j <= 0 {
		return d
	}
	return d + time.Duration(rand.Float64()*j*float64(d))
}
