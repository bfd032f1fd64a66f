package ocitest

import (
	"errors"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Faults configures a FaultProxy. Rates are probabilities per request, in [0,1].
type Faults struct {
	// ServerErrors answers 500, 502 or 503 without reaching the registry.
	ServerErrors float64
	// Throttle answers 429 TOOMANYREQUESTS.
	Throttle float64
	// Cut drops the connection halfway through a blob download or a blob upload body.
	Cut float64
	// MaxPerRequest caps the faults injected into one request (method and path; upload steps are
	// keyed by digest and size), so a client with enough retries always gets through. 0 means 3.
	MaxPerRequest int
	// Seed makes the fault sequence reproducible for a given request order.
	Seed uint64
	// Latency delays every request by this much before it is answered or forwarded: a
	// round trip over a WAN (cross-region promotion), which loopback registries lack.
	Latency time.Duration
	// Jitter adds a random delay in [0, Jitter) to each request on top of Latency.
	Jitter time.Duration
	// CutUploadsEvery drops the connection each time the blob upload bodies that went through
	// the proxy add up to another multiple of this many bytes: a link that breaks every N MiB,
	// so that no single attempt can send a layer bigger than N. 0 never cuts this way.
	CutUploadsEvery int64
}

// FaultProxy is a reverse proxy in front of a registry that injects faults.
type FaultProxy struct {
	// Host is "127.0.0.1:port" (plain HTTP).
	Host string

	faults Faults
	proxy  *httputil.ReverseProxy

	mu    sync.Mutex
	rng   *rand.Rand
	seen  map[string]int
	kinds map[string]int64 // requests by RequestKind

	serverErrors, throttled, cutDownloads, cutUploads atomic.Int64
	uploaded                                          atomic.Int64 // upload body bytes forwarded, for CutUploadsEvery
}

// FaultCounts reports what a FaultProxy injected.
type FaultCounts struct {
	ServerErrors, Throttled, CutDownloads, CutUploads int64
}

// Total is the number of faults injected.
func (c FaultCounts) Total() int64 {
	return c.ServerErrors + c.Throttled + c.CutDownloads + c.CutUploads
}

// NewFaultProxy starts a fault-injecting proxy to the registry at backendHost, closed when the test ends.
func NewFaultProxy(tb testing.TB, backendHost string, f Faults) *FaultProxy {
	tb.Helper()
	p := NewFaultHandler(backendHost, f)
	s := httptest.NewServer(p)
	tb.Cleanup(s.Close)
	p.Host = strings.TrimPrefix(s.URL, "http://")
	return p
}

// NewFaultHandler is the proxy as an http.Handler, for a server of the caller's (the copy
// benchmark's WAN proxy); Host is left empty.
func NewFaultHandler(backendHost string, f Faults) *FaultProxy {
	if f.MaxPerRequest == 0 {
		f.MaxPerRequest = 3
	}
	target := &url.URL{Scheme: "http", Host: backendHost}
	p := &FaultProxy{
		faults: f,
		rng:    rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15)),
		seen:   map[string]int{},
		kinds:  map[string]int64{},
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // registries build upload Locations from Host: keep the proxy's.
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return p
}

// RequestKind classifies a registry request for round-trip counts: "ping", "<METHOD> blob",
// "<METHOD> upload", "<METHOD> manifest", "<METHOD> tags", "<METHOD> referrers" or "<METHOD> other".
func RequestKind(method, path string) string {
	p := strings.TrimSuffix(path, "/")
	switch {
	case p == "/v2":
		return "ping"
	case strings.Contains(p, "/blobs/uploads"):
		return method + " upload"
	case strings.Contains(p, "/blobs/"):
		return method + " blob"
	case strings.Contains(p, "/manifests/"):
		return method + " manifest"
	case strings.HasSuffix(p, "/tags/list"):
		return method + " tags"
	case strings.Contains(p, "/referrers/"):
		return method + " referrers"
	}
	return method + " other"
}

// RoundTrips returns the requests seen so far by RequestKind, faulted ones included.
func (p *FaultProxy) RoundTrips() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.kinds))
	for k, v := range p.kinds {
		out[k] = v
	}
	return out
}

// ResetRoundTrips zeroes the request counts.
func (p *FaultProxy) ResetRoundTrips() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kinds = map[string]int64{}
}

// delay counts the request and returns the latency it gets.
func (p *FaultProxy) delay(kind string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kinds[kind]++
	d := p.faults.Latency
	if p.faults.Jitter > 0 {
		d += time.Duration(p.rng.Int64N(int64(p.faults.Jitter)))
	}
	return d
}

