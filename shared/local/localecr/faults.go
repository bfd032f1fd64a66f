package localecr

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Operation names of the registry API (/v2) for SetFault and Requests. The ECR
// control-plane operations use their ECR names ("DescribeImages", ...).
const (
	OpPing           = "ping"               // GET /v2/
	OpCatalog        = "catalog"            // GET /v2/_catalog
	OpBlobHead       = "blob-head"          // HEAD /v2/<name>/blobs/<digest>
	OpBlobGet        = "blob-get"           // GET /v2/<name>/blobs/<digest>
	OpBlobDelete     = "blob-delete"        // DELETE /v2/<name>/blobs/<digest>
	OpBlobUpload     = "blob-upload"        // POST /v2/<name>/blobs/uploads/ (start, or monolithic with ?digest=)
	OpBlobMount      = "blob-mount"         // POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>
	OpBlobPatch      = "blob-patch"         // PATCH /v2/<name>/blobs/uploads/<id>
	OpBlobPut        = "blob-put"           // PUT /v2/<name>/blobs/uploads/<id>?digest=
	OpUploadStatus   = "blob-upload-get"    // GET /v2/<name>/blobs/uploads/<id>
	OpUploadCancel   = "blob-upload-delete" // DELETE /v2/<name>/blobs/uploads/<id>
	OpManifestHead   = "manifest-head"
	OpManifestGet    = "manifest-get"
	OpManifestPut    = "manifest-put"
	OpManifestDelete = "manifest-delete"
	OpTagsList       = "tags-list"
	OpReferrers      = "referrers"
	// AllOps as a SetFault key applies a fault to every operation without one of its own.
	AllOps = "*"
)

// Fault describes what goes wrong for one operation. Zero values disable each part.
type Fault struct {
	// Latency is added before the request is handled (a fixed round-trip cost).
	Latency time.Duration
	// Jitter adds a further random delay in [0, Jitter) per request, drawn from FaultSeed.
	Jitter time.Duration
	// ThrottleAbove is the number of requests per (wall-clock) second the
	// operation accepts; the rest get ThrottlingException (HTTP 400) on the ECR
	// API, or HTTP 429 TOOMANYREQUESTS on the registry API.
	ThrottleAbove int
	// ErrorRate is the fraction of requests answered with HTTP 500
	// (ServerException on the ECR API, UNKNOWN on the registry API).
	ErrorRate float64
	// DropRate is the fraction of requests whose connection is closed.
	DropRate float64
	// DropAfterBytes, with DropRate, sends that many bytes of the response body
	// (headers included as sent) before closing the connection: a cut in the
	// middle of a blob download. Zero drops before any response.
	DropAfterBytes int64
}

// faults holds per-operation faults and request counters.
type faults struct {
	mu      sync.Mutex
	rules   map[string]Fault
	counts  map[string]int
	windows map[string]*window
	rnd     *rand.Rand
}

type window struct {
	start time.Time
	n     int
}

func newFaults(seed uint64) *faults {
	return &faults{
		rules:   map[string]Fault{},
		counts:  map[string]int{},
		windows: map[string]*window{},
		rnd:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// decision is what happens to one request.
type decision struct {
	latency   time.Duration
	throttle  bool
	fail      bool
	drop      bool
	dropAfter int64
}

// admit counts a request for op and decides its fate.
func (f *faults) admit(op string) decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[op]++
	rule, ok := f.rules[op]
	if !ok {
		rule, ok = f.rules[AllOps]
	}
	if !ok {
		return decision{}
	}
	d := decision{latency: rule.Latency}
	if rule.Jitter > 0 {
		d.latency += time.Duration(f.rnd.Int64N(int64(rule.Jitter)))
	}
	if rule.ThrottleAbove > 0 {
		now := time.Now()
		w := f.windows[op]
		if w == nil || now.Sub(w.start) >= time.Second {
			w = &window{start: now}
			f.windows[op] = w
		}
		w.n++
		if w.n > rule.ThrottleAbove {
			d.throttle = true
			return d
		}
	}
	if rule.DropRate > 0 && f.rnd.Float64() < rule.DropRate {
		d.drop, d.dropAfter = true, rule.DropAfterBytes
		return d
	}
	if rule.ErrorRate > 0 && f.rnd.Float64() < rule.ErrorRate {
		d.fail = true
	}
	return d
}

// SetFault installs f for op (an ECR operation name, one of the Op* registry
// operations, or AllOps). A zero Fault removes it.
func (s *Server) SetFault(op string, f Fault) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	if f == (Fault{}) {
		delete(s.faults.rules, op)
		return
	}
	s.faults.rules[op] = f
	delete(s.faults.windows, op)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.rules = map[string]Fault{}
	s.faults.windows = map[string]*window{}
}

// Requests returns how many requests op has received (faulted ones included).
func (s *Server) Requests(op string) int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return s.faults.counts[op]
}

// RequestCounts returns a copy of every operation's request count.
func (s *Server) RequestCounts() map[string]int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make(map[string]int, len(s.faults.counts))
	for k, v := range s.faults.counts {
		out[k] = v
	}
	return out
}

// ResetRequests zeroes the request counters.
func (s *Server) ResetRequests() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.counts = map[string]int{}
}

// cutWriter sends at most limit body bytes, then aborts the connection.
type cutWriter struct {
	http.ResponseWriter
	limit   int64
	written int64
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if room := w.limit - w.written; int64(len(p)) > room {
		n, _ := w.ResponseWriter.Write(p[:room])
		w.written += int64(n)
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		// net/http closes the connection without completing the response.
		panic(http.ErrAbortHandler)
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

func (w *cutWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
