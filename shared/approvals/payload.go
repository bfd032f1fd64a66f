package approvals

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/regflow/regflow/shared/slackmsg"
)

// ErrBadPayload is the root of every refusal of a request body (HTTP 400).
var ErrBadPayload = errors.New("not a Slack block_actions interaction")

// ErrUnknownAction refuses a button regflow did not put there.
var ErrUnknownAction = fmt.Errorf("%w: unknown action", ErrBadPayload)

// ignoredKeys are payload members an approval never reads. Slack echoes the whole
// message (or view) there; it is not decoded, so neither its size nor a quirk in it
// (the SDK cannot decode an attachment "ts" of "") can stand between a person and
// their decision.
var ignoredKeys = []string{"message", "original_message", "view", "app_unfurl", "state"}

// ParsePayload decodes the JSON in the form field "payload" with slack-go.
func ParsePayload(payload []byte) (*slack.InteractionCallback, error) {
	if !utf8.Valid(payload) {
		return nil, fmt.Errorf("%w: payload is not UTF-8", ErrBadPayload)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(payload, &members); err != nil {
		return nil, fmt.Errorf("%w: payload is not a JSON object: %v", ErrBadPayload, err)
	}
	if members == nil {
		return nil, fmt.Errorf("%w: payload is null", ErrBadPayload)
	}
	for _, k := range ignoredKeys {
		delete(members, k)
	}
	trimmed, err := json.Marshal(members)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal(trimmed, &cb); err != nil {
		return nil, fmt.Errorf("%w: payload does not have Slack's interaction shape: %v", ErrBadPayload, err)
	}
	return &cb, nil
}

// ClickFrom checks that an interaction is one press of a regflow button and returns it.
func ClickFrom(cb *slack.InteractionCallback) (Click, error) {
	if cb.Type != slack.InteractionTypeBlockActions {
		return Click{}, fmt.Errorf("%w: interaction type %q", ErrBadPayload, clip(string(cb.Type)))
	}
	if cb.User.ID == "" {
		return Click{}, fmt.Errorf("%w: no user id", ErrBadPayload)
	}
	acts := cb.ActionCallback.BlockActions
	if len(acts) != 1 || len(cb.ActionCallback.AttachmentActions) != 0 {
		return Click{}, fmt.Errorf("%w: want exactly one block action, got %d (and %d attachment actions)", ErrBadPayload, len(acts), len(cb.ActionCallback.AttachmentActions))
	}
	a := acts[0]
	switch a.ActionID {
	case slackmsg.ActionApprove, slackmsg.ActionReject, slackmsg.ActionRollback:
	default:
		return Click{}, fmt.Errorf("%w %q", ErrUnknownAction, clip(a.ActionID))
	}
	if !validRequestID(a.Value) {
		return Click{}, fmt.Errorf("%w: button value %q is not a request id", ErrBadPayload, clip(a.Value))
	}
	ts := a.ActionTs
	if ts == "" {
		ts = cb.ActionTs
	}
	return Click{
		User: cb.User.ID, UserName: cb.User.Name, Team: cb.Team.ID, Action: a.ActionID, RequestID: a.Value,
		ActionTS: ts, ResponseURL: cb.ResponseURL,
	}, nil
}

// ParseForm takes a raw application/x-www-form-urlencoded body and returns the click.
func ParseForm(body []byte) (Click, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return Click{}, fmt.Errorf("%w: body is not form-encoded: %v", ErrBadPayload, err)
	}
	p := form["payload"]
	if len(p) != 1 || p[0] == "" {
		return Click{}, fmt.Errorf("%w: want one non-empty payload field, got %d", ErrBadPayload, len(p))
	}
	cb, err := ParsePayload([]byte(p[0]))
	if err != nil {
		return Click{}, err
	}
	return ClickFrom(cb)
}

// validRequestID accepts the ids regflow makes (regflow.RequestID: "req-" and hex)
// and any similar short token, never markup or whitespace.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0
}

func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// ClickForm renders a click as the form body Slack would send for it: a
// block_actions payload with one button action. The local stack's demo and the
// CLI play Slack with it (sign it with slacksig.Sign); ParseForm reads it back.
func ClickForm(c Click, at time.Time) []byte {
	ts := c.ActionTS
	if ts == "" {
		ts = fmt.Sprintf("%d.%06d", at.Unix(), at.Nanosecond()/1000)
	}
	p, _ := json.Marshal(map[string]any{
		"type":         "block_actions",
		"team":         map[string]any{"id": c.Team},
		"user":         map[string]any{"id": c.User, "username": c.UserName, "name": c.UserName, "team_id": c.Team},
		"container":    map[string]any{"type": "message"},
		"response_url": c.ResponseURL,
		"actions": []map[string]any{{
			"type": "button", "block_id": "regflow_decision", "action_id": c.Action, "value": c.RequestID, "action_ts": ts,
		}},
	})
	return []byte(url.Values{"payload": {string(p)}}.Encode())
}
