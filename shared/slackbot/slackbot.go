// Package slackbot is regflow's one Slack adapter: it posts and updates approval messages,
// posts alerts, resolves user groups and replies to clicks through response_url. Its slack-go
// client is built on first use, so a function that never talks to Slack never reads the bot
// token. Rendering (slackmsg) and signature checks (slacksig) stay pure packages.
package slackbot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/sync/singleflight"

	"github.com/regflow/regflow/shared/redact"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
)

// Hooks is the prefix of every response_url Slack issues.
const Hooks = "https://hooks.slack.com/"

// EnvResponseURLPrefixes lists, comma-separated, where replies may be posted instead of
// Hooks: a Slack stand-in's address in tests and on a laptop.
const EnvResponseURLPrefixes = "REGFLOW_SLACK_RESPONSE_URL_PREFIXES"

// GroupTTL is how long a user group's members are trusted. Removing someone from a group
// takes at most this long to reach a warm container.
const GroupTTL = 3 * time.Minute

// groupLookupTimeout bounds one usergroups.users.list call shared by waiting clicks.
const groupLookupTimeout = 2 * time.Second

// Options configure a Bot. Token is required; the rest have defaults.
type Options struct {
	// Token returns the bot token (xoxb-…); it is called once, on first use, and again
	// after a failure.
	Token func(ctx context.Context) (string, error)
	// APIURL points slack-go at a stand-in (the local stack, tests); empty means slack.com.
	APIURL string
	// AlertChannel receives alerts; without one, alerts go to Log.
	AlertChannel string
	// ResponsePrefixes are where replies may be posted (default Hooks): the URL arrives in a
	// signed payload, but a reply is still never sent anywhere else.
	ResponsePrefixes []string
	// GroupTTL overrides GroupTTL when positive.
	GroupTTL time.Duration
	// HTTP posts replies to response_url; default a client with a 10 s timeout, a backstop:
	// each reply's context carries its real deadline (a follow-up after the answer).
	HTTP *http.Client
	Now  func() time.Time
	Log  *slog.Logger
}

// Bot talks to Slack for every regflow function.
type Bot struct {
	o Options

	mu     sync.Mutex
	client *slack.Client

	groupsMu sync.Mutex
	groups   map[string]groupEntry
	flight   singleflight.Group
}

type groupEntry struct {
	members []string
	at      time.Time
}

// New returns a Bot; nothing is fetched until it is used.
func New(o Options) *Bot {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.GroupTTL <= 0 {
		o.GroupTTL = GroupTTL
	}
	if len(o.ResponsePrefixes) == 0 {
		o.ResponsePrefixes = []string{Hooks}
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	return &Bot{o: o, groups: map[string]groupEntry{}}
}

// Client returns the slack-go client, reading the token on first use; a failed read is
// tried again on the next call.
func (b *Bot) Client(ctx context.Context) (*slack.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client != nil {
		return b.client, nil
	}
	if b.o.Token == nil {
		return nil, errors.New("slack: no bot token configured")
	}
	token, err := b.o.Token(ctx)
	if err != nil {
		return nil, err
	}
	var opts []slack.Option
	if b.o.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(b.o.APIURL))
	}
	b.client = slack.New(token, opts...)
	return b.client, nil
}

// Post sends a new approval message and returns its channel and timestamp.
func (b *Bot) Post(ctx context.Context, channel string, r regflow.ApprovalRequest, c slackmsg.Context) (string, string, error) {
	cl, err := b.Client(ctx)
	if err != nil {
		return "", "", err
	}
	r, c = clean(r, c)
	ch, ts, err := cl.PostMessageContext(ctx, channel, slack.MsgOptionText(slackmsg.Fallback(r), false), slack.MsgOptionBlocks(slackmsg.ApprovalBlocks(r, c)...))
	if err != nil {
		return "", "", fmt.Errorf("post approval message for %s to Slack channel %s: %w", r.Ref(), channel, err)
	}
	return ch, ts, nil
}

// Update rewrites a request's approval message in place; a request never posted is left alone.
func (b *Bot) Update(ctx context.Context, r regflow.ApprovalRequest, c slackmsg.Context) error {
	if r.SlackChannel == "" || r.SlackTS == "" {
		return nil
	}
	cl, err := b.Client(ctx)
	if err != nil {
		return err
	}
	r, c = clean(r, c)
	_, _, _, err = cl.UpdateMessageContext(ctx, r.SlackChannel, r.SlackTS, slack.MsgOptionText(slackmsg.Fallback(r), false), slack.MsgOptionBlocks(slackmsg.ApprovalBlocks(r, c)...))
	if err != nil {
		return fmt.Errorf("update approval message of %s in Slack channel %s: %w", r.Ref(), r.SlackChannel, err)
	}
	return nil
}

