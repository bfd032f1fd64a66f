package ocicopy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestStatusRetrier(t *testing.T) {
	cases := []struct {
		name       string
		method     string
		body       string
		failures   int    // answers of status before a 200
		status     int    // the failing status
		retryAfter string // Retry-After on failures
		wantStatus int
		wantCalls  int32
		minElapsed time.Duration
	}{
		{"HEAD after two 503s", http.MethodHead, "", 2, http.StatusServiceUnavailable, "", 200, 3, 0},
		{"GET after a 429 honours Retry-After", http.MethodGet, "", 1, http.StatusTooManyRequests, "1", 200, 2, time.Second},
		{"commit PUT without body after a 500", http.MethodPut, "", 1, http.StatusInternalServerError, "", 200, 2, 0},
		{"gives up after Steps attempts", http.MethodGet, "", 10, http.StatusBadGateway, "", http.StatusBadGateway, 4, 0},
		{"404 is an answer, not a fault", http.MethodGet, "", 1, http.StatusNotFound, "", http.StatusNotFound, 1, 0},
		{"a body is never re-sent here", http.MethodPatch, "blob bytes", 1, http.StatusServiceUnavailable, "", http.StatusServiceUnavailable, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if calls.Add(1) <= int32(tc.failures) {
					if tc.retryAfter != "" {
						w.Header().Set("Retry-After", tc.retryAfter)
					}
					w.WriteHeader(tc.status)
					return
				}
				w.WriteHeader(http.StatusOK)
			}))
			defer s.Close()
			rt := &statusRetrier{inner: http.DefaultTransport, backoff: remote.Backoff{Duration: time.Millisecond, Factor: 2, Steps: 4}}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, s.URL, body)
			start := time.Now()
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || calls.Load() != tc.wantCalls {
				t.Errorf("status %d after %d calls, want %d after %d", resp.StatusCode, calls.Load(), tc.wantStatus, tc.wantCalls)
			}
			if el := time.Since(start); el < tc.minElapsed {
				t.Errorf("returned after %v, want at least %v", el, tc.minElapsed)
			}
		})
	}
}

func TestRetryable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"503", &transport.Error{StatusCode: 503}, true},
		{"429 code", &transport.Error{StatusCode: 429, Errors: []transport.Diagnostic{{Code: transport.TooManyRequestsErrorCode}}}, true},
		{"digest invalid after a damaged transfer", &transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.DigestInvalidErrorCode}}}, true},
		{"denied", &transport.Error{StatusCode: 403, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode}}}, false},
		{"unauthorized", &transport.Error{StatusCode: 401}, false},
		{"cut mid-body", fmt.Errorf("copy: %w", io.ErrUnexpectedEOF), true},
		{"reset", &url.Error{Op: "Patch", URL: "x", Err: syscall.ECONNRESET}, true},
		{"short blob", fmt.Errorf("x: %w", errShortBlob), true},
		{"plain error", errors.New("manifest is not valid JSON"), false},
	}
	for _, tc := range cases {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("%s: retryable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestCheckRedirect(t *testing.T) {
	cases := []struct {
		from, to string
		ok       bool
	}{
		{"https://111111111111.dkr.ecr.us-east-1.amazonaws.com/v2/a/blobs/x", "https://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com/x", true},
		{"https://registry.example/v2/a/blobs/x", "https://registry.example/other", true},
		{"https://registry.example/v2/a/blobs/x", "http://169.254.169.254/latest/meta-data/", false},
		{"https://registry.example/v2/a/blobs/x", "http://10.0.0.5/internal", false},
		{"https://registry.example/v2/a/blobs/x", "http://127.0.0.1:8080/", false},
		{"http://127.0.0.1:5000/v2/a/blobs/x", "http://127.0.0.1:9000/blob", true},
	}
	for _, tc := range cases {
		from, _ := http.NewRequest(http.MethodGet, tc.from, nil)
		to, _ := http.NewRequest(http.MethodGet, tc.to, nil)
		err := checkRedirect(to, []*http.Request{from})
		if (err == nil) != tc.ok {
			t.Errorf("redirect %s -> %s: err = %v, want ok=%v", tc.from, tc.to, err, tc.ok)
		}
	}
}
