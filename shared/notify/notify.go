// Package notify delivers regflow's alerts: to Slack with slack-go, or to the
// log when running locally without Slack.
package notify

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/slack-go/slack"

	"github.com/regflow/regflow/shared/regflow"
)

// Slack posts alerts as Block Kit messages to one channel.
type Slack struct {
	client  *slack.Client
	channel string
}

// NewSlack returns a Slack notifier. Pass slack.OptionAPIURL to point it at a stand-in.
func NewSlack(client *slack.Client, channel string) *Slack {
	return &Slack{client: client, channel: channel}
}

// Notify posts the alert.
func (s *Slack) Notify(ctx context.Context, a regflow.Alert) error {
	_, _, err := s.client.PostMessageContext(ctx, s.channel,
		slack.MsgOptionText(a.Title+": "+a.Text, false), // the notification and accessibility fallback
		slack.MsgOptionBlocks(AlertBlocks(a)...),
	)
	if err != nil {
		return fmt.Errorf("post alert to Slack channel %s: %w", s.channel, err)
	}
	return nil
}

// AlertBlocks renders an alert as Block Kit: a header, the reason, then the fields.
func AlertBlocks(a regflow.Alert) []slack.Block {
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(a.Title, 150), false, false)),
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, truncate(a.Text, 3000), false, false), nil, nil),
	}
	var fields []*slack.TextBlockObject
	for _, f := range a.Fields {
		fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType, truncate("*"+f.Label+"*\n"+f.Value, 2000), false, false))
		if len(fields) == 10 { // Slack's limit per section
			break
		}
	}
	if len(fields) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	}
	return blocks
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Log writes alerts to a structured log; the local default.
type Log struct {
	Logger *slog.Logger
}

// Notify logs the alert at warning level.
func (l Log) Notify(_ context.Context, a regflow.Alert) error {
	args := []any{"kind", a.Kind, "text", a.Text}
	for _, f := range a.Fields {
		args = append(args, f.Label, f.Value)
	}
	l.Logger.Warn(a.Title, args...)
	return nil
}
