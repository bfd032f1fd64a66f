package localbus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/bus"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localbus"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// sink collects what the server hands on; fail makes the next n deliveries fail.
type sink struct {
	mu     sync.Mutex
	events [][]byte
	fail   int
	calls  int
}

func (s *sink) handle(_ context.Context, ev []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail > 0 {
		s.fail--
		return errors.New("target unavailable")
	}
	s.events = append(s.events, ev)
	return nil
}

func (s *sink) got(t *testing.T) []event.Envelope {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []event.Envelope
	for _, b := range s.events {
		ev, err := event.Parse(b)
		if err != nil {
			t.Fatalf("handed-on event is not EventBridge-shaped: %v\n%s", err, b)
		}
		out = append(out, ev)
	}
	return out
}

func start(t *testing.T, s *sink, opts ...localbus.Option) *localbus.Server {
	t.Helper()
	srv := localbus.New(s.handle, opts...)
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestPublisherThroughSDK publishes with bus.EventBridge over the real SDK client and
// checks that the target sees what EventBridge would hand it.
func TestPublisherThroughSDK(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	decision := event.PromotionDecision{RequestID: "req-1", Env: "prod", Repository: "team/api", Digest: "sha256:" + strings.Repeat("b", 64),
		Decision: regflow.StatusApproved, DecidedBy: "U1", Approvers: []string{"U1"}, At: at}
	clock := func() time.Time { return time.Date(2027, 1, 2, 3, 4, 5, 600, time.UTC) }
	passed := true
	tests := []struct {
		name       string
		detailType string
		at         time.Time
		detail     event.Detail
		wantTime   time.Time
	}{
		{"decision keeps its time", event.TypePromotionApproved, at, decision, at},
		{"rollback", event.TypeReleaseRolledBack, at.Add(90 * time.Minute), event.ReleaseRolledBack{Env: "prod", From: "sha256:a", To: "sha256:b"}, at.Add(90 * time.Minute)},
		{"no time gets the clock's", event.TypeVerificationResult, time.Time{}, event.VerificationResult{Env: "staging", Passed: &passed}, clock().Truncate(time.Second)},
	}
	s := &sink{}
	srv := start(t, s, localbus.WithAccount("111111111111"), localbus.WithClock(clock))
	pub := bus.NewEventBridge(eventbridge.NewFromConfig(testenv.AWSConfig(srv.URL())), "regflow")
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.detail.DetailType() != tt.detailType {
				t.Fatalf("detail is a %q, want %q", tt.detail.DetailType(), tt.detailType)
			}
			// A message without a time is published as an entry without one.
			m := event.Message{Detail: tt.detail, Key: tt.name, At: tt.at}
			if err := pub.Publish(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			all := s.got(t)
			if len(all) != i+1 {
				t.Fatalf("target got %d events, want %d", len(all), i+1)
			}
			got := all[i]
			want, _ := m.Envelope()
			if got.Source != event.SourceRegflow || got.DetailType != tt.detailType || got.Version != "0" {
				t.Fatalf("envelope %+v", got)
			}
			if got.AccountID != "111111111111" || got.Region != "us-east-1" {
				t.Fatalf("account %q region %q", got.AccountID, got.Region)
			}
			if !got.Time.Equal(tt.wantTime) {
				t.Fatalf("time %s, want %s", got.Time, tt.wantTime)
			}
			if !uuidRE.MatchString(got.ID) || got.ID == want.ID {
				t.Fatalf("id %q: EventBridge assigns a fresh random id", got.ID)
			}
			if got.Resources == nil {
				t.Fatal("resources must be [] as EventBridge sends it, not null")
			}
			var gd, wd any
			_ = json.Unmarshal(got.Detail, &gd)
			_ = json.Unmarshal(want.Detail, &wd)
			if diff := cmp.Diff(wd, gd); diff != "" {
				t.Fatalf("detail (-published +delivered):\n%s", diff)
			}
		})
	}
	// The decision round-trips into its Go type.
	var d event.PromotionDecision
	if err := json.Unmarshal(s.got(t)[0].Detail, &d); err != nil || !cmp.Equal(d, decision) {
		t.Fatalf("decision %+v, %v", d, err)
	}
}

