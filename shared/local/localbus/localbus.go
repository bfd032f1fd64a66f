// Package localbus is the local stack's event bus: an in-process Bus subscribed from the
// routing table (bus.go), and a Server of EventBridge's PutEvents API (JSON 1.1) on loopback
// that hands each accepted entry, shaped as EventBridge delivers it, to the bus. With it,
// anything that publishes through the real aws-sdk-go-v2 EventBridge client (bus.EventBridge,
// the CLI's --local commands) reaches the local stack by setting AWS_ENDPOINT_URL_EVENTBRIDGE,
// the standard way.
package localbus

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/regflow/regflow/shared/event"
)

// Handler receives one event as EventBridge hands it to a target: the JSON of a
// event.Envelope with id, account, region and time filled. It should accept the event
// and deliver it asynchronously, as EventBridge does; an error fails the entry with
// InternalException, which publishers retry.
type Handler func(ctx context.Context, event []byte) error

// MaxEntries is PutEvents' limit on entries per call.
const MaxEntries = 10

// maxBody bounds a request body; far above what ten regflow events need.
const maxBody = 4 << 20

// Server is a local EventBridge endpoint for PutEvents.
type Server struct {
	handler Handler
	account string
	region  string
	bus     string
	now     func() time.Time

	mu   sync.Mutex
	ln   net.Listener
	srv  *http.Server
	stop func() bool // unregisters the context watch
}

// Option configures a Server.
type Option func(*Server)

// WithAccount sets the account events carry (default 000000000000). The local stack
// passes the pipeline account, where the regflow bus lives in AWS.
func WithAccount(account string) Option { return func(s *Server) { s.account = account } }

// WithRegion sets the region events carry. Without it the region is the one the
// client signed for (its SigV4 credential scope), else us-east-1.
func WithRegion(region string) Option { return func(s *Server) { s.region = region } }

// WithBus accepts entries only for this bus (by name or ARN); others fail with
// ResourceNotFoundException. Stricter than AWS on purpose: EventBridge accepts entries
// for a bus that does not exist and drops them silently (aws/aws-cli#9186), and a
// misnamed bus is better found on a laptop. Default: any bus.
func WithBus(name string) Option { return func(s *Server) { s.bus = busName(name) } }

