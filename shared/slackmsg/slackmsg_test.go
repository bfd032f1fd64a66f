package slackmsg_test

import (
	"context"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
)

func TestPostAndUpdateThroughSlacktest(t *testing.T) {
	srv := slacklocal.Start(nil)
	defer srv.Stop()
	p := slackmsg.Poster{Client: slack.New("xoxb", slack.OptionAPIURL(srv.APIURL()))}
	r := regflow.ApprovalRequest{ID: "req-1", Env: "prod", Repository: "app", Digest: "sha256:0123456789abcdef0123", Tag: "abc", Status: regflow.StatusPending, Required: 2,
		Findings: map[string]int{"HIGH": 2, "MEDIUM": 5}, ExpiresAt: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	ch, ts, err := p.Post(context.Background(), "C0PROD", r, slackmsg.Context{Approvers: slackmsg.Approvers([]string{"U1"}, []string{"S1"})})
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
	if err := p.Update(context.Background(), r, slackmsg.Context{}); err != nil {
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

func TestSeverity(t *testing.T) {
	if got := slackmsg.Severity(map[string]int{"LOW": 1, "CRITICAL": 2, "HIGH": 0}); got != "CRITICAL 2 · LOW 1" {
		t.Fatalf("got %q", got)
	}
	if got := slackmsg.Severity(nil); got != "none" {
		t.Fatalf("got %q", got)
	}
}