// TestEndpointFromEnvironment reaches the server the standard way: the SDK's default
// config with AWS_ENDPOINT_URL_EVENTBRIDGE; the region comes from the client's signature.
func TestEndpointFromEnvironment(t *testing.T) {
	s := &sink{}
	srv := start(t, s)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_EVENTBRIDGE": srv.URL(), "AWS_REGION": "eu-west-1",
		"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_ENDPOINT_URL": "", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ev := event.Message{Detail: event.ImagePromoted{Env: "staging"}, Key: "k", At: time.Now()}
	if err := bus.NewEventBridge(eventbridge.NewFromConfig(cfg), "regflow").Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	got := s.got(t)
	if len(got) != 1 || got[0].Region != "eu-west-1" || got[0].AccountID != "000000000000" {
		t.Fatalf("got %+v", got)
	}
}

// TestEntryResults sends a batch through the raw SDK client: each entry gets its own
// result, in order, and only valid ones reach the target.
func TestEntryResults(t *testing.T) {
	s := &sink{}
	srv := start(t, s, localbus.WithBus("regflow"))
	eb := eventbridge.NewFromConfig(testenv.AWSConfig(srv.URL()))
	entry := func(mod func(*ebtypes.PutEventsRequestEntry)) ebtypes.PutEventsRequestEntry {
		e := ebtypes.PutEventsRequestEntry{Source: aws.String("regflow"), DetailType: aws.String("Image Promoted"),
			Detail: aws.String(`{"env":"prod"}`), EventBusName: aws.String("regflow")}
		if mod != nil {
			mod(&e)
		}
		return e
	}
	tests := []struct {
		name     string
		entry    ebtypes.PutEventsRequestEntry
		wantCode string
	}{
		{"valid", entry(nil), ""},
		{"bus by ARN", entry(func(e *ebtypes.PutEventsRequestEntry) {
			e.EventBusName = aws.String("arn:aws:events:us-east-1:111111111111:event-bus/regflow")
		}), ""},
		{"detail not JSON", entry(func(e *ebtypes.PutEventsRequestEntry) { e.Detail = aws.String("{nope") }), "MalformedDetail"},
		{"detail an array", entry(func(e *ebtypes.PutEventsRequestEntry) { e.Detail = aws.String("[1]") }), "MalformedDetail"},
		{"no source", entry(func(e *ebtypes.PutEventsRequestEntry) { e.Source = nil }), "InvalidArgument"},
		{"no detail-type", entry(func(e *ebtypes.PutEventsRequestEntry) { e.DetailType = nil }), "InvalidArgument"},
		{"no detail", entry(func(e *ebtypes.PutEventsRequestEntry) { e.Detail = nil }), "InvalidArgument"},
		{"other bus", entry(func(e *ebtypes.PutEventsRequestEntry) { e.EventBusName = aws.String("regflwo") }), "ResourceNotFoundException"},
		{"default bus", entry(func(e *ebtypes.PutEventsRequestEntry) { e.EventBusName = nil }), "ResourceNotFoundException"},
	}
	in := &eventbridge.PutEventsInput{}
	wantFailed := 0
	for _, tt := range tests {
		in.Entries = append(in.Entries, tt.entry)
		if tt.wantCode != "" {
			wantFailed++
		}
	}
	// Ten entries is the limit; the table fills nine of them.
	in.Entries = append(in.Entries, entry(nil))
	out, err := eb.PutEvents(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if int(out.FailedEntryCount) != wantFailed || len(out.Entries) != len(in.Entries) {
		t.Fatalf("FailedEntryCount %d of %d results, want %d of %d", out.FailedEntryCount, len(out.Entries), wantFailed, len(in.Entries))
	}
	for i, tt := range tests {
		r := out.Entries[i]
		if aws.ToString(r.ErrorCode) != tt.wantCode {
			t.Errorf("%s: error code %q, want %q (%s)", tt.name, aws.ToString(r.ErrorCode), tt.wantCode, aws.ToString(r.ErrorMessage))
		}
		if (tt.wantCode == "") != (r.EventId != nil) {
			t.Errorf("%s: event id %v", tt.name, r.EventId)
		}
	}
	if got := len(s.got(t)); got != len(in.Entries)-wantFailed {
		t.Fatalf("target got %d events, want %d", got, len(in.Entries)-wantFailed)
	}
}

// TestTargetFailures: a failing handler fails the entry with a transient code, so
// bus.EventBridge retries it, and reports the cause when it keeps failing.
func TestTargetFailures(t *testing.T) {
	ev := event.Message{Detail: event.PromotionDecision{RequestID: "req-1", Decision: regflow.StatusApproved}, Key: "k", At: time.Now()}
	tests := []struct {
		name      string
		fail      int
		wantErr   string
		wantCalls int
	}{
		{"one failure is retried", 1, "", 2},
		{"failing throughout", 100, "target unavailable", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sink{fail: tt.fail}
			srv := start(t, s)
			err := bus.NewEventBridge(eventbridge.NewFromConfig(testenv.AWSConfig(srv.URL())), "regflow").Publish(context.Background(), ev)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Publish = %v, want error containing %q", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "InternalException") {
				t.Fatalf("error lacks the entry's code: %v", err)
			}
			if s.calls != tt.wantCalls {
				t.Fatalf("%d deliveries, want %d", s.calls, tt.wantCalls)
			}
		})
	}
}

