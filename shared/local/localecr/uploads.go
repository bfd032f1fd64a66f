package localecr

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// maxBlobBytes bounds one blob upload held in memory (ECR's layer limit is 52,000 MiB;
// a local registry needs far less).
const maxBlobBytes = 4 << 30

// upload is an open blob upload session (POST /v2/<name>/blobs/uploads/).
type upload struct {
	repo string
	mu   sync.Mutex
	data []byte
}

// sha256RE is the only digest form ECR accepts for content: sha256, lowercase hex.
var sha256RE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// checkDigest validates a content digest the ECR way: sha256 only.
func checkDigest(d string) *ociError {
	if sha256RE.MatchString(d) {
		return nil
	}
	if validDigest(d) {
		return newOCIError(http.StatusBadRequest, "DIGEST_INVALID", "unsupported digest algorithm in %q: ECR accepts sha256 only", d).with("digest", d)
	}
	return newOCIError(http.StatusBadRequest, "DIGEST_INVALID", "invalid digest %q: want sha256:<64 hex digits>", d).with("digest", d)
}

func newUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail on supported platforms
	return hex.EncodeToString(b[:])
}

func uploadPath(repo, id string) string   { return "/v2/" + repo + "/blobs/uploads/" + id }
func blobPath(repo, digest string) string { return "/v2/" + repo + "/blobs/" + digest }

// readBody reads a request body up to maxBlobBytes.
func readBody(req *http.Request, have int) ([]byte, *ociError) {
	data, err := io.ReadAll(io.LimitReader(req.Body, int64(maxBlobBytes-have)+1))
	if err != nil {
		return nil, newOCIError(http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "read upload body: %v", err)
	}
	if have+len(data) > maxBlobBytes {
		return nil, newOCIError(http.StatusRequestEntityTooLarge, "SIZE_INVALID", "blob is larger than the local registry's %d-byte limit", maxBlobBytes)
	}
	if req.ContentLength >= 0 && int64(len(data)) != req.ContentLength {
		return nil, newOCIError(http.StatusBadRequest, "SIZE_INVALID", "body is %d bytes, Content-Length says %d", len(data), req.ContentLength)
	}
	return data, nil
}

// completeBlob verifies data against digest and stores it in repo, answering 201 with the
// blob's Location as the spec requires of every completed upload.
func (s *Server) completeBlob(w http.ResponseWriter, repo, digest string, data []byte) {
	if e := checkDigest(digest); e != nil {
		writeOCIError(w, e)
		return
	}
	if got := sha256Digest(data); got != digest {
		writeOCIError(w, newOCIError(http.StatusBadRequest, "DIGEST_INVALID", "uploaded content hashes to %s, not to %s", got, digest).
			with("digest", digest))
		return
	}
	s.blobs.store(repo, digest, data)
	w.Header().Set("Location", blobPath(repo, digest))
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// serveUploadStart answers POST /v2/<name>/blobs/uploads/: a monolithic upload with ?digest=,
// else a new session (202 with its Location).
func (s *Server) serveUploadStart(w http.ResponseWriter, req *http.Request, rt route) {
	if digest := req.URL.Query().Get("digest"); digest != "" {
		if e := checkDigest(digest); e != nil {
			writeOCIError(w, e)
			return
		}
		data, e := readBody(req, 0)
		if e != nil {
			writeOCIError(w, e)
			return
		}
		s.completeBlob(w, rt.name, digest, data)
		return
	}
	s.openUpload(w, rt.name)
}

func (s *Server) openUpload(w http.ResponseWriter, repo string) {
	id := newUploadID()
	s.blobs.mu.Lock()
	s.blobs.uploads[id] = &upload{repo: repo}
	s.blobs.mu.Unlock()
	w.Header().Set("Location", uploadPath(repo, id))
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", "0-0")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// serveMount answers a cross-repository mount: 201 when the source repository holds the blob,
// otherwise an ordinary upload session, as the distribution spec requires.
func (s *Server) serveMount(w http.ResponseWriter, req *http.Request, rt route) {
	q := req.URL.Query()
	digest, from := q.Get("mount"), q.Get("from")
	if e := checkDigest(digest); e != nil {
		writeOCIError(w, e)
		return
	}
	s.mu.RLock()
	_, fromOK := s.repos[from]
	s.mu.RUnlock()
	if fromOK && s.blobs.inRepo(from, digest) {
		s.blobs.link(rt.name, digest)
		w.Header().Set("Location", blobPath(rt.name, digest))
		w.Header().Set("Docker-Content-Digest", digest)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusCreated)
		return
	}
	s.openUpload(w, rt.name)
}

// session finds the open upload id of repo, or answers 404 BLOB_UPLOAD_UNKNOWN.
func (s *Server) session(w http.ResponseWriter, rt route) *upload {
	s.blobs.mu.RLock()
	u, ok := s.blobs.uploads[rt.ref]
	s.blobs.mu.RUnlock()
	if !ok || u.repo != rt.name {
		writeOCIError(w, newOCIError(http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "upload %s is not open in repository %s", rt.ref, rt.name).
			with("upload", rt.ref))
		return nil
	}
	return u
}

func (s *Server) closeSession(id string) {
	s.blobs.mu.Lock()
	delete(s.blobs.uploads, id)
	s.blobs.mu.Unlock()
}

// uploadRange is the Range header of an upload holding n bytes ("0-<last byte>", "0-0" when empty).
func uploadRange(n int) string {
	if n == 0 {
		return "0-0"
	}
	return "0-" + strconv.Itoa(n-1)
}

// appendChunk adds the request body to u, checking Content-Range ("<start>-<end>") when sent:
// a chunk must start where the upload ends (spec: 416 otherwise).
func appendChunk(u *upload, req *http.Request) *ociError {
	if cr := req.Header.Get("Content-Range"); cr != "" {
		start, end, ok := parseChunkRange(cr)
		if !ok || start != int64(len(u.data)) {
			return newOCIError(http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID",
				"chunk range %q does not continue the upload, which holds %d bytes", cr, len(u.data)).with("range", uploadRange(len(u.data)))
		}
		if req.ContentLength >= 0 && end-start+1 != req.ContentLength {
			return newOCIError(http.StatusBadRequest, "SIZE_INVALID", "chunk range %q disagrees with Content-Length %d", cr, req.ContentLength)
		}
	}
	data, e := readBody(req, len(u.data))
	if e != nil {
		return e
	}
	u.data = append(u.data, data...)
	return nil
}

// parseChunkRange reads an upload's Content-Range, "<start>-<end>" (a "bytes " prefix is tolerated).
func parseChunkRange(s string) (start, end int64, ok bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "bytes ")
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}

