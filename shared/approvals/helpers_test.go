package approvals_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/slack-go/slack"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/slacksig"
	"github.com/regflow/regflow/shared/store/dynamo"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var secret = []byte("8f742231b10e8888abcd99yyyzzz85a5-test")

const (
	repo      = "team/api"
	requester = "UCIBOT"
	channel   = "C0PROD"
)

var digest = "sha256:" + strings.Repeat("ab", 32)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// users returns n approver ids U0001..
func users(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("U%04d", i+1)
	}
	return out
}

// cfg is a two-environment config whose prod approvers are given.
func cfg(t testing.TB, approvers config.Approvers) *config.Config {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"pipeline":      map[string]any{"account": "111111111111"},
		"promotionPath": []string{"staging", "prod"},
		"environments": map[string]any{
			"staging": map[string]any{"account": "111111111111"},
			"prod": map[string]any{"account": "222222222222", "slackChannel": channel, "approvers": approvers,
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

// dynamoTable creates a fresh table on the binary's DynamoDB Local.
func dynamoTable(t testing.TB) (*dynamo.Store, *dynamodb.Client, string) {
	t.Helper()
	awsCfg := testenv.AWSConfig(testenv.DynamoDBLocal(t))
	// As in production (wiring): the standard retryer, which also rides out DynamoDB Local
	// resetting connections under a burst of 200.
	awsCfg.Retryer = func() aws.Retryer { return retry.NewStandard() }
	// One process serves every click here (unlike Lambda, one click per container), so
	// keep enough idle connections to DynamoDB Local instead of redialling under a burst.
	awsCfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.MaxIdleConnsPerHost = 256 })
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true // DynamoDB Local (TOOLCHAIN.md)
	})
	table := fmt.Sprintf("approvals-%d", tableSeq.Add(1))
	if err := dynamo.CreateTable(context.Background(), db, table); err != nil {
		t.Fatal(err)
	}
	return dynamo.New(db, table), db, table
}

var tableSeq atomic.Int64

func embeddedStore(t testing.TB) *embedded.Store {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "regflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// countItems counts every item in the table: the strongest "nothing was written".
func countItems(t testing.TB, db *dynamodb.Client, table string) int {
	t.Helper()
	n := 0
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), Select: types.SelectCount, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += int(page.Count)
	}
	return n
}

type requestStore interface {
	CreateRequest(ctx context.Context, r regflow.ApprovalRequest) (bool, error)
	UpdateRequest(ctx context.Context, r regflow.ApprovalRequest) error
}

// seed opens a pending prod request, posting its message to sl when given (as the scan gate does).
func seed(t testing.TB, st requestStore, sl *slacklocal.Server, required int, expires time.Time) regflow.ApprovalRequest {
	t.Helper()
	return seedDigest(t, st, sl, required, expires, digest)
}

func seedDigest(t testing.TB, st requestStore, sl *slacklocal.Server, required int, expires time.Time, digest string) regflow.ApprovalRequest {
	t.Helper()
	ctx := context.Background()
	r := regflow.ApprovalRequest{
		ID: regflow.RequestID("prod", repo, digest), Env: "prod", Repository: repo, Digest: digest,
		Tag: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", Commit: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
		Status: regflow.StatusPending, RequestedBy: requester, Required: required,
		CreatedAt: time.Now().Add(-time.Minute), ExpiresAt: expires, Findings: map[string]int{"MEDIUM": 2},
	}
	if sl != nil {
		ch, ts, err := slackbot.New(slackbot.Options{Token: func(context.Context) (string, error) { return "xoxb-test", nil }, APIURL: sl.APIURL()}).Post(ctx, channel, r, slackmsg.Context{})
		if err != nil {
			t.Fatal(err)
		}
		r.SlackChannel, r.SlackTS = ch, ts
	}
	ok, err := st.CreateRequest(ctx, r)
	if err != nil || !ok {
		t.Fatalf("create request: %v %v", ok, err)
	}
	r.Version = 1
	return r
}

// recorder is a Publisher that keeps what it was given; failures makes the next calls fail.
type recorder struct {
	mu       sync.Mutex
	events   [][]byte
	failures int
}

func (r *recorder) Publish(_ context.Context, m event.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures > 0 {
		r.failures--
		return errors.New("bus unavailable")
	}
	ev, err := m.Encode()
	if err != nil {
		return err
	}
	if _, err := event.Parse(ev); err != nil {
		return err
	}
	r.events = append(r.events, bytes.Clone(ev))
	return nil
}

func (r *recorder) decisions(t testing.TB) []event.PromotionDecision {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event.PromotionDecision
	for _, b := range r.events {
		ev, err := event.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		var d event.PromotionDecision
		if err := json.Unmarshal(ev.Detail, &d); err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{regflow.StatusApproved: event.TypePromotionApproved, regflow.StatusRejected: event.TypePromotionRejected}[d.Decision]; ev.DetailType != want {
			t.Fatalf("detail-type %q carries decision %q", ev.DetailType, d.Decision)
		}
		out = append(out, d)
	}
	return out
}

// hooks stands in for Slack's response_url endpoint and keeps the replies.
type hooks struct {
	*httptest.Server
	mu      sync.Mutex
	replies []slack.WebhookMessage
}

