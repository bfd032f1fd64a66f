package localruntime

import (
	"context"
	"encoding/json"
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
	"github.com/regflow/regflow/shared/local/localecr"
)

// Options configure one account's local ECS, Lambda and SSM.
type Options struct {
	// Account is the 12-digit AWS account id. Default 111111111111.
	Account string
	// Region is reported in ARNs and events. Default us-east-1.
	Region string
	// Addr is the loopback address to listen on. Default 127.0.0.1:0 (a free port).
	Addr string
	// Clock dates everything and times deployments; share the local ECR's.
	// Default: a localecr.NewClock that follows the wall clock.
	Clock *localecr.Clock
	// OnEvent receives each "ECS Deployment State Change" event (EventBridge JSON) in
	// order, on a goroutine of its own; it may call back into the server.
	OnEvent func(ctx context.Context, event []byte)
	// ResolveImage resolves an image reference that is not by digest (repo:tag) to its
	// digest, as ECS and Lambda do when they pull; the local stack passes its local ECR.
	// It returns ("", nil) for an image it does not know (another registry): that runs with
	// no digest; an error means the image cannot be pulled, and a deployment to it fails.
	ResolveImage func(ctx context.Context, image string) (digest string, err error)
	// DeploymentDelay is how long (on Clock) an ECS deployment stays IN_PROGRESS before
	// it completes or fails. Default 2s.
	DeploymentDelay time.Duration
	// UpdateDelay is how long (on Clock) a Lambda function's LastUpdateStatus stays
	// InProgress after UpdateFunctionCode. Default 500ms.
	UpdateDelay time.Duration
	// TickInterval is how often (wall time) due deployments and updates are settled in the
	// background. Default 25ms; Tick settles them at once.
	TickInterval time.Duration
	// Logger receives request logs at debug level. Default: discard.
	Logger *slog.Logger
	// FaultSeed seeds the random choices of fault injection.
	FaultSeed uint64
}

// Server is one account's local ECS, Lambda and SSM control planes on one loopback port:
// ECS and SSM as JSON 1.1 at POST / (told apart by X-Amz-Target), Lambda as REST-JSON
// under /2015-03-31/.
type Server struct {
	opts    Options
	account string
	region  string
	clock   *localecr.Clock
	log     *slog.Logger

	mu sync.Mutex // guards everything below
	// ECS
	clusters map[string]*cluster
	families map[string][]*taskDef // by family, revision-1 = index
	bad      map[string]bool       // digests whose tasks fail to start
	// Lambda
	functions map[string]*function
	// SSM
	params map[string]*parameter
	seq    uint64

	faults  *faults.Table
	events  *eventq.Queue
	ctx     context.Context
	cancel  context.CancelFunc
	ln      net.Listener
	srv     *http.Server
	started bool
	ticker  sync.WaitGroup
	closed  sync.Once
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// New validates opts and returns a server that is not listening yet (see Start, Handler).
func New(opts Options) (*Server, error) {
	if opts.Account == "" {
		opts.Account = "111111111111"
	}
	if !accountRE.MatchString(opts.Account) {
		return nil, fmt.Errorf("local runtime: account %q must be 12 digits", opts.Account)
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Clock == nil {
		opts.Clock = localecr.NewClock()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DeploymentDelay <= 0 {
		opts.DeploymentDelay = 2 * time.Second
	}
	if opts.UpdateDelay <= 0 {
		opts.UpdateDelay = 500 * time.Millisecond
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = 25 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts: opts, account: opts.Account, region: opts.Region, clock: opts.Clock,
		log:      opts.Logger.With("account", opts.Account),
		clusters: map[string]*cluster{}, families: map[string][]*taskDef{}, bad: map[string]bool{},
		functions: map[string]*function{}, params: map[string]*parameter{},
		faults: faults.New(opts.FaultSeed), events: eventq.New("ECS events", opts.OnEvent),
		ctx: ctx, cancel: cancel,
	}
	go s.events.Run(ctx)
	s.ticker.Add(1)
	go s.tickLoop()
	return s, nil
}

func (s *Server) tickLoop() {
	defer s.ticker.Done()
	t := time.NewTicker(s.opts.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.Tick()
		}
	}
}

// Tick settles every ECS deployment and Lambda update that is due on the clock. The
// server also does so in the background every TickInterval.
func (s *Server) Tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.settleDeployments(now)
	s.settleUpdates(now)
}

// Start listens on Options.Addr and serves in the background until Close.
func (s *Server) Start(ctx context.Context) error {
	if s.started {
		return errors.New("local runtime: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("local runtime for account %s: listen on %s: %w", s.account, s.opts.Addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	s.started = true
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("local runtime stopped serving", "err", err)
		}
	}()
	s.log.Info("local ECS, Lambda and SSM listening", "url", s.URL())
	return nil
}

// Close stops serving and the background settling, and drops undelivered events.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		if s.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
			defer cancel()
			if e := s.srv.Shutdown(ctx); e != nil {
				err = s.srv.Close()
			}
		}
		s.cancel()
		s.ticker.Wait()
		s.events.Close()
		<-s.events.Done
	})
	return err
}

