package ocicopy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// errTransferBroken marks an upload whose connection failed mid-body; worth another try.
var errTransferBroken = errors.New("transfer broken")

// errShortBlob marks a source body that ended before (or ran past) its descriptor's size.
var errShortBlob = errors.New("blob body does not match its descriptor size")

// openBlob streams a source blob without hashing it: the target registry checks the digest
// when the upload is committed (PUT ?digest=) and refuses a mismatch (see WithClientVerification).
func (c *copier) openBlob(ctx context.Context, desc v1.Descriptor) (io.ReadCloser, error) {
	return c.openBlobAt(ctx, desc, 0)
}

// openBlobAt streams a source blob from offset on, for an upload resumed there: a range
// request, or the whole blob with its start skipped when the source ignores ranges or the
// copier hashes blobs itself (the hash needs every byte). Skipped bytes are not counted as moved.
func (c *copier) openBlobAt(ctx context.Context, desc v1.Descriptor, offset int64) (io.ReadCloser, error) {
	u := url.URL{Scheme: c.src.Scheme(), Host: c.src.RegistryStr(), Path: fmt.Sprintf("/v2/%s/blobs/%s", c.src.RepositoryStr(), desc.Digest)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	ranged := offset > 0 && !c.o.verifyBlobs
	if ranged {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := c.srcBlobs.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read source blob %s: %w", desc.Digest, err)
	}
	if err := transport.CheckError(resp, http.StatusOK, http.StatusPartialContent); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("read source blob %s: %w", desc.Digest, err)
	}
	skip := offset
	want := desc.Size
	if resp.StatusCode == http.StatusPartialContent {
		if !ranged || !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", offset)) {
			resp.Body.Close()
			return nil, fmt.Errorf("read source blob %s: asked for bytes %d on, got Content-Range %q", desc.Digest, offset, resp.Header.Get("Content-Range"))
		}
		skip, want = 0, desc.Size-offset
	}
	if resp.ContentLength >= 0 && resp.ContentLength != want {
		resp.Body.Close()
		return nil, fmt.Errorf("source blob %s is %d bytes, its descriptor says %d", desc.Digest, resp.ContentLength+desc.Size-want, desc.Size)
	}
	b := &blobReader{rc: resp.Body, left: want, moved: &c.bytesMoved, digest: desc.Digest}
	if c.o.verifyBlobs {
		b.h = sha256.New()
	}
	if skip > 0 {
		if err := b.skip(skip); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("read source blob %s up to offset %d: %w", desc.Digest, offset, err)
		}
	}
	return b, nil
}

// blobReader counts bytes moved and insists on exactly the descriptor's size (and digest, if h is set).
type blobReader struct {
	rc     io.ReadCloser
	left   int64
	moved  *atomic.Int64
	h      hash.Hash
	digest v1.Hash
}

func (b *blobReader) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	b.moved.Add(int64(n))
	if b.left < 0 {
		return n, fmt.Errorf("source blob %s: %w (longer)", b.digest, errShortBlob)
	}
	if b.h != nil {
		b.h.Write(p[:n])
		// Check before handing over the last bytes, so a bad blob never reaches the target whole.
		if b.left == 0 && hex.EncodeToString(b.h.Sum(nil)) != b.digest.Hex {
			return 0, fmt.Errorf("source blob %s does not hash to its digest", b.digest)
		}
	}
	if err == io.EOF && b.left > 0 {
		return n, fmt.Errorf("source blob %s: %w (%d bytes missing): %w", b.digest, errShortBlob, b.left, io.ErrUnexpectedEOF)
	}
	return n, err
}

func (b *blobReader) Close() error { return b.rc.Close() }

// skip reads the first n bytes (hashing them, if it hashes) without handing them over or
// counting them as moved.
func (b *blobReader) skip(n int64) error {
	moved := b.moved
	b.moved = new(atomic.Int64)
	defer func() { b.moved = moved }()
	_, err := io.CopyN(io.Discard, b, n)
	return err
}

// checkRedirect follows registry redirects to blob storage (S3, GCS) but not to a private or
// loopback address on another host, which a hostile registry could use to reach internal services.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	orig := via[0].URL.Hostname()
	host := req.URL.Hostname()
	if host == orig {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()) {
		if oip := net.ParseIP(orig); oip == nil || !oip.IsLoopback() {
			return fmt.Errorf("refusing redirect from %s to private address %s", orig, host)
		}
	}
	return nil
}

