package approvals

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/sync/singleflight"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
)

// SlackClient returns a slack-go client with the bot token (wiring.Deps.SlackClient).
type SlackClient func(ctx context.Context) (*slack.Client, error)

// SlackMessages updates approval messages with a client obtained on first use, so
// the bot token is read from Secrets Manager only when a message changes.
type SlackMessages struct {
	Client SlackClient
}

// Update rewrites the request's message in place.
func (m SlackMessages) Update(ctx context.Context, r regflow.ApprovalRequest, c slackmsg.Context) error {
	cl, err := m.Client(ctx)
	if err != nil {
		return err
	}
	return slackmsg.Poster{Client: cl}.Update(ctx, r, c)
}

// GroupTTL is how long a user group's members are trusted. Removing someone from a
// group takes at most this long to reach a warm container.
const GroupTTL = 3 * time.Minute

// SlackGroups resolves user groups with usergroups.users.list, caching each group's
// members for TTL per container. Concurrent misses for one group share one call.
type SlackGroups struct {
	client SlackClient
	ttl    time.Duration
	now    func() time.Time

	mu     sync.Mutex
	cached map[string]groupEntry
	flight singleflight.Group
}

type groupEntry struct {
	members []string
	at      time.Time
}

// NewSlackGroups returns a cached group resolver; ttl ≤ 0 means GroupTTL, nil now means time.Now.
func NewSlackGroups(client SlackClient, ttl time.Duration, now func() time.Time) *SlackGroups {
	if ttl <= 0 {
		ttl = GroupTTL
	}
	if now == nil {
		now = time.Now
	}
	return &SlackGroups{client: client, ttl: ttl, now: now, cached: map[string]groupEntry{}}
}

// groupLookupTimeout bounds one usergroups.users.list call shared by waiting clicks.
const groupLookupTimeout = 2 * time.Second

// Members returns the user ids in group.
func (g *SlackGroups) Members(ctx context.Context, group string) ([]string, error) {
	g.mu.Lock()
	e, ok := g.cached[group]
	g.mu.Unlock()
	if ok && g.now().Sub(e.at) < g.ttl {
		return e.members, nil
	}
	v, err, _ := g.flight.Do(group, func() (any, error) {
		// The lookup serves every click waiting on it: its deadline is its own, not the
		// first caller's, so one impatient caller does not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupLookupTimeout)
		defer cancel()
		cl, err := g.client(ctx)
		if err != nil {
			return nil, err
		}
		members, err := cl.GetUserGroupMembersContext(ctx, group)
		if err != nil {
			return nil, fmt.Errorf("usergroups.users.list %s: %w", group, err)
		}
		members = slices.Clone(members)
		g.mu.Lock()
		g.cached[group] = groupEntry{members: members, at: g.now()}
		g.mu.Unlock()
		return members, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// SlackHooks is the prefix of every response_url Slack issues.
const SlackHooks = "https://hooks.slack.com/"

// EnvResponseURLPrefixes lists, comma-separated, where replies may be posted instead
// of SlackHooks: a Slack stand-in's address in tests and on a laptop.
const EnvResponseURLPrefixes = "REGFLOW_SLACK_RESPONSE_URL_PREFIXES"

// ResponsePrefixes parses an EnvResponseURLPrefixes value; empty means SlackHooks.
func ResponsePrefixes(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return []string{SlackHooks}
	}
	return out
}

// Webhook posts replies to response_url as ephemeral messages. It posts only to URLs
// under Prefixes (default SlackHooks): the URL arrives in a signed payload, but a
// reply is still never sent anywhere else.
type Webhook struct {
	HTTP     *http.Client
	Prefixes []string
}

// Respond sends text to the clicking user only, leaving the original message alone.
func (w Webhook) Respond(ctx context.Context, responseURL, text string) error {
	prefixes := w.Prefixes
	if len(prefixes) == 0 {
		prefixes = []string{SlackHooks}
	}
	if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(responseURL, p) }) {
		return fmt.Errorf("response_url %q is not under %v; reply not sent", clip(responseURL), prefixes)
	}
	hc := w.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Second}
	}
	msg := &slack.WebhookMessage{Text: text, ResponseType: slack.ResponseTypeEphemeral, ReplaceOriginal: false}
	if err := slack.PostWebhookCustomHTTPContext(ctx, responseURL, hc, msg); err != nil {
		return fmt.Errorf("reply through response_url: %w", err)
	}
	return nil
}
