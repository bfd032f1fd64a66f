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
	u := url.URL{Scheme: c.src.Scheme(), Host: c.src.RegistryStr(), Path: fmt.Sprintf("/v2/%s/blobs/%s", c.src.RepositoryStr(), desc.Digest)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.srcBlobs.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read source blob %s: %w", desc.Digest, err)
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("read source blob %s: %w", desc.Digest, err)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != desc.Size {
		resp.Body.Close()
		return nil, fmt.Errorf("source blob %s is %d bytes, its descriptor says %d", desc.Digest, resp.ContentLength, desc.Size)
	}
	b := &blobReader{rc: resp.Body, left: desc.Size, moved: &c.bytesMoved, digest: desc.Digest}
	if c.o.verifyBlobs {
		b.h = sha256.New()
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

// uploadBlob puts one blob into the target: HEAD (there already?), POST (mounted from the source
// repository when both are on one registry, else an upload location), then one PUT ?digest=
// with the whole body (the OCI "POST then PUT" monolithic upload), so a blob costs three
// requests. The whole sequence is retried, re-reading the source, on 5xx, 429, cut connections
// and digest mismatches; the small requests are retried on their own underneath (statusRetrier).
// It reports what happened: "skipped", "mounted" or "copied".
func (c *copier) uploadBlob(ctx context.Context, desc v1.Descriptor) (string, error) {
	var outcome string
	err := c.retry(ctx, func() error {
		var err error
		outcome, err = c.uploadOnce(ctx, desc)
		return err
	})
	return outcome, err
}

func (c *copier) uploadOnce(ctx context.Context, desc v1.Descriptor) (string, error) {
	base := url.URL{Scheme: c.dst.Scheme(), Host: c.dst.RegistryStr()}
	head := base
	head.Path = fmt.Sprintf("/v2/%s/blobs/%s", c.dst.RepositoryStr(), desc.Digest)
	resp, err := c.do(ctx, http.MethodHead, head.String(), nil, 0, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return "", fmt.Errorf("check target blob: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		return "skipped", nil
	}

	post := base
	post.Path = fmt.Sprintf("/v2/%s/blobs/uploads/", c.dst.RepositoryStr())
	if c.mountable {
		post.RawQuery = url.Values{"mount": {desc.Digest.String()}, "from": {c.src.RepositoryStr()}}.Encode()
	}
	resp, err = c.do(ctx, http.MethodPost, post.String(), nil, 0, http.StatusCreated, http.StatusAccepted)
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
	q := loc.Query()
	q.Set("digest", desc.Digest.String())
	loc.RawQuery = q.Encode()

	body, err := c.openBlob(ctx, desc)
	if err != nil {
		return "", err
	}
	defer body.Close()
	if _, err := c.do(ctx, http.MethodPut, loc.String(), body, desc.Size, http.StatusCreated); err != nil {
		var terr *transport.Error
		if !errors.As(err, &terr) && ctx.Err() == nil {
			// The connection failed while the body was moving (either side cut): start over.
			return "", fmt.Errorf("upload: %w: %w", errTransferBroken, err)
		}
		return "", fmt.Errorf("upload: %w", err)
	}
	return "copied", nil
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
