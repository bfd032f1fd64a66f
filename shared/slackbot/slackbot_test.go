package slackbot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/slackmsg"
)

var alert = regflow.Alert{
	Kind: "tag-policy-violation", Title: "Tag policy violation: app:latest", Text: `tag "latest" is a moving tag`,
	Fields: []regflow.Field{{Label: "Outcome", Value: "tag removed"}, {Label: "Digest", Value: "sha256:abc"}},
}

func token(context.Context) (string, error) { return "xoxb-test", nil }

func TestAlertThroughSlacktest(t *testing.T) {
	srv := slacklocal.Start(nil)
	defer srv.Stop()
	b := slackbot.New(slackbot.Options{Token: token, APIURL: srv.APIURL(), AlertChannel: "C0ALERTS"})
	if err := b.Notify(context.Background(), alert); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	m := msgs[0]
	if m.Channel != "C0ALERTS" || !strings.Contains(m.Text, "moving tag") {
		t.Errorf("message = %+v", m)
	}
	if len(m.Blocks.BlockSet) != 3 {
		t.Fatalf("want header, reason and fields blocks, got %d", len(m.Blocks.BlockSet))
	}
	h, ok := m.Blocks.BlockSet[0].(*slack.HeaderBlock)
	if !ok || h.Text.Text != alert.Title {
		t.Errorf("header = %#v", m.Blocks.BlockSet[0])
	}
	f, ok := m.Blocks.BlockSet[2].(*slack.SectionBlock)
	if !ok || len(f.Fields) != 2 || !strings.Contains(f.Fields[0].Text, "tag removed") {
		t.Errorf("fields = %#v", m.Blocks.BlockSet[2])
	}
}

func TestAlertErrorIsWorded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":false,"error":"channel_not_found"}`)
	}))
	defer srv.Close()
	b := slackbot.New(slackbot.Options{Token: token, APIURL: srv.URL + "/", AlertChannel: "C0GONE"})
	err := b.Notify(context.Background(), alert)
	if err == nil || !strings.Contains(err.Error(), "channel_not_found") || !strings.Contains(err.Error(), "C0GONE") {
		t.Fatalf("got %v", err)
	}
}

func TestAlertWithoutChannelIsLogged(t *testing.T) {
	var buf bytes.Buffer
	calls := 0
	b := slackbot.New(slackbot.Options{
		Token: func(context.Context) (string, error) { calls++; return "", errors.New("must not be read") },
		Log:   slog.New(slog.NewTextHandler(&buf, nil)),
	})
	if err := b.Notify(context.Background(), alert); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "tag removed") || calls != 0 {
		t.Errorf("log = %s, token reads %d", buf.String(), calls)
	}
}

// TestTokenReadOnFirstUseAndRetried: a function that never talks to Slack never reads the
// secret; a failed read is tried again on the next use.
func TestTokenReadOnFirstUseAndRetried(t *testing.T) {
	srv := slacklocal.Start(nil)
	defer srv.Stop()
	var reads atomic.Int32
	b := slackbot.New(slackbot.Options{APIURL: srv.APIURL(), AlertChannel: "C0ALERTS", Token: func(context.Context) (string, error) {
		if reads.Add(1) == 1 {
			return "", errors.New("secrets manager unavailable")
		}
		return "xoxb-test", nil
	}})
	if reads.Load() != 0 {
		t.Fatal("token read at construction")
	}
	if err := b.Notify(context.Background(), alert); err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("first use: %v", err)
	}
	for range 3 {
		if err := b.Notify(context.Background(), alert); err != nil {
			t.Fatal(err)
		}
	}
	if reads.Load() != 2 {
		t.Fatalf("%d token reads, want 2 (one failed, one kept)", reads.Load())
	}
}

func TestPostAndUpdateThroughSlacktest(t *testing.T) {
	srv := slacklocal.Start(nil)
	defer srv.Stop()
	b := slackbot.New(slackbot.Options{Token: token, APIURL: srv.APIURL()})
	r := regflow.ApprovalRequest{ID: "req-1", Env: "prod", Repository: "app", Digest: "sha256:0123456789abcdef0123", Tag: "abc", Status: regflow.StatusPending, Required: 2,
		Findings: map[string]int{"HIGH": 2, "MEDIUM": 5}, ExpiresAt: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	if err := b.Update(ctx, r, slackmsg.Context{}); err != nil {
		t.Fatalf("a request never posted is left alone: %v", err)
	}
	ch, ts, err := b.Post(ctx, "C0PROD", r, slackmsg.Context{Approvers: slackmsg.Approvers([]string{"U1"}, []string{"S1"})})
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].Channel != "C0PROD" {
		t.Fatalf("messages = %+v", msgs)
	}
	actions := findActions(msgs[0].Blocks)
	if len(actions) != 2 || actions[0].ActionID != slackmsg.ActionApprove || actions[0].Value != "req-1" || actions[1].ActionID != slackmsg.ActionReject {
		t.Fatalf("buttons = %+v", actions)
	}
	r.SlackChannel, r.SlackTS = ch, ts
	r.Status, r.DecidedBy = regflow.StatusApproved, "U1"
	r.Approvals = []regflow.Vote{{User: "U1"}, {User: "U2"}}
	if err := b.Update(ctx, r, slackmsg.Context{}); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0]
	if m.Updates != 1 || len(findActions(m.Blocks)) != 0 {
		t.Fatalf("after approval the buttons must be gone: %+v", m)
	}
}

