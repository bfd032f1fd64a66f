package approvals_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/slackmsg"
)

// TestGroupApproverThroughHandler: a member of an approver group approves through the
// handler; slacktest serves the group lookup through the Slack adapter.
func TestGroupApproverThroughHandler(t *testing.T) {
	var calls atomic.Int32
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/usergroups.users.list", func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			_ = r.ParseForm()
			w.Header().Set("Content-Type", "application/json")
			if r.Form.Get("usergroup") != "SRELEASE" {
				_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "no_such_subteam"})
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "users": []string{"UERIN"}})
		})
	})
	srv.Start()
	t.Cleanup(srv.Stop)
	g := slackbot.New(slackbot.Options{Token: func(context.Context) (string, error) { return "xoxb-test", nil }, APIURL: srv.GetAPIURL()})
	st := embeddedStore(t)
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
