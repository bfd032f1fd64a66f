package approvals_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/slacksig"
)

// TestBadRequestsWriteNothing sends requests that must be refused before anything is
// decided, and checks that the table holds exactly the items it held before (no audit
// entry, no claim, no version bump), no event went out and no message changed.
func TestBadRequestsWriteNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("needs DynamoDB Local")
	}
	st, db, table := dynamoTable(t)
	s := newStack(t, cfg(t, config.Approvers{Users: []string{"UALICE"}, Required: 1}), st, nil)
	r := seed(t, st, s.sl, 1, time.Now().Add(time.Hour))
	items := countItems(t, db, table)
	published, err := os.ReadFile(filepath.Join(testenv.RealTestdata(t), "slack-block-actions-message-button.api-slack-com.json"))
	if err != nil {
		t.Fatal(err)
	}

	good := form(payload("UALICE", slackmsg.ActionApprove, r.ID, "1700000400.000001", ""))
	now := time.Now()
	signed := func(body []byte, at time.Time, key []byte) http.Header {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		slacksig.Sign(h, key, at, body)
		return h
	}
	without := func(h http.Header, name string) http.Header { h.Del(name); return h }
	twoActions := strings.Replace(string(payload("UALICE", slackmsg.ActionApprove, r.ID, "1", "")), `"actions":[`,
		`"actions":[{"action_id":"regflow_reject","block_id":"regflow_decision","value":"`+r.ID+`","type":"button"},`, 1)

	tests := []struct {
		name   string
		method string
		body   []byte
		header http.Header
		status int
	}{
		{"forged signature", "POST", good, signed(good, now, []byte("not the secret")), 401},
		{"stale timestamp (6 min old)", "POST", good, signed(good, now.Add(-6*time.Minute), secret), 401},
		{"future timestamp (6 min ahead)", "POST", good, signed(good, now.Add(6*time.Minute), secret), 401},
		{"no signature header", "POST", good, without(signed(good, now, secret), slacksig.HeaderSignature), 401},
		{"no timestamp header", "POST", good, without(signed(good, now, secret), slacksig.HeaderTimestamp), 401},
		{"no headers at all", "POST", good, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, 401},
		{"garbled signature", "POST", good, func() http.Header {
			h := signed(good, now, secret)
			h.Set(slacksig.HeaderSignature, "v0=zz")
			return h
		}(), 401},
		{"body changed after signing", "POST", append(bytes.Clone(good), '&', 'x', '=', '1'), signed(good, now, secret), 401},
		{"JSON body, correctly signed", "POST", payload("UALICE", slackmsg.ActionApprove, r.ID, "1", ""),
			func() http.Header {
				b := payload("UALICE", slackmsg.ActionApprove, r.ID, "1", "")
				h := signed(b, now, secret)
				h.Set("Content-Type", "application/json")
				return h
			}(), 400},
		{"form content type, JSON body", "POST", payload("UALICE", slackmsg.ActionApprove, r.ID, "1", ""),
			signed(payload("UALICE", slackmsg.ActionApprove, r.ID, "1", ""), now, secret), 400},
		{"form without payload", "POST", []byte("token=x&team_id=T1"), signed([]byte("token=x&team_id=T1"), now, secret), 400},
		{"garbage JSON payload", "POST", []byte("payload=%7Bnot+json"), signed([]byte("payload=%7Bnot+json"), now, secret), 400},
		{"published payload with a literal ...", "POST", form(published), signed(form(published), now, secret), 400},
		{"unknown action id", "POST", form(payload("UALICE", "regflow_delete_everything", r.ID, "1", "")),
			signed(form(payload("UALICE", "regflow_delete_everything", r.ID, "1", "")), now, secret), 400},
		{"two actions", "POST", form([]byte(twoActions)), signed(form([]byte(twoActions)), now, secret), 400},
		{"view submission", "POST", form([]byte(`{"type":"view_submission","user":{"id":"UALICE"}}`)),
			signed(form([]byte(`{"type":"view_submission","user":{"id":"UALICE"}}`)), now, secret), 400},
		{"oversized body", "POST", bytes.Repeat([]byte("a"), approvals.DefaultMaxBody+1), http.Header{}, 413},
		{"GET", "GET", nil, signed(nil, now, secret), 405},
	}
	for _, srv := range []struct{ name, url string }{{"via API Gateway", s.srv.URL}, {"direct", s.direct.URL}} {
		for _, tt := range tests {
			t.Run(srv.name+"/"+tt.name, func(t *testing.T) {
				req, err := http.NewRequest(tt.method, srv.url+approvals.Path, bytes.NewReader(tt.body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header = tt.header.Clone()
				a := send(t, s.srv.Client(), req)
				if a.status != tt.status {
					t.Fatalf("HTTP %d %q, want %d", a.status, a.reply.Text, tt.status)
				}
				if n := countItems(t, db, table); n != items {
					t.Fatalf("the table holds %d items, had %d: a refused request wrote", n, items)
				}
				got, err := st.GetRequest(context.Background(), r.ID)
				if err != nil || got.Version != 1 || got.Status != "pending" {
					t.Fatalf("request after refusal: %+v, %v", got, err)
				}
				if n := len(s.pub.decisions(t)); n != 0 {
					t.Fatalf("%d events published", n)
				}
				if m := s.message(t, r.SlackTS); m.Updates != 0 {
					t.Fatal("the Slack message changed")
				}
			})
		}
	}

	// A chunked oversized body (no Content-Length) is cut off at the cap too.
	big := bytes.Repeat([]byte("a"), approvals.DefaultMaxBody+1)
	for _, u := range []string{s.srv.URL, s.direct.URL} {
		req, _ := http.NewRequest("POST", u+approvals.Path, struct{ *bytes.Reader }{bytes.NewReader(big)})
		if a := send(t, s.srv.Client(), req); a.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked oversized body to %s: HTTP %d", u, a.status)
		}
	}
	// And the good click, after all that, still decides.
	req, _ := http.NewRequest("POST", s.srv.URL+approvals.Path, bytes.NewReader(good))
	req.Header = signed(good, time.Now(), secret)
	if a := send(t, s.srv.Client(), req); a.status != 200 || a.outcome != approvals.KindApproved {
		t.Fatalf("the good click: HTTP %d %s %q", a.status, a.outcome, a.reply.Text)
	}
}

