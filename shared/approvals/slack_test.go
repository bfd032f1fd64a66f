package approvals_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/slackmsg"
)

// groupServer is slack-go's slacktest server answering usergroups.users.list from members,
// counting calls; a group not in members answers Slack's no_such_subteam error.
func groupServer(t *testing.T, members map[string][]string) (*slack.Client, *atomic.Int32) {
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
	return slack.New("xoxb-test", slack.OptionAPIURL(srv.GetAPIURL())), &calls
}

func TestSlackGroupsCache(t *testing.T) {
	client, calls := groupServer(t, map[string][]string{"SRELEASE": {"UDAN", "UERIN"}})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g := approvals.NewSlackGroups(func(context.Context) (*slack.Client, error) { return client, nil }, time.Minute, clock)
	ctx := context.Background()

	// 50 concurrent lookups on a cold cache make one call.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			m, err := g.Members(ctx, "SRELEASE")
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
	if _, err := g.Members(ctx, "SRELEASE"); err != nil || calls.Load() != 1 {
		t.Fatalf("within the TTL: %v, %d calls", err, calls.Load())
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if _, err := g.Members(ctx, "SRELEASE"); err != nil || calls.Load() != 2 {
		t.Fatalf("after the TTL: %v, %d calls, want a fresh lookup", err, calls.Load())
	}
	// Slack's errors come back named, and are not cached.
	for i := range 2 {
		_, err := g.Members(ctx, "SNOPE")
		if err == nil || !strings.Contains(err.Error(), "no_such_subteam") {
			t.Fatalf("unknown group: %v", err)
		}
		if calls.Load() != int32(3+i) {
			t.Fatalf("an error was cached: %d calls", calls.Load())
		}
	}
}

// TestGroupApproverThroughHandler: a member of an approver group approves through the
// handler; slacktest serves the group lookup.
func TestGroupApproverThroughHandler(t *testing.T) {
	client, calls := groupServer(t, map[string][]string{"SRELEASE": {"UERIN"}})
	st := embeddedStore(t)
	g := approvals.NewSlackGroups(func(context.Context) (*slack.Client, error) { return client, nil }, 0, nil)
	s := newStack(t, cfg(t, config.Approvers{Groups: []string{"SRELEASE"}, Required: 1}), st, g)
	r := seed(t, st, s.sl, 1, time.Now().Add(time.Hour))
	a := send(t, s.srv.Client(), click(t, s.srv.URL, "UMALLORY", slackmsg.ActionApprove, r.ID, "1700000500.000001", ""))
	if a.outcome != approvals.KindRefused || !strings.Contains(a.reply.Text, "<!subteam^SRELEASE>") {
		t.Fatalf("non-member: %s %q", a.outcome, a.reply.Text)
	}
	a = send(t, s.srv.Client(), click(t, s.srv.URL, "UERIN", slackmsg.ActionApprove, r.ID, "1700000500.000002", ""))
	if a.status != 200 || a.outcome != approvals.KindApproved {
		t.Fatalf("member: HTTP %d %s %q", a.status, a.outcome, a.reply.Text)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d group lookups for two clicks, want 1 (cached)", calls.Load())
	}
	if m := s.message(t, r.SlackTS); m.Updates != 1 || hasButtons(m) || !strings.Contains(m.Text, "[approved]") {
		t.Fatalf("message %+v", m)
	}
}

func TestWebhookResponder(t *testing.T) {
	h := newHooks(t)
	w := approvals.Webhook{Prefixes: []string{h.URL + "/actions/"}}
	ctx := context.Background()
	if err := w.Respond(ctx, h.URL+"/actions/T1/2/abc", "Already approved by <@U1>."); err != nil {
		t.Fatal(err)
	}
	got := h.all()
	if len(got) != 1 || got[0].Text != "Already approved by <@U1>." || got[0].ResponseType != "ephemeral" || got[0].ReplaceOriginal {
		t.Fatalf("replies %+v", got)
	}
	for _, u := range []string{h.URL + "/elsewhere", "http://169.254.169.254/latest/meta-data/", "https://hooks.slack.com.evil.example/x"} {
		if err := w.Respond(ctx, u, "x"); err == nil {
			t.Fatalf("replied to %s", u)
		}
	}
	if err := (approvals.Webhook{}).Respond(ctx, "https://hooks.slack.com.evil.example/x", "x"); err == nil {
		t.Fatal("the default prefix must be Slack's hooks host, slash included")
	}
	if len(h.all()) != 1 {
		t.Fatal("a refused URL was posted to")
	}
}