// WithClock sets the clock for entries that carry no Time (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New returns a server that passes accepted events to h. Start it to listen.
func New(h Handler, opts ...Option) *Server {
	s := &Server{handler: h, account: "000000000000", now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Start listens on a free loopback port and serves until ctx ends or Close.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("localbus: already started")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("local EventBridge endpoint: listen: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	srv := s.srv
	go func() { _ = srv.Serve(ln) }()
	// Stop with the context, without a goroutine that outlives Close.
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	s.stop = stop
	return nil
}

// URL is the endpoint to give the SDK (AWS_ENDPOINT_URL_EVENTBRIDGE or BaseEndpoint).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops serving. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	srv, stop := s.srv, s.stop
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	if stop != nil {
		stop()
	}
	return srv.Close()
}

// putEventsInput is the JSON 1.1 request body of PutEvents.
type putEventsInput struct {
	Entries    []entryIn `json:"Entries"`
	EndpointID string    `json:"EndpointId"`
}

type entryIn struct {
	Source       string   `json:"Source"`
	DetailType   string   `json:"DetailType"`
	Detail       string   `json:"Detail"`
	Resources    []string `json:"Resources"`
	EventBusName string   `json:"EventBusName"`
	// Time is epoch seconds, possibly fractional, as the SDK writes timestamps in JSON 1.1.
	Time        *json.Number `json:"Time"`
	TraceHeader string       `json:"TraceHeader"`
}

type entryOut struct {
	EventID      string `json:"EventId,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

type putEventsOutput struct {
	Entries          []entryOut `json:"Entries"`
	FailedEntryCount int        `json:"FailedEntryCount"`
}

// ServeHTTP answers PutEvents; every other operation is refused as EventBridge refuses
// an operation it does not know.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		apiError(w, http.StatusMethodNotAllowed, "UnknownOperationException", "EventBridge operations are POSTed")
		return
	}
	target := r.Header.Get("X-Amz-Target")
	if target != "AWSEvents.PutEvents" {
		apiError(w, http.StatusBadRequest, "UnknownOperationException",
			fmt.Sprintf("operation %q is not served here: the local EventBridge endpoint implements only AWSEvents.PutEvents", target))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, "ValidationException", "request body too large or unreadable: "+err.Error())
		return
	}
	var in putEventsInput
	if err := json.Unmarshal(body, &in); err != nil {
		apiError(w, http.StatusBadRequest, "SerializationException", "request body is not PutEvents JSON: "+err.Error())
		return
	}
	if n := len(in.Entries); n < 1 || n > MaxEntries {
		apiError(w, http.StatusBadRequest, "ValidationException",
			fmt.Sprintf("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and %d (got %d)", MaxEntries, n))
		return
	}
	region := s.region
	if region == "" {
		region = signedRegion(r.Header.Get("Authorization"))
	}
	out := putEventsOutput{Entries: make([]entryOut, 0, len(in.Entries))}
	for _, e := range in.Entries {
		res := s.accept(r.Context(), e, region)
		if res.ErrorCode != "" {
			out.FailedEntryCount++
		}
		out.Entries = append(out.Entries, res)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// accept validates one entry as EventBridge does and hands it on.
func (s *Server) accept(ctx context.Context, e entryIn, region string) entryOut {
	switch {
	case e.Source == "":
		return failed("InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument.")
	case e.DetailType == "":
		return failed("InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is a required argument.")
	case e.Detail == "":
		return failed("InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument.")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(e.Detail), &obj); err != nil || obj == nil {
		return failed("MalformedDetail", "Detail is malformed.")
	}
	if s.bus != "" && busName(e.EventBusName) != s.bus {
		name := e.EventBusName
		if name == "" {
			name = "default"
		}
		return failed("ResourceNotFoundException", fmt.Sprintf("Event bus %s does not exist (this local endpoint serves bus %s).", name, s.bus))
	}
	at := s.now()
	if e.Time != nil {
		t, err := epoch(*e.Time)
		if err != nil {
			return failed("InvalidArgument", "Parameter Time is not valid: "+err.Error())
		}
		at = t
	}
	resources := e.Resources
	if resources == nil {
		resources = []string{}
	}
	id, err := uuid()
	if err != nil {
		return failed("InternalException", err.Error())
	}
	ev, err := json.Marshal(event.Envelope{
		Version: "0", ID: id, DetailType: e.DetailType, Source: e.Source, AccountID: s.account,
		Time: at.UTC().Truncate(time.Second), Region: region, Resources: resources, Detail: json.RawMessage(e.Detail),
	})
	if err != nil {
		return failed("InternalException", err.Error())
	}
	if err := s.handler(ctx, ev); err != nil {
		return failed("InternalException", err.Error())
	}
	return entryOut{EventID: id}
}

func failed(code, msg string) entryOut { return entryOut{ErrorCode: code, ErrorMessage: msg} }

// apiError writes a JSON 1.1 error the SDK decodes into a smithy.APIError with this code.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

// busName reduces an event bus ARN (arn:aws:events:region:account:event-bus/name) to its name.
func busName(s string) string {
	if s == "" {
		return "default"
	}
	if strings.HasPrefix(s, "arn:") {
		if i := strings.LastIndex(s, "event-bus/"); i >= 0 {
			return s[i+len("event-bus/"):]
		}
	}
	return s
}

// signedRegion reads the region from a SigV4 Authorization header's credential scope
// (Credential=AKID/date/region/service/aws4_request), falling back to us-east-1.
func signedRegion(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return "us-east-1"
	}
	scope, _, _ := strings.Cut(rest, ",")
	parts := strings.Split(scope, "/")
	if len(parts) == 5 && parts[2] != "" {
		return parts[2]
	}
	return "us-east-1"
}

// epoch parses epoch seconds, possibly fractional.
func epoch(n json.Number) (time.Time, error) {
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, fmt.Errorf("%q is not epoch seconds", n.String())
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// uuid returns a random (version 4) UUID, as EventBridge assigns event ids.
func uuid() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("event id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