// servePatch answers PATCH /v2/<name>/blobs/uploads/<id>: a chunk (with Content-Range) or a stream.
func (s *Server) servePatch(w http.ResponseWriter, req *http.Request, rt route) {
	u := s.session(w, rt)
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if e := appendChunk(u, req); e != nil {
		writeOCIError(w, e)
		return
	}
	w.Header().Set("Location", uploadPath(rt.name, rt.ref))
	w.Header().Set("Docker-Upload-UUID", rt.ref)
	w.Header().Set("Range", uploadRange(len(u.data)))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// servePutUpload answers PUT /v2/<name>/blobs/uploads/<id>?digest=: the last chunk, if any, and the commit.
func (s *Server) servePutUpload(w http.ResponseWriter, req *http.Request, rt route) {
	u := s.session(w, rt)
	if u == nil {
		return
	}
	digest := req.URL.Query().Get("digest")
	if e := checkDigest(digest); e != nil {
		writeOCIError(w, e)
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if e := appendChunk(u, req); e != nil {
		writeOCIError(w, e)
		return
	}
	// The session ends with the commit, refused or not, as in the distribution registry.
	s.closeSession(rt.ref)
	s.completeBlob(w, rt.name, digest, u.data)
}

// serveUploadStatus answers GET /v2/<name>/blobs/uploads/<id>: 204 with the bytes received so far.
func (s *Server) serveUploadStatus(w http.ResponseWriter, rt route) {
	u := s.session(w, rt)
	if u == nil {
		return
	}
	u.mu.Lock()
	n := len(u.data)
	u.mu.Unlock()
	w.Header().Set("Location", uploadPath(rt.name, rt.ref))
	w.Header().Set("Docker-Upload-UUID", rt.ref)
	w.Header().Set("Range", uploadRange(n))
	w.WriteHeader(http.StatusNoContent)
}

// serveUploadCancel answers DELETE /v2/<name>/blobs/uploads/<id>.
func (s *Server) serveUploadCancel(w http.ResponseWriter, rt route) {
	if s.session(w, rt) == nil {
		return
	}
	s.closeSession(rt.ref)
	w.WriteHeader(http.StatusNoContent)
}

// serveBlob answers GET and HEAD /v2/<name>/blobs/<digest>, with single byte ranges (RFC 9110).
func (s *Server) serveBlob(w http.ResponseWriter, req *http.Request, rt route) {
	if e := checkDigest(rt.ref); e != nil {
		writeOCIError(w, e)
		return
	}
	data, ok := s.blobs.getIn(rt.name, rt.ref)
	if !ok {
		writeOCIError(w, newOCIError(http.StatusNotFound, "BLOB_UNKNOWN", "blob %s is not in repository %s", rt.ref, rt.name).with("digest", rt.ref))
		return
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", rt.ref)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Etag", `"`+rt.ref+`"`)
	status, body := http.StatusOK, data
	if rg := req.Header.Get("Range"); rg != "" {
		start, end, ok := parseByteRange(rg, int64(len(data)))
		if !ok {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			writeOCIError(w, newOCIError(http.StatusRequestedRangeNotSatisfiable, "SIZE_INVALID",
				"range %q cannot be served from blob %s of %d bytes", rg, rt.ref, len(data)).with("size", len(data)))
			return
		}
		status, body = http.StatusPartialContent, data[start:end+1]
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, len(data)))
	}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if req.Method != http.MethodHead {
		_, _ = io.Copy(w, bytes.NewReader(body))
	}
}

// parseByteRange resolves one "bytes=" range against size: "a-b" (b clamped to the end), "a-",
// or "-n" (the last n bytes). Multiple ranges, a > b, and ranges starting past the end fail.
func parseByteRange(s string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(s), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false
	}
	if a == "" { // suffix range
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 || size == 0 {
			return 0, 0, false
		}
		return max(size-n, 0), size - 1, true
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end = size - 1
	if b != "" {
		e, err := strconv.ParseInt(b, 10, 64)
		if err != nil || e < start {
			return 0, 0, false
		}
		end = min(e, size-1)
	}
	return start, end, true
}