// Counts returns the faults injected so far.
func (p *FaultProxy) Counts() FaultCounts {
	return FaultCounts{
		ServerErrors: p.serverErrors.Load(),
		Throttled:    p.throttled.Load(),
		CutDownloads: p.cutDownloads.Load(),
		CutUploads:   p.cutUploads.Load(),
	}
}

type fault int

const (
	none fault = iota
	serverError
	throttle
	cut
)

func (p *FaultProxy) decide(key string, cuttable bool) (fault, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[key] >= p.faults.MaxPerRequest {
		return none, 0
	}
	x := p.rng.Float64()
	pick := none
	switch {
	case x < p.faults.ServerErrors:
		pick = serverError
	case x < p.faults.ServerErrors+p.faults.Throttle:
		pick = throttle
	case cuttable && x < p.faults.ServerErrors+p.faults.Throttle+p.faults.Cut:
		pick = cut
	}
	if pick != none {
		p.seen[key]++
	}
	return pick, p.rng.IntN(3)
}

func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if d := p.delay(RequestKind(r.Method, path)); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	isUpload := (r.Method == http.MethodPatch || r.Method == http.MethodPut) &&
		strings.Contains(path, "/blobs/uploads/") && r.ContentLength > 1
	isBlobGet := r.Method == http.MethodGet && strings.Contains(path, "/blobs/sha256:")
	key := r.Method + " " + path
	if i := strings.Index(path, "/blobs/uploads/"); i >= 0 {
		// Upload URLs are new for every attempt: key by what identifies the blob instead,
		// the digest of a commit or the size of a chunk.
		key = r.Method + " " + path[:i] + " upload " + r.URL.Query().Get("digest") + " " + r.Header.Get("Content-Length")
	}
	if isUpload && p.faults.CutUploadsEvery > 0 {
		p.forwardCutting(w, r)
		return
	}
	f, n := p.decide(key, isUpload || isBlobGet)
	switch f {
	case serverError:
		p.serverErrors.Add(1)
		code := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[n]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}`)
		return
	case throttle:
		p.throttled.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"injected throttle"}]}`)
		return
	case cut:
		if isUpload {
			p.cutUploads.Add(1)
			_, _ = io.CopyN(io.Discard, r.Body, r.ContentLength/2)
			panic(http.ErrAbortHandler) // closes the connection without a response
		}
		p.cutDownloads.Add(1)
		cw := &cutWriter{ResponseWriter: w, left: -1}
		p.proxy.ServeHTTP(cw, r)
		return
	}
	p.proxy.ServeHTTP(w, r)
}

// cutWriter lets half of the body through, then aborts the connection.
type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cutWriter) WriteHeader(code int) {
	if code == http.StatusOK {
		if size, err := strconv.ParseInt(c.Header().Get("Content-Length"), 10, 64); err == nil {
			c.left = size / 2
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.left < 0 {
		return c.ResponseWriter.Write(b)
	}
	if int64(len(b)) >= c.left {
		_, _ = c.ResponseWriter.Write(b[:c.left])
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	c.left -= int64(len(b))
	return c.ResponseWriter.Write(b)
}

// forwardCutting forwards an upload whose body is cut where the bytes uploaded through the
// proxy reach the next multiple of CutUploadsEvery: the registry sees a body that ends early,
// the client a connection closed without an answer.
func (p *FaultProxy) forwardCutting(w http.ResponseWriter, r *http.Request) {
	body := &cuttingBody{rc: r.Body, p: p}
	r.Body = body
	p.proxy.ServeHTTP(&abortOnCut{ResponseWriter: w, body: body}, r)
	if body.cut.Load() {
		panic(http.ErrAbortHandler)
	}
}

type cuttingBody struct {
	rc  io.ReadCloser
	p   *FaultProxy
	cut atomic.Bool
}

func (b *cuttingBody) Read(buf []byte) (int, error) {
	every := b.p.faults.CutUploadsEvery
	total := b.p.uploaded.Load()
	left := every - total%every // bytes until the next cut
	if int64(len(buf)) > left {
		buf = buf[:left]
	}
	n, err := b.rc.Read(buf)
	after := b.p.uploaded.Add(int64(n))
	if n > 0 && (after-int64(n))/every != after/every { // crossed (or reached) a multiple
		b.cut.Store(true)
		b.p.cutUploads.Add(1)
		return n, errors.New("ocitest: connection cut (CutUploadsEvery)")
	}
	return n, err
}

func (b *cuttingBody) Close() error { return b.rc.Close() }

// abortOnCut turns the reverse proxy's 502 for a cut body into a dropped connection.
type abortOnCut struct {
	http.ResponseWriter
	body *cuttingBody
}

func (a *abortOnCut) WriteHeader(code int) {
	if a.body.cut.Load() {
		panic(http.ErrAbortHandler)
	}
	a.ResponseWriter.WriteHeader(code)
}
