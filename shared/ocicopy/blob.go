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

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// errShortBlob marks a source body that ended before (or ran past) its descriptor's size.
var errShortBlob = errors.New("blob body does not match its descriptor size")

// rawLayer is a v1.Layer over a source blob that streams it without hashing: the target
// registry checks the digest when the upload is committed (PUT ?digest=), and refuses a mismatch.
type rawLayer struct {
	c      *copier
	ctx    context.Context
	desc   v1.Descriptor
	opened atomic.Int32 // Compressed calls: 0 means the target already had it or mounted it
}

func (l *rawLayer) Digest() (v1.Hash, error) { return l.desc.Digest, nil }
func (l *rawLayer) DiffID() (v1.Hash, error) {
	return v1.Hash{}, fmt.Errorf("diff id of %s is not known to a copy", l.desc.Digest)
}
func (l *rawLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *rawLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *rawLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, fmt.Errorf("a copy never decompresses %s", l.desc.Digest)
}

// Compressed opens the source blob; it is called again for each retried transfer.
func (l *rawLayer) Compressed() (io.ReadCloser, error) {
	l.opened.Add(1)
	c := l.c
	u := url.URL{Scheme: c.src.Scheme(), Host: c.src.RegistryStr(), Path: fmt.Sprintf("/v2/%s/blobs/%s", c.src.RepositoryStr(), l.desc.Digest)}
	req, err := http.NewRequestWithContext(l.ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.srcBlobs.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read source blob %s: %w", l.desc.Digest, err)
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("read source blob %s: %w", l.desc.Digest, err)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != l.desc.Size {
		resp.Body.Close()
		return nil, fmt.Errorf("source blob %s is %d bytes, its descriptor says %d", l.desc.Digest, resp.ContentLength, l.desc.Size)
	}
	b := &blobReader{rc: resp.Body, left: l.desc.Size, moved: &c.bytesMoved, digest: l.desc.Digest}
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
	if b.h != nil {
		b.h.Write(p[:n])
	}
	if b.left < 0 {
		return n, fmt.Errorf("source blob %s: %w (longer)", b.digest, errShortBlob)
	}
	if err == io.EOF {
		if b.left > 0 {
			return n, fmt.Errorf("source blob %s: %w (%d bytes missing): %w", b.digest, errShortBlob, b.left, io.ErrUnexpectedEOF)
		}
		if b.h != nil && hex.EncodeToString(b.h.Sum(nil)) != b.digest.Hex {
			return n, fmt.Errorf("source blob %s does not hash to its digest", b.digest)
		}
	}
	return n, err
}

func (b *blobReader) Close() error { return b.rc.Close() }

// blobPresent asks the target with a HEAD (go-containerregistry's remote layer Size).
func (c *copier) blobPresent(ctx context.Context, desc v1.Descriptor) (bool, error) {
	l, err := c.dstPull.Layer(ctx, c.dst.Digest(desc.Digest.String()))
	if err != nil {
		return false, err
	}
	if _, err := l.Size(); err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("check target blob %s: %w", desc.Digest, err)
	}
	return true, nil
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
