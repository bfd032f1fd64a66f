// Package approvals_test measures the Slack endpoint as the local stack serves it: the
// composition root (app.New) on the local adapters (embedded store, the Slack stand-in,
// API Gateway's payload 2.0 shape in front of the Lambda adapter), with Slack's API and
// response_url made slow, and optionally a flood of unsigned requests beside the clicks.
//
//	make bench-approvals
package approvals_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/slacksig"
)

var secret = []byte("bench-signing-secret-8f742231b10e")

const (
	repo    = "team/api"
	channel = "C0PROD"
	clicks  = 200
)

// slow puts latency in front of a handler: each call takes at least d, as Slack's API
// under load can.
func slow(d time.Duration, h http.Handler) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// hooks stands in for response_url and counts replies.
type hooks struct {
	mu      sync.Mutex
	replies []string
}

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.replies = append(h.replies, string(b))
	h.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

func (h *hooks) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.replies)
}

// published counts what the app put on the bus, by detail-type.
type published struct {
	mu sync.Mutex
	n  map[string]int
}

func (p *published) Publish(_ context.Context, m event.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == nil {
		p.n = map[string]int{}
	}
	p.n[m.Detail.DetailType()]++
	return nil
}

func (p *published) get(t string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[t]
}

type harness struct {
	app      *app.App
	store    *embedded.Store
	slack    *slacklocal.Server
	bot      *slackbot.Bot // straight to the stand-in, for seeding
	hooks    *hooks
	hooksURL string
	pub      *published
	endpoint *httptest.Server
	logs     *bytes.Buffer
	approver []string
}

// newHarness wires the app as the local stack does, with Slack's API and response_url
// taking latency per call.
func newHarness(t testing.TB, latency time.Duration) *harness {
	t.Helper()
	h := &harness{slack: slacklocal.Start(nil), hooks: &hooks{}, pub: &published{}, logs: &bytes.Buffer{}}
	t.Cleanup(h.slack.Stop)
	for i := range clicks {
		h.approver = append(h.approver, fmt.Sprintf("U%04d", i+1))
	}
	cfg := benchConfig(t, h.approver)
	st, err := embedded.Open(filepath.Join(t.TempDir(), "regflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h.store = st
	apiURL, _ := url.Parse(h.slack.APIURL())
	slowAPI := slow(latency, httputil.NewSingleHostReverseProxy(&url.URL{Scheme: apiURL.Scheme, Host: apiURL.Host}))
	t.Cleanup(slowAPI.Close)
	hooksSrv := slow(latency, h.hooks)
	t.Cleanup(hooksSrv.Close)
	h.hooksURL = hooksSrv.URL
	token := func(context.Context) (string, error) { return "xoxb-bench", nil }
	h.bot = slackbot.New(slackbot.Options{Token: token, APIURL: h.slack.APIURL()})
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: h.logs}, nil))
	a, err := app.New(app.Adapters{
		Config: cfg, Store: st, Registries: localstack.Registries(cfg, nil), Publisher: h.pub,
		Slack:         slackbot.New(slackbot.Options{Token: token, APIURL: slowAPI.URL + apiURL.Path, ResponsePrefixes: []string{hooksSrv.URL}, Log: log}),
		SigningSecret: func(context.Context) ([]byte, error) { return secret, nil },
		AuditBatches:  st,
		Log:           log,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.app = a
	h.endpoint = httptest.NewServer(approvals.ThroughAPIGateway(approvals.Lambda(a.Interactions), 0))
	t.Cleanup(h.endpoint.Close)
	return h
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func benchConfig(t testing.TB, approvers []string) *config.Config {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"pipeline":      map[string]any{"account": "111111111111"},
		"promotionPath": []string{"staging", "prod"},
		"environments": map[string]any{
			"staging": map[string]any{"account": "111111111111"},
			"prod": map[string]any{"account": "222222222222", "slackChannel": channel,
				"approvers":     map[string]any{"users": approvers, "required": 1},
				"promotionRole": "arn:aws:iam::222222222222:role/regflow-promotion", "externalId": "regflow-prod"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var seq atomic.Int64

// seed opens a pending prod request with its message posted, as the scan gate does.
func (h *harness) seed(t testing.TB) regflow.ApprovalRequest {
	t.Helper()
	ctx := context.Background()
	digest := fmt.Sprintf("sha256:%064x", seq.Add(1))
	r := regflow.ApprovalRequest{
		ID: regflow.RequestID("prod", repo, digest), Env: "prod", Repository: repo, Digest: digest,
		Tag: strings.Repeat("9f", 20), Status: regflow.StatusPending, RequestedBy: "UCIBOT", Required: 1,
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
	}
	ch, ts, err := h.bot.Post(ctx, channel, r, slackmsg.Context{})
	if err != nil {
		t.Fatal(err)
	}
	r.SlackChannel, r.SlackTS = ch, ts
	if ok, err := h.store.CreateRequest(ctx, r); err != nil || !ok {
		t.Fatalf("create request: %v %v", ok, err)
	}
	return r
}

// signedClick is a click as Slack sends it, signed now.
func (h *harness) signedClick(t testing.TB, user, requestID string, i int) *http.Request {
	t.Helper()
	body := approvals.ClickForm(approvals.Click{User: user, UserName: user, Action: slackmsg.ActionApprove, RequestID: requestID,
		ActionTS: fmt.Sprintf("1700001000.%06d", i), ResponseURL: h.hooksURL + "/actions/T1/1/" + strings.Repeat("s", 24)}, time.Now())
	req, err := http.NewRequest(http.MethodPost, h.endpoint.URL+approvals.Path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	slacksig.Sign(req.Header, secret, time.Now(), body)
	return req
}

type result struct {
	took    time.Duration
	status  int
	outcome approvals.Kind
}

// burst sends one signed click per approver at once on a fresh request and returns
// every answer's latency and outcome.
func (h *harness) burst(t testing.TB, client *http.Client) (regflow.ApprovalRequest, []result) {
	t.Helper()
	r := h.seed(t)
	reqs := make([]*http.Request, clicks)
	for i := range reqs {
		reqs[i] = h.signedClick(t, h.approver[i], r.ID, i)
	}
	out := make([]result, clicks)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range reqs {
		done.Go(func() {
			start.Wait()
			t0 := time.Now()
			resp, err := client.Do(reqs[i])
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			out[i] = result{took: time.Since(t0), status: resp.StatusCode, outcome: approvals.Kind(resp.Header.Get(approvals.HeaderOutcome))}
		})
	}
	start.Done()
	done.Wait()
	return r, out
}

func percentile(lat []time.Duration, p float64) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func latencies(rs []result) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, r := range rs {
		out[i] = r.took
	}
	return out
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clicks}, Timeout: 30 * time.Second}
}
