package localecr

import (
	"net/http"

	"github.com/regflow/regflow/shared/local/faults"
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
	AllOps = faults.AllOps
)

// Fault describes what goes wrong for one operation (see faults.Fault): throttled requests
// get ThrottlingException (HTTP 400) on the ECR API or 429 TOOMANYREQUESTS on the registry
// API, failed ones ServerException or UNKNOWN (HTTP 500); DropRate and DropAfterBytes cut
// connections, mid-blob when DropAfterBytes is set.
type Fault = faults.Fault

// SetFault installs f for op (an ECR operation name, one of the Op* registry
// operations, or AllOps). A zero Fault removes it.
func (s *Server) SetFault(op string, f Fault) { s.faults.Set(op, f) }

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// Requests returns how many requests op has received (faulted ones included).
func (s *Server) Requests(op string) int { return s.faults.Count(op) }

// RequestCounts returns a copy of every operation's request count.
func (s *Server) RequestCounts() map[string]int { return s.faults.Counts() }

// ResetRequests zeroes the request counters.
func (s *Server) ResetRequests() { s.faults.ResetCounts() }

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