func newHooks(t testing.TB) *hooks {
	h := &hooks{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m slack.WebhookMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.replies = append(h.replies, m)
		h.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hooks) all() []slack.WebhookMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slack.WebhookMessage(nil), h.replies...)
}

// payload builds a block_actions payload shaped like Slack's (docs.slack.dev example),
// echoing the approval message as Slack does.
func payload(user, action, value, actionTS, responseURL string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type":       "block_actions",
		"team":       map[string]any{"id": "T9TK3CUKW", "domain": "example"},
		"user":       map[string]any{"id": user, "username": strings.ToLower(user), "team_id": "T9TK3CUKW"},
		"api_app_id": "AABA1ABCD",
		"token":      "9s8d9as89d8as9d8as989",
		"container":  map[string]any{"type": "message", "message_ts": "1700000000.000001", "channel_id": channel, "is_ephemeral": false},
		"trigger_id": "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
		"channel":    map[string]any{"id": channel, "name": "prod-approvals"},
		"message": map[string]any{"type": "message", "text": "approval", "ts": "1700000000.000001",
			"blocks": slackmsg.ApprovalBlocks(regflow.ApprovalRequest{ID: value, Env: "prod", Repository: repo, Digest: digest, Status: regflow.StatusPending}, slackmsg.Context{})},
		"response_url": responseURL,
		"actions": []map[string]any{{
			"action_id": action, "block_id": "regflow_decision", "value": value, "type": "button", "action_ts": actionTS,
			"text": map[string]any{"type": "plain_text", "text": "Approve", "emoji": true},
		}},
	})
	return b
}

func form(p []byte) []byte { return []byte(url.Values{"payload": {string(p)}}.Encode()) }

// click returns a request signed now, as Slack sends it.
func click(t testing.TB, base, user, action, value, actionTS, responseURL string) *http.Request {
	t.Helper()
	body := form(payload(user, action, value, actionTS, responseURL))
	req, err := http.NewRequest(http.MethodPost, base+approvals.Path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	slacksig.Sign(req.Header, secret, time.Now(), body)
	return req
}

type answer struct {
	status  int
	outcome approvals.Kind
	reply   approvals.Reply
	took    time.Duration
}

func send(t testing.TB, c *http.Client, req *http.Request) answer {
	t.Helper()
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return answer{}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, outcome: approvals.Kind(resp.Header.Get(approvals.HeaderOutcome)), took: time.Since(start)}
	if err := json.NewDecoder(resp.Body).Decode(&a.reply); err != nil {
		t.Errorf("reply body: %v", err)
	}
	return a
}

// stack is the handler wired to a store, a recording publisher, the Slack stand-in and
// a response_url stand-in, served over loopback HTTP: srv through the API Gateway v2
// event shape and the Lambda adapter (the path the function and the local stack take),
// direct straight to the handler.
type stack struct {
	srv    *httptest.Server
	direct *httptest.Server
	svc    *approvals.Service
	pub    *recorder
	sl     *slacklocal.Server
	hooks  *hooks
}

func newStack(t testing.TB, c *config.Config, st approvals.Store, groups approvals.Groups) *stack {
	t.Helper()
	sl := slacklocal.Start(nil)
	t.Cleanup(sl.Stop)
	s := &stack{pub: &recorder{}, sl: sl, hooks: newHooks(t)}
	s.svc = &approvals.Service{
		Config: c, Store: st, Publisher: s.pub, Groups: groups, Log: quiet(),
		Messages: slackbot.New(slackbot.Options{Token: func(context.Context) (string, error) { return "xoxb-test", nil }, APIURL: sl.APIURL()}),
	}
	h := &approvals.Handler{
		Decider:       s.svc,
		SigningSecret: func(context.Context) ([]byte, error) { return secret, nil },
		Responder:     slackbot.New(slackbot.Options{ResponsePrefixes: []string{s.hooks.URL}}),
		Log:           quiet(),
	}
	s.srv = httptest.NewServer(approvals.ThroughAPIGateway(approvals.Lambda(h), 0))
	t.Cleanup(s.srv.Close)
	s.direct = httptest.NewServer(h)
	t.Cleanup(s.direct.Close)
	return s
}

func (s *stack) message(t testing.TB, ts string) slacklocal.Message {
	t.Helper()
	for _, m := range s.sl.Messages() {
		if m.TS == ts {
			return m
		}
	}
	t.Fatalf("no Slack message %s", ts)
	return slacklocal.Message{}
}

// hasButtons reports whether a message still offers Approve/Reject.
func hasButtons(m slacklocal.Message) bool {
	for _, b := range m.Blocks.BlockSet {
		if a, ok := b.(*slack.ActionBlock); ok && a.Elements != nil {
			for _, e := range a.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && (btn.ActionID == slackmsg.ActionApprove || btn.ActionID == slackmsg.ActionReject) {
					return true
				}
			}
		}
	}
	return false
}

func auditCount(t testing.TB, st approvals.Store, subject string) map[string]int {
	t.Helper()
	type auditor interface {
		Audit(ctx context.Context, subject string) ([]regflow.AuditEntry, error)
	}
	trail, err := st.(auditor).Audit(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range trail {
		n[e.Action]++
	}
	return n
}