func findActions(b slack.Blocks) []*slack.ButtonBlockElement {
	var out []*slack.ButtonBlockElement
	for _, blk := range b.BlockSet {
		if a, ok := blk.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok {
					out = append(out, btn)
				}
			}
		}
	}
	return out
}

// groupServer is slack-go's slacktest server answering usergroups.users.list from members,
// counting calls; a group not in members answers Slack's no_such_subteam error.
func groupServer(t *testing.T, members map[string][]string) (string, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/usergroups.users.list", func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			_ = r.ParseForm()
			w.Header().Set("Content-Type", "application/json")
			m, ok := members[r.Form.Get("usergroup")]
			if !ok {
				_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "no_such_subteam"})
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "users": m})
		})
	})
	srv.Start()
	t.Cleanup(srv.Stop)
	return srv.GetAPIURL(), &calls
}

func TestGroupsCache(t *testing.T) {
	api, calls := groupServer(t, map[string][]string{"SRELEASE": {"UDAN", "UERIN"}})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := slackbot.New(slackbot.Options{Token: token, APIURL: api, GroupTTL: time.Minute, Now: clock})
	ctx := context.Background()

	// 50 concurrent lookups on a cold cache make one call.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			m, err := b.Members(ctx, "SRELEASE")
			if err != nil || !slices.Equal(m, []string{"UDAN", "UERIN"}) {
				t.Errorf("members %v, %v", m, err)
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d usergroups.users.list calls for a cold burst, want 1", n)
	}
	mu.Lock()
	now = now.Add(59 * time.Second)
	mu.Unlock()
	if _, err := b.Members(ctx, "SRELEASE"); err != nil || calls.Load() != 1 {
		t.Fatalf("within the TTL: %v, %d calls", err, calls.Load())
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if _, err := b.Members(ctx, "SRELEASE"); err != nil || calls.Load() != 2 {
		t.Fatalf("after the TTL: %v, %d calls, want a fresh lookup", err, calls.Load())
	}
	// Slack's errors come back named, and are not cached.
	for i := range 2 {
		_, err := b.Members(ctx, "SNOPE")
		if err == nil || !strings.Contains(err.Error(), "no_such_subteam") {
			t.Fatalf("unknown group: %v", err)
		}
		if calls.Load() != int32(3+i) {
			t.Fatalf("an error was cached: %d calls", calls.Load())
		}
	}
}

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

func TestRespond(t *testing.T) {
	h := newHooks(t)
	b := slackbot.New(slackbot.Options{Token: token, ResponsePrefixes: []string{h.URL + "/actions/"}})
	ctx := context.Background()
	if err := b.Respond(ctx, h.URL+"/actions/T1/2/abc", "Already approved by <@U1>."); err != nil {
		t.Fatal(err)
	}
	got := h.all()
	if len(got) != 1 || got[0].Text != "Already approved by <@U1>." || got[0].ResponseType != "ephemeral" || got[0].ReplaceOriginal {
		t.Fatalf("replies %+v", got)
	}
	for _, u := range []string{h.URL + "/elsewhere", "http://169.254.169.254/latest/meta-data/", "https://hooks.slack.com.evil.example/x"} {
		if err := b.Respond(ctx, u, "x"); err == nil {
			t.Fatalf("replied to %s", u)
		}
	}
	if err := slackbot.New(slackbot.Options{}).Respond(ctx, "https://hooks.slack.com.evil.example/x", "x"); err == nil {
		t.Fatal("the default prefix must be Slack's hooks host, slash included")
	}
	if len(h.all()) != 1 {
		t.Fatal("a refused URL was posted to")
	}
}

// TestRespondFailureHidesTheURL: a response_url lets anyone post to the channel for 30
// minutes, so a failed reply names only its host.
func TestRespondFailureHidesTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "gone", http.StatusGone) }))
	defer srv.Close()
	secret := srv.URL + "/actions/T1/2/s3cr3t-path"
	b := slackbot.New(slackbot.Options{Token: token, ResponsePrefixes: []string{srv.URL + "/"}})
	err := b.Respond(context.Background(), secret, "x")
	if err == nil {
		t.Fatal("a 410 must fail")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("the error quotes the response_url: %v", err)
	}
	if err := b.Respond(context.Background(), "https://hooks.slack.com.evil.example/s3cr3t", "x"); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("refusal quotes the URL: %v", err)
	}
}

func TestPrefixes(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{slackbot.Hooks}},
		{" , ", []string{slackbot.Hooks}},
		{"http://127.0.0.1:1/a/, http://127.0.0.1:2/b/", []string{"http://127.0.0.1:1/a/", "http://127.0.0.1:2/b/"}},
	}
	for _, tt := range tests {
		if got := slackbot.Prefixes(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Prefixes(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
