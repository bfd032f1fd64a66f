package notify_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/notify"
	"github.com/regflow/regflow/shared/regflow"
)

var alert = regflow.Alert{
	Kind: "tag-policy-violation", Title: "Tag policy violation: app:latest", Text: `tag "latest" is a moving tag`,
	Fields: []regflow.Field{{Label: "Outcome", Value: "tag removed"}, {Label: "Digest", Value: "sha256:abc"}},
}

func TestSlackThroughSlacktest(t *testing.T) {
	srv := slacklocal.Start(nil)
	defer srv.Stop()
	n := notify.NewSlack(slack.New("xoxb-test", slack.OptionAPIURL(srv.APIURL())), "C0ALERTS")
	if err := n.Notify(context.Background(), alert); err != nil {
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

func TestSlackErrorIsWorded(t *testing.T) {
	srv := slacklocal.Start(nil)
	defer srv.Stop()
	n := notify.NewSlack(slack.New("xoxb-test", slack.OptionAPIURL(srv.APIURL())), "")
	err := n.Notify(context.Background(), alert)
	if err == nil || !strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("got %v", err)
	}
}

func TestLongTextIsTruncated(t *testing.T) {
	a := alert
	a.Title = strings.Repeat("x", 500)
	blocks := notify.AlertBlocks(a)
	if got := len([]rune(blocks[0].(*slack.HeaderBlock).Text.Text)); got != 150 {
		t.Errorf("header length %d, Slack's limit is 150", got)
	}
}

func TestLog(t *testing.T) {
	var buf bytes.Buffer
	l := notify.Log{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	if err := l.Notify(context.Background(), alert); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "tag removed") {
		t.Errorf("log = %s", buf.String())
	}
}