// Notify posts an alert to the alert channel, or logs it at warning level when none is set.
func (b *Bot) Notify(ctx context.Context, a regflow.Alert) error {
	a.Title, a.Text = redact.String(a.Title), redact.String(a.Text)
	a.Fields = slices.Clone(a.Fields)
	for i := range a.Fields {
		a.Fields[i].Value = redact.String(a.Fields[i].Value)
	}
	if b.o.AlertChannel == "" {
		args := []any{"kind", a.Kind, "text", a.Text}
		for _, f := range a.Fields {
			args = append(args, f.Label, f.Value)
		}
		b.o.Log.Warn(a.Title, args...)
		return nil
	}
	cl, err := b.Client(ctx)
	if err != nil {
		return err
	}
	_, _, err = cl.PostMessageContext(ctx, b.o.AlertChannel,
		slack.MsgOptionText(a.Title+": "+a.Text, false), // the notification and accessibility fallback
		slack.MsgOptionBlocks(slackmsg.AlertBlocks(a)...),
	)
	if err != nil {
		return fmt.Errorf("post alert to Slack channel %s: %w", b.o.AlertChannel, err)
	}
	return nil
}

// Members returns the user ids in a user group, cached for GroupTTL; concurrent misses for
// one group share one call.
func (b *Bot) Members(ctx context.Context, group string) ([]string, error) {
	b.groupsMu.Lock()
	e, ok := b.groups[group]
	b.groupsMu.Unlock()
	if ok && b.o.Now().Sub(e.at) < b.o.GroupTTL {
		return e.members, nil
	}
	v, err, _ := b.flight.Do(group, func() (any, error) {
		// The lookup serves every click waiting on it: its deadline is its own, not the
		// first caller's, so one impatient caller does not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupLookupTimeout)
		defer cancel()
		cl, err := b.Client(ctx)
		if err != nil {
			return nil, err
		}
		members, err := cl.GetUserGroupMembersContext(ctx, group)
		if err != nil {
			return nil, fmt.Errorf("usergroups.users.list %s: %w", group, err)
		}
		members = slices.Clone(members)
		b.groupsMu.Lock()
		b.groups[group] = groupEntry{members: members, at: b.o.Now()}
		b.groupsMu.Unlock()
		return members, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// Respond sends text to the clicking user only (ephemeral), through the payload's
// response_url, leaving the original message alone.
func (b *Bot) Respond(ctx context.Context, responseURL, text string) error {
	if !slices.ContainsFunc(b.o.ResponsePrefixes, func(p string) bool { return strings.HasPrefix(responseURL, p) }) {
		return fmt.Errorf("response_url %q is not under %v; reply not sent", Redact(responseURL), b.o.ResponsePrefixes)
	}
	msg := &slack.WebhookMessage{Text: redact.String(text), ResponseType: slack.ResponseTypeEphemeral, ReplaceOriginal: false}
	if err := slack.PostWebhookCustomHTTPContext(ctx, responseURL, b.o.HTTP, msg); err != nil {
		// slack-go's error may quote the URL, which lets anyone post to the channel for 30 minutes.
		return fmt.Errorf("reply through response_url %s: %s", Redact(responseURL), strings.ReplaceAll(err.Error(), responseURL, Redact(responseURL)))
	}
	return nil
}

// clean takes credentials out of the free text an approval message shows (reasons and
// notes can carry errors from a copy or a Slack call; redact says which).
func clean(r regflow.ApprovalRequest, c slackmsg.Context) (regflow.ApprovalRequest, slackmsg.Context) {
	r.Reason, c.Note = redact.String(r.Reason), redact.String(c.Note)
	if c.Verification != nil {
		v := *c.Verification
		v.URL, v.By = redact.String(v.URL), redact.String(v.By)
		c.Verification = &v
	}
	return r, c
}

// Redact keeps a URL's scheme and host and drops the path and query, which carry the
// credential of a response_url or a presigned URL.
func Redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		if len(u) > 16 {
			return u[:16] + "…"
		}
		return u
	}
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host + "/…"
}

// Prefixes parses a comma-separated list of response_url prefixes; empty means Hooks.
func Prefixes(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return []string{Hooks}
	}
	return out
}