// TestCallErrors covers what fails the whole call, seen both by the SDK (as an API
// error code) and on the wire.
func TestCallErrors(t *testing.T) {
	s := &sink{}
	srv := start(t, s)
	eb := eventbridge.NewFromConfig(testenv.AWSConfig(srv.URL()))
	one := ebtypes.PutEventsRequestEntry{Source: aws.String("regflow"), DetailType: aws.String("x"), Detail: aws.String("{}")}
	for _, n := range []int{0, localbus.MaxEntries + 1} {
		_, err := eb.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: repeat(one, n)})
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
			t.Fatalf("%d entries: %v, want ValidationException", n, err)
		}
	}
	wire := []struct {
		name     string
		method   string
		target   string
		body     string
		status   int
		wantType string
	}{
		{"other operation", http.MethodPost, "AWSEvents.ListRules", `{}`, http.StatusBadRequest, "UnknownOperationException"},
		{"no target", http.MethodPost, "", `{}`, http.StatusBadRequest, "UnknownOperationException"},
		{"GET", http.MethodGet, "AWSEvents.PutEvents", ``, http.StatusMethodNotAllowed, "UnknownOperationException"},
		{"not JSON", http.MethodPost, "AWSEvents.PutEvents", `{"Entries":`, http.StatusBadRequest, "SerializationException"},
		{"bad time", http.MethodPost, "AWSEvents.PutEvents", `{"Entries":[{"Source":"s","DetailType":"d","Detail":"{}","Time":"soon"}]}`, http.StatusBadRequest, "SerializationException"},
	}
	for _, tt := range wire {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL(), bytes.NewBufferString(tt.body))
			req.Header.Set("X-Amz-Target", tt.target)
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.status || body.Type != tt.wantType || body.Message == "" {
				t.Fatalf("%d %+v, want %d %s", resp.StatusCode, body, tt.status, tt.wantType)
			}
		})
	}
	// A negative epoch is refused per entry, not for the call.
	req, _ := http.NewRequest(http.MethodPost, srv.URL(), bytes.NewBufferString(`{"Entries":[{"Source":"s","DetailType":"d","Detail":"{}","Time":-5}]}`))
	req.Header.Set("X-Amz-Target", "AWSEvents.PutEvents")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		FailedEntryCount int
		Entries          []struct{ ErrorCode string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.FailedEntryCount != 1 || out.Entries[0].ErrorCode != "InvalidArgument" {
		t.Fatalf("negative time: %+v %v", out, err)
	}
	if s.calls != 0 {
		t.Fatalf("%d deliveries from failed calls", s.calls)
	}
}

func TestLifecycle(t *testing.T) {
	srv := localbus.New(func(context.Context, []byte) error { return nil })
	if srv.URL() != "" {
		t.Fatal("URL before Start")
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %q", srv.URL())
	}
	cancel()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := http.Post(srv.URL(), "application/json", nil); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still serving after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close after stop: %v", err)
	}
}

func repeat(e ebtypes.PutEventsRequestEntry, n int) []ebtypes.PutEventsRequestEntry {
	out := make([]ebtypes.PutEventsRequestEntry, n)
	for i := range out {
		out[i] = e
	}
	return out
}

// BenchmarkPublish measures one bus.EventBridge publish through the SDK to the local endpoint.
func BenchmarkPublish(b *testing.B) {
	srv := localbus.New(func(context.Context, []byte) error { return nil })
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	pub := bus.NewEventBridge(eventbridge.NewFromConfig(testenv.AWSConfig(srv.URL())), "regflow")
	ev := event.Message{Detail: event.ImagePromoted{Env: "prod"}, Key: "k", At: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if err := pub.Publish(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
}
