package localecr

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/regflow/regflow/shared/local/eventq"
	"github.com/regflow/regflow/shared/local/faults"
)

// Options configure one local ECR, i.e. one simulated AWS account's registry.
type Options struct {
	// Account is the 12-digit AWS account id (registryId). Default 111111111111.
	Account string
	// Region is reported in ARNs and events. Default us-east-1.
	Region string
	// Addr is the loopback address to listen on. Default 127.0.0.1:0 (a free port).
	Addr string
	// Clock is the time source for push and pull times, scans and events.
	// Default: a NewClock that follows the wall clock. Share one between servers.
	Clock *Clock
	// OnEvent receives each EventBridge event (JSON, an event.Envelope) in order, on a
	// goroutine of its own; it may call back into the server.
	OnEvent func(ctx context.Context, event []byte)
	// AuthDisabled lets /v2 requests through without the Basic credentials
	// that GetAuthorizationToken hands out.
	AuthDisabled bool
	// Password is the registry password GetAuthorizationToken hands out
	// (user "AWS"). Default: random per server. Fix it when a local stack
	// prints login instructions.
	Password string
	// AutoCreateRepos creates a repository on the first registry push to it
	// instead of failing with NAME_UNKNOWN, as ECR's create-on-push setting does.
	AutoCreateRepos bool
	// Scanner, when set, scans images pushed to repositories with scanOnPush
	// (and on StartImageScan); its findings are recorded as by InjectScan.
	Scanner func(ctx context.Context, repo, digest string) ([]Finding, error)
	// Logger receives request logs at debug level. Default: discard.
	Logger *slog.Logger
	// FaultSeed seeds the random choices of fault injection (reproducible runs).
	FaultSeed uint64
}

// Server is one account's local ECR: the registry API under /v2/ and the ECR
// JSON control plane at POST /, on one loopback port.
type Server struct {
	opts     Options
	account  string
	region   string
	clock    *Clock
	log      *slog.Logger
	password string

	mu    sync.RWMutex // guards repos, seq and everything they hold
	repos map[string]*repository
	seq   uint64

	blobs    *blobStore
	faults   *faults.Table
	events   *eventq.Queue
	scans    sync.WaitGroup
	ctx      context.Context // cancelled by Close; handed to OnEvent and Scanner
	cancel   context.CancelFunc
	handler  http.Handler
	ln       net.Listener
	srv      *http.Server
	started  bool
	closeErr error
	closed   sync.Once
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// New validates opts and returns a server that is not listening yet (see Start, Handler).
func New(opts Options) (*Server, error) {
	if opts.Account == "" {
		opts.Account = "111111111111"
	}
	if !accountRE.MatchString(opts.Account) {
		return nil, fmt.Errorf("local ECR: account %q must be 12 digits", opts.Account)
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Clock == nil {
		opts.Clock = NewClock()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	password := opts.Password
	if password == "" {
		var pw [24]byte
		if _, err := rand.Read(pw[:]); err != nil {
			return nil, fmt.Errorf("local ECR: generate registry password: %w", err)
		}
		password = base64.RawURLEncoding.EncodeToString(pw[:])
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:     opts,
		account:  opts.Account,
		region:   opts.Region,
		clock:    opts.Clock,
		log:      opts.Logger.With("account", opts.Account),
		password: password,
		repos:    map[string]*repository{},
		blobs:    newBlobStore(),
		faults:   faults.New(opts.FaultSeed),
		events:   eventq.New("ECR events", opts.OnEvent),
		ctx:      ctx,
		cancel:   cancel,
	}
	s.handler = http.HandlerFunc(s.serveHTTP)
	go s.events.Run(ctx)
	return s, nil
}

// Start listens on Options.Addr and serves in the background until Close.
func (s *Server) Start(ctx context.Context) error {
	if s.started {
		return errors.New("local ECR: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("local ECR for account %s: listen on %s: %w", s.account, s.opts.Addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	s.started = true
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("local ECR stopped serving", "err", err)
		}
	}()
	s.log.Info("local ECR listening", "url", s.URL())
	return nil
}

// Close stops serving, drops undelivered events and waits for running scans.
func (s *Server) Close() error {
	s.closed.Do(func() {
		if s.srv != nil {
			// Shutdown waits for in-flight requests, but also up to 5 s for
			// connections a client dialed and never used; cut those short.
			ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
			defer cancel()
			if err := s.srv.Shutdown(ctx); err != nil {
				s.closeErr = s.srv.Close()
			}
		}
		s.cancel()
		s.events.Close()
		<-s.events.Done
		s.scans.Wait()
	})
	return s.closeErr
}

// Handler serves both APIs; use it to mount the server elsewhere (httptest).
// Host and URL are only known after Start.
func (s *Server) Handler() http.Handler { return s.handler }

// Host is the registry host (127.0.0.1:port) for image references: Host()+"/team/app:tag".
func (s *Server) Host() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is the ECR API endpoint (http://127.0.0.1:port) for the SDK's BaseEndpoint
// or AWS_ENDPOINT_URL_ECR; it is also GetAuthorizationToken's proxyEndpoint.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.Host()
}

// Account is the simulated AWS account id.
func (s *Server) Account() string { return s.account }

// Region is the simulated AWS region.
func (s *Server) Region() string { return s.region }

// Clock is the server's time source; move it with SetNow and Advance.
func (s *Server) Clock() *Clock { return s.clock }

// Credentials returns the Basic credentials the registry API accepts (user "AWS").
func (s *Server) Credentials() (user, password string) { return "AWS", s.password }

func (s *Server) repoARN(name string) string {
	return fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", s.region, s.account, name)
}

// serveHTTP classifies the request, counts it, applies faults and dispatches.
func (s *Server) serveHTTP(w http.ResponseWriter, req *http.Request) {
	var (
		op       string
		isECR    bool
		v2       route
		start    = time.Now()
		recorder = &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	)
	switch {
	case req.URL.Path == "/v2" || strings.HasPrefix(req.URL.Path, "/v2/"):
		v2 = classify(req)
		op = v2.op
	case req.Method == http.MethodPost && (req.URL.Path == "/" || req.URL.Path == ""):
		isECR = true
		op = strings.TrimPrefix(req.Header.Get("X-Amz-Target"), ecrTargetPrefix)
	default:
		http.NotFound(w, req)
		return
	}
	defer func() {
		s.log.Debug("request", "op", op, "method", req.Method, "path", req.URL.Path, "status", recorder.status, "took", time.Since(start))
	}()

	d := s.faults.Admit(op)
	if d.Latency > 0 {
		select {
		case <-time.After(d.Latency):
		case <-req.Context().Done():
			return
		}
	}
	switch {
	case d.Throttle && isECR:
		writeAPIError(recorder, newAPIError("ThrottlingException", "Rate exceeded"))
		return
	case d.Throttle:
		writeOCIError(recorder, newOCIError(http.StatusTooManyRequests, "TOOMANYREQUESTS", "Rate exceeded"))
		return
	case d.Fail && isECR:
		writeAPIError(recorder, &apiError{status: http.StatusInternalServerError, code: "ServerException", message: "injected server error"})
		return
	case d.Fail:
		writeOCIError(recorder, newOCIError(http.StatusInternalServerError, "UNKNOWN", "injected server error"))
		return
	case d.Drop && d.DropAfter == 0:
		panic(http.ErrAbortHandler)
	}
	var out http.ResponseWriter = recorder
	if d.Drop {
		out = &cutWriter{ResponseWriter: recorder, limit: d.DropAfter}
	}
	if isECR {
		s.serveECR(out, req, op)
		return
	}
	s.serveV2(out, req, v2)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
