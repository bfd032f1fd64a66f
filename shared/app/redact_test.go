package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/ocicopy"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/slacksig"
)

// The credentials this test hands regflow, each of which must never come back out.
const (
	botToken      = "xoxb-1111111111-2222222222-BoTtOkEnSeCrEt"
	hookSecret    = "HoOkPaThSeCrEt0123456789"
	s3Host        = "prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com"
	amzToken      = "IQoJb3JpZ2luX2VjSeSsIoNtOkEn"
	amzSignature  = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	amzCredential = "ASIAQEXAMPLEKEYID"
)

var leaks = []string{botToken, "BoTtOkEnSeCrEt", hookSecret, amzToken, amzSignature, amzCredential}

// presignedRegistry plays ECR's data plane: blob reads redirect to a presigned S3 URL,
// which refuses them with S3's error document (it echoes what was signed).
type presignedRegistry struct{ next http.RoundTripper }

func (p presignedRegistry) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == s3Host {
		body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>` + amzCredential +
			`</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 ` + amzSignature + `</StringToSign><SignatureProvided>` + amzSignature + `</SignatureProvided></Error>`
		return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Header: http.Header{"Content-Type": {"application/xml"}},
			Body: io.NopCloser(strings.NewReader(body)), Request: r, ProtoMajor: 1, ProtoMinor: 1}, nil
	}
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
		loc := "https://" + s3Host + "/ab12-111111111111/" + strings.TrimPrefix(r.URL.Path[strings.LastIndex(r.URL.Path, "/"):], "/") +
			"?X-Amz-Security-Token=" + amzToken + "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + amzCredential +
			"%2F20261204%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261204T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=" + amzSignature
		return &http.Response{StatusCode: http.StatusTemporaryRedirect, Status: "307 Temporary Redirect", Header: http.Header{"Location": {loc}},
			Body: io.NopCloser(strings.NewReader("")), Request: r, ProtoMajor: 1, ProtoMinor: 1}, nil
	}
	return p.next.RoundTrip(r)
}

// recording keeps every request body a stand-in received (what regflow sent to Slack)
// and answers with a failure.
type recording struct {
	mu     sync.Mutex
	bodies []string
}

func (rc *recording) server(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, r.URL.Path+" "+string(b))
		rc.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (rc *recording) all() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return strings.Join(rc.bodies, "\n")
}

type bus struct {
	mu   sync.Mutex
	sent []string
}

func (b *bus) Publish(_ context.Context, m event.Message) error {
	raw, err := m.Encode()
	b.mu.Lock()
	b.sent = append(b.sent, string(raw))
	b.mu.Unlock()
	return err
}

// TestNoCredentialLeaves drives the failures that carry credentials through the app as
// the composition root wires it (a failing response_url, Slack's API failing with the
// token in its error, a promotion whose layer reads fail at presigned S3 URLs) and
// searches everything that comes out: logs, returned errors, HTTP answers, audit
// entries, what was sent to Slack and put on the bus.
func TestNoCredentialLeaves(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the local stack's registries")
	}
	ctx := context.Background()
	cfg, err := config.Load(filepath.Join("..", "..", "regflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := localstack.Start(ctx, localstack.Options{Config: cfg, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ls.Close)

	slackSent, hooksSent := &recording{}, &recording{}
	slackAPI := slackSent.server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"ok":false,"error":"invalid_auth: token %s was revoked"}`, botToken)
	})
	hooks := hooksSent.server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no_active_hooks for "+r.URL.Path, http.StatusInternalServerError)
	})
	secret := []byte("redaction-test-signing-secret")
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) }), &slog.HandlerOptions{Level: slog.LevelDebug}))
	pub := &bus{}
	a, err := app.New(app.Adapters{
		Config: ls.Config, Store: ls.Store, Registries: localstack.Registries(ls.Config, ls.Info().Environments), Publisher: pub,
		Slack: slackbot.New(slackbot.Options{Token: func(context.Context) (string, error) { return botToken, nil },
			APIURL: slackAPI.URL + "/api/", AlertChannel: "C0ALERTS", ResponsePrefixes: []string{hooks.URL}, Log: logger}),
		SigningSecret: func(context.Context) ([]byte, error) { return secret, nil },
		CopyOptions:   []ocicopy.Option{ocicopy.WithTransport(presignedRegistry{http.DefaultTransport}), ocicopy.WithRetryBackoff(remote.Backoff{Steps: 1})},
		Log:           logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string // every returned error and HTTP answer

	// A staging request, opened with a message: a click decides it, the message update
	// fails with the token in Slack's error, the reply to response_url fails.
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(ls.Info().Environments["dev"].Registry+"/shop/web:"+strings.Repeat("3f", 20), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	req := regflow.ApprovalRequest{ID: regflow.RequestID("staging", "shop/web", d.String()), Env: "staging", Repository: "shop/web", Digest: d.String(),
		Tag: strings.Repeat("3f", 20), Status: regflow.StatusPending, Required: 1, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
		SlackChannel: "C0STAGING", SlackTS: "1700000000.000100"}
	if ok, err := ls.Store.CreateRequest(ctx, req); err != nil || !ok {
		t.Fatalf("seed: %v %v", ok, err)
	}
	endpoint := httptest.NewServer(approvals.ThroughAPIGateway(approvals.Lambda(a.Interactions), 0))
	t.Cleanup(endpoint.Close)
	responseURL := hooks.URL + "/actions/T0001/1234567890/" + hookSecret
	for i, c := range []approvals.Click{
		{User: "U0ALICE", Action: slackmsg.ActionApprove, RequestID: req.ID},       // decides
		{User: "U0BOB", Action: slackmsg.ActionApprove, RequestID: req.ID},         // refused: decided
		{User: "U0MALLORY", Action: slackmsg.ActionReject, RequestID: req.ID},      // refused: not an approver
		{User: "U0ALICE", Action: slackmsg.ActionApprove, RequestID: "req-nosuch"}, // refused: unknown
	} {
		c.ResponseURL, c.ActionTS = responseURL, fmt.Sprintf("1700000200.%06d", i)
		body := approvals.ClickForm(c, time.Now())
		r, _ := http.NewRequest(http.MethodPost, endpoint.URL+approvals.Path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		slacksig.Sign(r.Header, secret, time.Now(), body)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, string(b))
	}
	a.FollowUpsDone()
	if !strings.Contains(hooksSent.all(), hookSecret) {
		t.Fatal("the replies never reached the response_url stand-in: the test drove nothing")
	}

	// The approval's promotion: every layer read fails at a presigned URL.
	got, err := ls.Store.GetRequest(ctx, req.ID)
	if err != nil || got.Status != regflow.StatusApproved {
		t.Fatalf("request after the click: %+v %v", got, err)
	}
	detail, err := event.DecisionOf(got)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := event.Message{Detail: detail, Key: got.ID, At: got.DecidedAt}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // and once more, as EventBridge retries
		_, err := a.Invoke(ctx, route.Promoter, raw)
		if err == nil {
			t.Fatal("the promotion succeeded: the presigned reads did not fail")
		}
		out = append(out, err.Error())
	}
	if !strings.Contains(strings.Join(out, "\n")+logs.String(), s3Host) {
		t.Fatal("no copy error names the S3 host: the promotion never reached the presigned URLs")
	}

	// Everything that came out.
	var audit []string
	for _, subject := range []string{req.Ref(), "request/req-nosuch"} {
		trail, err := ls.Store.Audit(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range trail {
			b, _ := json.Marshal(e)
			audit = append(audit, string(b))
		}
	}
	if len(audit) < 4 {
		t.Fatalf("only %d audit entries: %v", len(audit), audit)
	}
	logMu.Lock()
	logged := logs.String()
	logMu.Unlock()
	sinks := map[string]string{
		"logs":                     logged,
		"returned errors, answers": strings.Join(out, "\n"),
		"audit entries":            strings.Join(audit, "\n"),
		// What regflow sent to Slack, minus the token it legitimately authenticates with.
		"Slack messages": stripAuth(slackSent.all()),
		"replies":        strings.ReplaceAll(hooksSent.all(), "/actions/T0001/1234567890/"+hookSecret, "(the reply's own URL)"),
		"bus":            strings.Join(pub.sent, "\n"),
	}
	for sink, text := range sinks {
		for _, s := range leaks {
			if i := strings.Index(text, s); i >= 0 {
				t.Errorf("%s carry %q: …%s…", sink, s, text[max(0, i-120):min(len(text), i+len(s)+40)])
			}
		}
	}
}

// stripAuth removes the token field slack-go sends in a form body to authenticate.
func stripAuth(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		path, body, _ := strings.Cut(l, " ")
		if v, err := url.ParseQuery(body); err == nil {
			v.Del("token")
			body = v.Encode()
		}
		lines = append(lines, path+" "+body)
	}
	return strings.Join(lines, "\n")
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
