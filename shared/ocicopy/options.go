package ocicopy

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Option configures Copy.
type Option func(*options)

type options struct {
	tag           string
	keychain      authn.Keychain
	auths         map[string]authn.Authenticator
	insecure      map[string]bool
	jobs          int
	transport     http.RoundTripper
	backoff       remote.Backoff
	referrers     bool
	referrerDepth int
	verifyBlobs   bool
	logger        *slog.Logger
	userAgent     string
	bufferSize    int
	chunkSize     int64
	sessions      UploadSessions
}

// DefaultJobs is the default number of blobs transferred at once.
const DefaultJobs = 8

// defaultBackoff is the retry schedule for 5xx, 429 and connection errors: 6 attempts,
// waiting about 0.25 s, 0.6 s, 1.6 s, 3.9 s and 9.8 s between them.
func defaultBackoff() remote.Backoff {
	return remote.Backoff{Duration: 250 * time.Millisecond, Factor: 2.5, Jitter: 0.2, Steps: 6}
}

func makeOptions(opts []Option) *options {
	o := &options{
		auths:         map[string]authn.Authenticator{},
		insecure:      map[string]bool{},
		jobs:          DefaultJobs,
		backoff:       defaultBackoff(),
		referrers:     true,
		referrerDepth: 3,
		userAgent:     "regflow-ocicopy",
		bufferSize:    256 << 10,
		chunkSize:     DefaultChunkSize,
	}
	for _, opt := range opts {
		opt(o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// WithTag sets the tag to apply in the target once everything is present and verified
// (normally the source's tag, e.g. the 40-hex git SHA).
func WithTag(tag string) Option { return func(o *options) { o.tag = tag } }

// WithKeychain resolves credentials for both registries from k (after WithAuth entries).
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// WithAuth uses a for the registry host (e.g. "111111111111.dkr.ecr.us-east-1.amazonaws.com"
// or "127.0.0.1:5000"). For ECR pass authn.FromConfig(authn.AuthConfig{Username: "AWS", Password: token}).
func WithAuth(registryHost string, a authn.Authenticator) Option {
	return func(o *options) { o.auths[registryHost] = a }
}

// WithInsecureRegistry reaches registryHost over plain HTTP. Loopback and RFC 1918 hosts
// (127.0.0.1:port, localhost:port) already are.
func WithInsecureRegistry(registryHost string) Option {
	return func(o *options) { o.insecure[registryHost] = true }
}

// WithJobs sets how many blobs are transferred at once (default DefaultJobs).
func WithJobs(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.jobs = n
		}
	}
}

// WithTransport sets the base HTTP transport (default: a tuned HTTP/1.1 transport per copy).
// Authentication and retries are layered on top of it.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// WithRetryBackoff sets the retry schedule used for every request and for whole blob transfers
// (default: 6 attempts, waiting about 0.25 s, 0.6 s, 1.6 s, 3.9 s and 9.8 s between them).
func WithRetryBackoff(b remote.Backoff) Option { return func(o *options) { o.backoff = b } }

// WithoutReferrers copies only the image, not its signatures, attestations and SBOMs.
func WithoutReferrers() Option { return func(o *options) { o.referrers = false } }

// WithReferrerDepth bounds how deep referrers of referrers are followed (default 3; 1 = direct only).
func WithReferrerDepth(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.referrerDepth = n
		}
	}
}

// WithClientVerification hashes every blob in the copier too. Off by default: the target
// registry verifies each blob against its digest when the upload is committed, so a second
// pass here costs CPU and finds nothing more.
func WithClientVerification() Option { return func(o *options) { o.verifyBlobs = true } }

// DefaultChunkSize is the PATCH size of blobs uploaded in chunks (see WithChunkSize).
const DefaultChunkSize = 64 << 20

// WithChunkSize sets the size of the chunks a blob larger than n is uploaded in (default
// DefaultChunkSize). A smaller blob goes in one PUT, its fastest path. A chunked upload that
// breaks resumes at the offset the target reports, so a layer that cannot cross the link in
// one attempt still arrives over several; each chunk costs a round trip, so n trades
// throughput on a slow link for what a broken connection loses.
func WithChunkSize(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.chunkSize = n
		}
	}
}

// WithLogger logs progress (Info per copy, Debug per blob and manifest).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithUserAgent sets the User-Agent sent to both registries.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// retryable reports whether err is worth another attempt: 5xx, 429 and 408 answers,
// connections cut or reset, and timeouts of single requests.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		for _, d := range terr.Errors {
			// A blob that arrived damaged (or cut and committed) is worth re-sending from the source.
			if d.Code == transport.DigestInvalidErrorCode {
				return true
			}
		}
		return terr.Temporary()
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, errShortBlob) || errors.Is(err, errTransferBroken)
}

// retryStatus reports whether an answer is worth another try (statusRetrier).
func retryStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// newTransport is tuned for a few large parallel streams: HTTP/1.1 so that each blob gets its
// own connection and TCP window, and big socket buffers to cut syscalls per megabyte.
func newTransport(bufferSize int) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		WriteBufferSize:       bufferSize,
		ReadBufferSize:        bufferSize,
	}
}