// Handler serves the three APIs (for httptest or another mux).
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// URL is the endpoint for AWS_ENDPOINT_URL_ECS, _LAMBDA and _SSM (or the SDK's BaseEndpoint).
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Account is the simulated AWS account id.
func (s *Server) Account() string { return s.account }

// Region is the simulated region.
func (s *Server) Region() string { return s.region }

// Clock is the server's time source.
func (s *Server) Clock() *localecr.Clock { return s.clock }

// WaitEvents blocks until every event emitted before the call has been delivered.
func (s *Server) WaitEvents(ctx context.Context) error { return s.events.Wait(ctx) }

const (
	ecsTargetPrefix = "AmazonEC2ContainerServiceV20141113."
	ssmTargetPrefix = "AmazonSSM."
	lambdaPrefix    = "/2015-03-31/"
)

func (s *Server) serveHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	target := req.Header.Get("X-Amz-Target")
	var api, op string
	switch {
	case req.Method == http.MethodPost && strings.HasPrefix(target, ecsTargetPrefix):
		api, op = "ecs", strings.TrimPrefix(target, ecsTargetPrefix)
	case req.Method == http.MethodPost && strings.HasPrefix(target, ssmTargetPrefix):
		api, op = "ssm", strings.TrimPrefix(target, ssmTargetPrefix)
	case strings.HasPrefix(req.URL.Path, lambdaPrefix):
		api, op = "lambda", lambdaOp(req)
	default:
		http.NotFound(w, req)
		return
	}
	defer func() { s.log.Debug("request", "api", api, "op", op, "took", time.Since(start)) }()
	d := s.faults.Admit(op)
	if d.Latency > 0 {
		select {
		case <-time.After(d.Latency):
		case <-req.Context().Done():
			return
		}
	}
	if d.Throttle || d.Fail {
		e := &apiError{status: http.StatusBadRequest, code: "ThrottlingException", message: "Rate exceeded"}
		if d.Fail {
			e = &apiError{status: http.StatusInternalServerError, code: "ServiceException", message: "injected server error"}
			if api == "ecs" {
				e.code = "ServerException"
			} else if api == "ssm" {
				e.code = "InternalServerError"
			}
		}
		if api == "lambda" {
			if d.Throttle {
				e = &apiError{status: http.StatusTooManyRequests, code: "TooManyRequestsException", message: "Rate exceeded"}
			}
			writeRESTError(w, e)
		} else {
			writeJSONError(w, e)
		}
		return
	}
	switch api {
	case "ecs":
		s.serveJSON(w, req, op, s.ecsOps())
	case "ssm":
		s.serveJSON(w, req, op, s.ssmOps())
	default:
		s.serveLambda(w, req)
	}
}

// jsonOp is one JSON 1.1 operation: it decodes its input from the body.
type jsonOp func(ctx context.Context, body []byte) (any, *apiError)

func (s *Server) serveJSON(w http.ResponseWriter, req *http.Request, op string, ops map[string]jsonOp) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 8<<20))
	if err != nil {
		writeJSONError(w, &apiError{status: http.StatusBadRequest, code: "SerializationException", message: "could not read the request body"})
		return
	}
	h, ok := ops[op]
	if !ok {
		writeJSONError(w, &apiError{status: http.StatusBadRequest, code: "UnknownOperationException", message: fmt.Sprintf("the local runtime does not implement %s", op)})
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	out, aerr := h(req.Context(), body)
	if aerr != nil {
		writeJSONError(w, aerr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// decode reads a JSON 1.1 input; an unreadable one is SerializationException as AWS says.
func decode(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{status: http.StatusBadRequest, code: "SerializationException", message: "Start of structure or map found where not expected."}
	}
	return nil
}

// apiError is an AWS error: status, code (__type or X-Amzn-ErrorType) and message.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func writeJSONError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "message": e.message})
}

// writeRESTError writes a Lambda error: the code in X-Amzn-ErrorType, the body Lambda's.
func writeRESTError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "Message": e.message})
}

// Fault is what goes wrong for one operation (its AWS name, or AllOps): latency,
// throttling and server errors; these control planes cut no connections (DropRate is
// ignored).
type Fault = faults.Fault

// AllOps as a SetFault key applies to every operation without a fault of its own.
const AllOps = faults.AllOps

// SetFault installs f for op (e.g. "UpdateService", "GetFunction", "PutParameter"); a zero
// Fault removes it.
func (s *Server) SetFault(op string, f Fault) { s.faults.Set(op, f) }

// Requests returns how many requests op has received (faulted ones included).
func (s *Server) Requests(op string) int { return s.faults.Count(op) }

// epochTime marshals as the JSON 1.1 protocols do: epoch seconds with a fraction.
type epochTime time.Time

func (t epochTime) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return fmt.Appendf(nil, "%d.%03d", ms/1000, ms%1000), nil
}