// uploadBlob puts one blob into the target. The target's answers decide: is it there already
// (HEAD), can it be mounted from the source repository (same registry), else an upload location
// (POST) and one PUT ?digest= with the whole body streamed from the source (the OCI "POST then
// PUT" monolithic upload). Across registries the HEAD, the POST and the source GET go out
// together (see uploadSpeculative), so a copied blob costs two round trips, not four. The whole
// sequence is retried, re-reading the source, on 5xx, 429, cut connections and digest
// mismatches; the small requests are retried on their own underneath (statusRetrier).
// It reports what happened: "skipped", "mounted" or "copied".
func (c *copier) uploadBlob(ctx context.Context, desc v1.Descriptor) (string, error) {
	var outcome string
	st := c.uploadState(ctx, desc) // kept across attempts: where a chunked upload can resume
	err := c.retry(ctx, func() error {
		var err error
		switch {
		case st.loc != nil:
			outcome, err = c.resumeUpload(ctx, desc, st)
		case !c.mountable && c.speculate.Load():
			outcome, err = c.uploadSpeculative(ctx, desc, st)
		default:
			outcome, err = c.uploadOnce(ctx, desc, st)
		}
		return err
	})
	return outcome, err
}

// uploadState is a chunked upload in progress: its session, once the first chunk went out,
// also kept in the WithUploadSessions store under key when there is one.
type uploadState struct {
	loc      *url.URL
	key      string
	sessions UploadSessions
	log      logger
}

// uploadState starts the state of desc's upload, with the session an earlier copy left in the
// store (if any, and if it points at the target).
func (c *copier) uploadState(ctx context.Context, desc v1.Descriptor) *uploadState {
	st := &uploadState{key: c.dst.String() + "@" + desc.Digest.String(), sessions: c.o.sessions, log: c.log}
	if st.sessions == nil || desc.Size <= c.o.chunkSize {
		return st
	}
	saved, ok, err := st.sessions.Load(ctx, st.key)
	if err != nil {
		c.log.warn("cannot read the saved upload session: the upload starts over", "key", st.key, "error", err.Error())
		return st
	}
	if !ok {
		return st
	}
	loc, err := url.Parse(saved)
	target := &http.Request{URL: &url.URL{Scheme: c.dst.Scheme(), Host: c.dst.RegistryStr()}}
	if err != nil || !loc.IsAbs() || checkRedirect(&http.Request{URL: loc}, []*http.Request{target}) != nil {
		c.log.warn("ignoring a saved upload session that does not point at the target", "key", st.key, "session", saved)
		return st
	}
	c.log.debug("resuming an upload an earlier copy left", "digest", desc.Digest.String())
	st.loc = loc
	return st
}

// set moves the upload to loc (nil: no session to resume) and saves it for later copies.
func (st *uploadState) set(ctx context.Context, loc *url.URL) {
	st.loc = loc
	if st.sessions == nil {
		return
	}
	var err error
	if loc == nil {
		err = st.sessions.Delete(ctx, st.key)
	} else {
		err = st.sessions.Save(ctx, st.key, loc.String())
	}
	if err != nil {
		st.log.warn("cannot save the upload session: a later copy would start this blob over", "key", st.key, "error", err.Error())
	}
}

func (c *copier) blobURL(desc v1.Descriptor) string {
	u := url.URL{Scheme: c.dst.Scheme(), Host: c.dst.RegistryStr(), Path: fmt.Sprintf("/v2/%s/blobs/%s", c.dst.RepositoryStr(), desc.Digest)}
	return u.String()
}

func (c *copier) uploadsURL(desc v1.Descriptor) string {
	u := url.URL{Scheme: c.dst.Scheme(), Host: c.dst.RegistryStr(), Path: fmt.Sprintf("/v2/%s/blobs/uploads/", c.dst.RepositoryStr())}
	if c.mountable {
		u.RawQuery = url.Values{"mount": {desc.Digest.String()}, "from": {c.src.RepositoryStr()}}.Encode()
	}
	return u.String()
}