// TestSigningSecretFetchedOnlyForWellFormedRequests: junk never reaches Secrets Manager,
// and a failing secret store is an error (500), not a refusal.
func TestSigningSecretFailure(t *testing.T) {
	st := embeddedStore(t)
	calls := 0
	h := &approvals.Handler{
		Decider: &approvals.Service{Config: cfg(t, config.Approvers{Users: []string{"UALICE"}, Required: 1}), Store: st, Publisher: &recorder{}, Log: quiet()},
		SigningSecret: func(context.Context) ([]byte, error) {
			calls++
			return nil, os.ErrDeadlineExceeded
		},
		Log: quiet(),
	}
	body := form(payload("UALICE", slackmsg.ActionApprove, "req-1", "1", ""))
	for _, tc := range []struct {
		ts     string
		status int
		calls  int
	}{
		{"", 401, 0},
		{"yesterday", 401, 0},
		{strconv.FormatInt(time.Now().Unix(), 10), 500, 1},
	} {
		req, _ := http.NewRequest("POST", approvals.Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.ts != "" {
			req.Header.Set(slacksig.HeaderTimestamp, tc.ts)
			req.Header.Set(slacksig.HeaderSignature, slacksig.Signature(secret, tc.ts, body))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || calls != tc.calls {
			t.Fatalf("timestamp %q: HTTP %d after %d secret fetches; want %d after %d", tc.ts, rec.Code, calls, tc.status, tc.calls)
		}
	}
}

func TestPayloadFieldMustBeSingle(t *testing.T) {
	p := string(payload("UALICE", slackmsg.ActionApprove, "req-1", "1", ""))
	for name, body := range map[string]string{
		"two payloads":  url.Values{"payload": {p, p}}.Encode(),
		"empty payload": "payload=",
		"bad escaping":  "payload=%zz",
	} {
		if _, err := approvals.ParseForm([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
