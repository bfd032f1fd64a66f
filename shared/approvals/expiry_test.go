package approvals_test

import (
	"context"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/slackmsg"
)

// reopen does what the scan gate does when a new scan or verification finds an expired
// request: pending again with a window of its own and a message of its own.
func reopen(t *testing.T, st interface {
	GetRequest(context.Context, string) (regflow.ApprovalRequest, error)
	UpdateRequest(context.Context, regflow.ApprovalRequest) error
}, bot *slackbot.Bot, id string, expires time.Time) regflow.ApprovalRequest {
	t.Helper()
	ctx := context.Background()
	cur, err := st.GetRequest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	next := cur.Transition(regflow.StatusPending, "rescanned")
	next.ExpiresAt, next.SlackChannel, next.SlackTS, next.Approvals = expires, "", "", nil
	ch, ts, err := bot.Post(ctx, channel, next, slackmsg.Context{})
	if err != nil {
		t.Fatal(err)
	}
	next.SlackChannel, next.SlackTS = ch, ts
	if err := st.UpdateRequest(ctx, next); err != nil {
		t.Fatal(err)
	}
	return next
}

// TestEveryExpiryCounts: a request that expires, reopens and expires again has two
// expiries, each audited once (however many clicks notice it), each announced on its own
// message, whose buttons go.
func TestEveryExpiryCounts(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		name := map[bool]string{false: "inline", true: "deferred"}[deferred]
		t.Run(name, func(t *testing.T) {
			st := embeddedStore(t)
			sl := slacklocal.Start(nil)
			t.Cleanup(sl.Stop)
			bot := slackbot.New(slackbot.Options{Token: func(context.Context) (string, error) { return "xoxb-test", nil }, APIURL: sl.APIURL()})
			now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			svc := &approvals.Service{Config: cfg(t, config.Approvers{Users: []string{"UALICE", "UBOB"}, Required: 1}), Store: st, Publisher: &recorder{},
				Messages: bot, Log: quiet(), Now: func() time.Time { return now }, AnswerFirst: deferred}
			click := func(user, ts string) approvals.Outcome {
				t.Helper()
				out := decide(t, svc, user, slackmsg.ActionApprove, regflow.RequestID("prod", repo, digest), ts)
				if out.Kind != approvals.KindExpired && out.Kind != approvals.KindRefused {
					t.Fatalf("%s: %+v, want expired (or refused: expired already)", user, out)
				}
				if err := svc.Record(context.Background(), out.Pending); err != nil {
					t.Fatal(err)
				}
				if out.MessageDue {
					if err := svc.UpdateMessage(context.Background(), out.Request.ID, out.Request.Status); err != nil {
						t.Fatal(err)
					}
				}
				return out
			}
			expiries := func() []regflow.AuditEntry {
				t.Helper()
				trail, err := st.Audit(context.Background(), repo+"@"+digest)
				if err != nil {
					t.Fatal(err)
				}
				var out []regflow.AuditEntry
				for _, e := range trail {
					if e.Action == event.ActionApprovalExpired {
						out = append(out, e)
					}
				}
				return out
			}

			first := seed(t, st, sl, 1, now.Add(time.Hour))
			now = now.Add(2 * time.Hour)
			click("UALICE", "1")
			click("UBOB", "2")
			if got := expiries(); len(got) != 1 || !got[0].Time.Equal(first.ExpiresAt) {
				t.Fatalf("after the first expiry: %+v", got)
			}
			second := reopen(t, st, bot, first.ID, now.Add(time.Hour))
			if m := message(t, sl, second.SlackTS); !hasButtons(m) {
				t.Fatal("the reopened request's message has no buttons")
			}
			now = now.Add(2 * time.Hour)
			click("UBOB", "3")
			click("UALICE", "4")
			got := expiries()
			if len(got) != 2 || !got[1].Time.Equal(second.ExpiresAt) && !got[0].Time.Equal(second.ExpiresAt) {
				t.Fatalf("after the second expiry, want two expiry entries (%v and %v): %+v", first.ExpiresAt, second.ExpiresAt, got)
			}
			for _, m := range []regflow.ApprovalRequest{first, second} {
				msg := message(t, sl, m.SlackTS)
				if hasButtons(msg) || msg.Updates != 1 {
					t.Errorf("message %s: buttons %v, %d updates; want no buttons after one update", m.SlackTS, hasButtons(msg), msg.Updates)
				}
			}
			// A re-drive of the second expiry changes nothing.
			if _, err := svc.Settle(context.Background(), first.ID); err != nil {
				t.Fatal(err)
			}
			if n := len(expiries()); n != 2 {
				t.Fatalf("Settle wrote another expiry entry: %d", n)
			}
		})
	}
}

func message(t *testing.T, sl *slacklocal.Server, ts string) slacklocal.Message {
	t.Helper()
	for _, m := range sl.Messages() {
		if m.TS == ts {
			return m
		}
	}
	t.Fatalf("no Slack message %s", ts)
	return slacklocal.Message{}
}