// uploadOnce is the sequential path: HEAD, then POST (a mount when possible), then GET and PUT.
func (c *copier) uploadOnce(ctx context.Context, desc v1.Descriptor, st *uploadState) (string, error) {
	resp, err := c.do(ctx, http.MethodHead, c.blobURL(desc), nil, 0, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return "", fmt.Errorf("check target blob: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		return "skipped", nil
	}
	resp, err = c.do(ctx, http.MethodPost, c.uploadsURL(desc), nil, 0, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return "", fmt.Errorf("start upload: %w", err)
	}
	if resp.StatusCode == http.StatusCreated {
		return "mounted", nil
	}
	loc, err := uploadLocation(resp)
	if err != nil {
		return "", err
	}
	body, err := c.openBlob(ctx, desc)
	if err != nil {
		return "", err
	}
	return c.putBlob(ctx, desc, loc, body, st)
}

// uploadSpeculative sends the target HEAD, the upload POST and the source GET at once: over a
// WAN each is a round trip, and a promotion mostly copies blobs the target lacks. When the
// target has the blob after all, the source body is closed unread (no bytes counted) and the
// upload cancelled, and the copier goes back to asking first (speculate), so a target that
// already holds much of the image costs a few wasted requests, not one per blob.
func (c *copier) uploadSpeculative(ctx context.Context, desc v1.Descriptor, st *uploadState) (string, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg               sync.WaitGroup
		head, post       *http.Response
		headErr, postErr error
		body             io.ReadCloser
		getErr           error
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		head, headErr = c.do(ctx, http.MethodHead, c.blobURL(desc), nil, 0, http.StatusOK, http.StatusNotFound)
	}()
	go func() {
		defer wg.Done()
		post, postErr = c.do(sctx, http.MethodPost, c.uploadsURL(desc), nil, 0, http.StatusAccepted)
	}()
	go func() {
		defer wg.Done()
		body, getErr = c.openBlob(sctx, desc)
	}()
	wg.Wait()
	if body != nil {
		defer body.Close()
	}
	var loc *url.URL
	if postErr == nil {
		loc, postErr = uploadLocation(post)
	}
	present := headErr == nil && head.StatusCode == http.StatusOK
	if present || headErr != nil || getErr != nil || postErr != nil {
		if loc != nil {
			c.cancelUpload(ctx, loc)
		}
	}
	switch {
	case headErr != nil:
		return "", fmt.Errorf("check target blob: %w", headErr)
	case present:
		c.speculate.Store(false)
		return "skipped", nil
	case postErr != nil:
		return "", fmt.Errorf("start upload: %w", postErr)
	case getErr != nil:
		return "", getErr
	}
	return c.putBlob(ctx, desc, loc, body, st)
}

// cancelUpload ends an upload session we will not use (best effort: registries expire them anyway).
func (c *copier) cancelUpload(ctx context.Context, loc *url.URL) {
	_, _ = c.do(ctx, http.MethodDelete, loc.String(), nil, 0, http.StatusNoContent, http.StatusAccepted, http.StatusOK, http.StatusNotFound)
}

// putBlob commits the upload at loc with body as its whole content: one PUT, or for a blob
// over the chunk size, chunks that a later attempt can resume from (putChunks).
func (c *copier) putBlob(ctx context.Context, desc v1.Descriptor, loc *url.URL, body io.ReadCloser, st *uploadState) (string, error) {
	if desc.Size > c.o.chunkSize {
		return c.putChunks(ctx, desc, loc, 0, body, st)
	}
	defer body.Close()
	if _, err := c.do(ctx, http.MethodPut, commitURL(loc, desc), body, desc.Size, http.StatusCreated); err != nil {
		return "", uploadError(ctx, err)
	}
	return "copied", nil
}

func commitURL(loc *url.URL, desc v1.Descriptor) string {
	q := loc.Query()
	q.Set("digest", desc.Digest.String())
	u := *loc
	u.RawQuery = q.Encode()
	return u.String()
}

// uploadError marks a request that failed while its body was moving (either side cut the
// connection) as worth another attempt, which resumes or starts over.
func uploadError(ctx context.Context, err error) error {
	var terr *transport.Error
	if !errors.As(err, &terr) && ctx.Err() == nil {
		return fmt.Errorf("upload: %w: %w", errTransferBroken, err)
	}
	if terr != nil && terr.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		// The target holds another amount than we thought: ask it again (resumeUpload).
		return fmt.Errorf("upload: %w: %w", errTransferBroken, err)
	}
	return fmt.Errorf("upload: %w", err)
}

