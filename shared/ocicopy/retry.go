package ocicopy

import (
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// statusRetrier retries requests without a body (GET, HEAD, the POST that starts an upload)
// when the registry answers 5xx, 429 or 408, honouring Retry-After (which go-containerregistry's
// retry transport ignores). It sits under go-containerregistry's transports, so manifest reads
// and the small steps of an upload are retried on their own; go-containerregistry's retry
// transport still retries connection errors, and its manifest PUT retry re-sends manifests.
// Requests with a body are never re-sent here: a blob upload is retried as a whole, re-reading
// the source (copier.retry).
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
		if err != nil || !retryStatus(resp.StatusCode) || attempt >= s.backoff.Steps {
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