// putChunks sends body, the blob from offset on, as PATCHes of at most the chunk size, each
// following the Location the last answer gave, then commits with an empty PUT. From the first
// chunk on, st holds the session, so that a failure resumes where the target got to.
func (c *copier) putChunks(ctx context.Context, desc v1.Descriptor, loc *url.URL, offset int64, body io.ReadCloser, st *uploadState) (string, error) {
	defer body.Close()
	st.set(ctx, loc)
	for offset < desc.Size {
		n := min(c.o.chunkSize, desc.Size-offset)
		resp, err := c.doChunk(ctx, st.loc, io.LimitReader(body, n), offset, n)
		if err != nil {
			return "", uploadError(ctx, err)
		}
		next, err := uploadLocation(resp)
		if err != nil {
			return "", err
		}
		offset += n
		st.set(ctx, next)
		c.log.debug("blob chunk sent", "digest", desc.Digest.String(), "offset", offset, "size", desc.Size)
	}
	if _, err := c.do(ctx, http.MethodPut, commitURL(st.loc, desc), nil, 0, http.StatusCreated); err != nil {
		return "", uploadError(ctx, err)
	}
	st.set(ctx, nil)
	return "copied", nil
}

// doChunk PATCHes n bytes of body at offset into the upload at loc.
func (c *copier) doChunk(ctx context.Context, loc *url.URL, body io.Reader, offset, n int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", offset, offset+n-1))
	resp, err := c.dstBlobs.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusAccepted, http.StatusNoContent); err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp, nil
}

// resumeUpload continues the chunked upload in st at the offset the target reports for it
// (GET on the session: 204 with Range 0-<last byte>), reading the source from there. A session
// the target no longer knows (expired, or committed with the answer lost) starts over, from the
// HEAD: the blob may be there already.
func (c *copier) resumeUpload(ctx context.Context, desc v1.Descriptor, st *uploadState) (string, error) {
	resp, err := c.do(ctx, http.MethodGet, st.loc.String(), nil, 0, http.StatusNoContent)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && !terr.Temporary() {
			c.log.debug("upload session gone, starting over", "digest", desc.Digest.String(), "error", err.Error())
			st.set(ctx, nil)
			return c.uploadOnce(ctx, desc, st)
		}
		return "", fmt.Errorf("upload status: %w", err)
	}
	offset, ok := uploadOffset(resp.Header.Get("Range"))
	if !ok || offset > desc.Size {
		c.cancelUpload(ctx, st.loc)
		st.set(ctx, nil)
		return c.uploadOnce(ctx, desc, st)
	}
	if loc, err := uploadLocation(resp); err == nil {
		st.set(ctx, loc)
	}
	c.log.debug("resuming blob upload", "digest", desc.Digest.String(), "offset", offset, "size", desc.Size)
	body, err := c.openBlobAt(ctx, desc, offset)
	if err != nil {
		return "", err
	}
	return c.putChunks(ctx, desc, st.loc, offset, body, st)
}

// uploadOffset reads an upload's Range ("0-<last byte>"): the bytes the target holds. "0-0" is
// what registries answer for an empty upload.
func uploadOffset(rng string) (int64, bool) {
	rng = strings.TrimPrefix(strings.TrimSpace(rng), "bytes=")
	if rng == "" || rng == "0-0" {
		return 0, true
	}
	a, b, found := strings.Cut(rng, "-")
	if !found || a != "0" {
		return 0, false
	}
	last, err := strconv.ParseInt(b, 10, 64)
	if err != nil || last < 0 {
		return 0, false
	}
	return last + 1, true
}

// do sends one request to the target and checks the status; the body is drained and closed.
func (c *copier) do(ctx context.Context, method, u string, body io.Reader, size int64, ok ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.dstBlobs.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, ok...); err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp, nil
}

// uploadLocation resolves the Location of an upload; a registry may not send it to a private
// address on another host (the blob would go to an internal service).
func uploadLocation(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, errors.New("registry started an upload without a Location")
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("upload Location %q: %w", loc, err)
	}
	if err := checkRedirect(&http.Request{URL: u}, []*http.Request{resp.Request}); err != nil {
		return nil, err
	}
	return u, nil
}

// retry runs f until it succeeds, fails for good, or the backoff is spent.
func (c *copier) retry(ctx context.Context, f func() error) error {
	wait := c.o.backoff.Duration
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !retryable(err) || attempt >= c.o.backoff.Steps {
			return err
		}
		c.log.debug("retrying", "error", err.Error(), "attempt", attempt)
		t := time.NewTimer(jitter(wait, c.o.backoff.Jitter))
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait = time.Duration(float64(wait) * c.o.backoff.Factor)
	}
}
