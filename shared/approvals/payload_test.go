package approvals_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/slackmsg"
)

// TestPublishedPayloads parses every published block_actions sample. The valid ones
// decode (with the user, action and timestamps Slack documents); their buttons are not
// regflow's, so they are refused as unknown actions. The api.slack.com copy with a
// literal "..." is invalid JSON as published and is refused as such.
func TestPublishedPayloads(t *testing.T) {
	dir := testenv.RealTestdata(t)
	tests := []struct {
		file               string
		parses             bool
		user, action, ts   string
		value, responseURL string
		clickErr           error
	}{
		{"slack-block-actions-message-button.docs-slack-dev.json", true, "UA8RXUSPL", "WaXA", "1548426417.840180", "click_me_123",
			"https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209", approvals.ErrUnknownAction},
		{"slack-block-actions-home-tab-button.api-slack-com.json", true, "UA8RXUSPL", "XRX", "1571318425.267782", "", "", approvals.ErrUnknownAction},
		{"slack-block-actions-payload-all-fields-shape.java-slack-sdk.json", true, "", "", "", "", "", approvals.ErrBadPayload},
		{"slack-block-actions-message-button.api-slack-com.json", false, "", "", "", "", "", approvals.ErrBadPayload},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			cb, err := approvals.ParsePayload(b)
			if (err == nil) != tt.parses {
				t.Fatalf("ParsePayload: %v", err)
			}
			if err != nil {
				if !errors.Is(err, approvals.ErrBadPayload) {
					t.Fatalf("refusal %v is not ErrBadPayload", err)
				}
			} else {
				if cb.Type != "block_actions" || cb.User.ID != tt.user || cb.ResponseURL != tt.responseURL {
					t.Fatalf("decoded type %q user %q response_url %q", cb.Type, cb.User.ID, cb.ResponseURL)
				}
				if len(cb.ActionCallback.BlockActions) != 1 {
					t.Fatalf("%d block actions", len(cb.ActionCallback.BlockActions))
				}
				a := cb.ActionCallback.BlockActions[0]
				if a.ActionID != tt.action || a.ActionTs != tt.ts || a.Value != tt.value {
					t.Fatalf("action %q ts %q value %q", a.ActionID, a.ActionTs, a.Value)
				}
			}
			// Through the form body, as Slack sends it.
			_, err = approvals.ParseForm([]byte(url.Values{"payload": {string(b)}}.Encode()))
			if !errors.Is(err, tt.clickErr) {
				t.Fatalf("ParseForm: %v, want %v", err, tt.clickErr)
			}
		})
	}
}

// TestPublishedPayloadWithRegflowButton: the documented message-button payload with
// regflow's action id and a request id as value is a click.
func TestPublishedPayloadWithRegflowButton(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RealTestdata(t), "slack-block-actions-message-button.docs-slack-dev.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(strings.Replace(string(b), `"WaXA"`, `"`+slackmsg.ActionReject+`"`, 1), `"click_me_123"`, `"req-0123abcd"`, 1)
	c, err := approvals.ParseForm([]byte(url.Values{"payload": {s}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	want := approvals.Click{User: "UA8RXUSPL", Team: "T9TK3CUKW", Action: slackmsg.ActionReject, RequestID: "req-0123abcd",
		ActionTS: "1548426417.840180", ResponseURL: "https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209"}
	if c != want {
		t.Fatalf("click %+v\nwant  %+v", c, want)
	}
}

func TestClickRefusals(t *testing.T) {
	tests := map[string]string{
		"not an object":      `[]`,
		"null":               `null`,
		"not block_actions":  `{"type":"interactive_message","user":{"id":"U1"},"actions":[{"name":"x","value":"req-1"}]}`,
		"no user":            `{"type":"block_actions","actions":[{"action_id":"regflow_approve","block_id":"b","value":"req-1"}]}`,
		"no actions":         `{"type":"block_actions","user":{"id":"U1"}}`,
		"actions not array":  `{"type":"block_actions","user":{"id":"U1"},"actions":{"action_id":"regflow_approve"}}`,
		"attachment action":  `{"type":"block_actions","user":{"id":"U1"},"actions":[{"name":"regflow_approve","value":"req-1"}]}`,
		"empty value":        `{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"regflow_approve","block_id":"b","value":""}]}`,
		"markup in value":    `{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"regflow_approve","block_id":"b","value":"<@U2> hi"}]}`,
		"long value":         `{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"regflow_approve","block_id":"b","value":"` + strings.Repeat("a", 129) + `"}]}`,
		"user id wrong type": `{"type":"block_actions","user":{"id":7},"actions":[{"action_id":"regflow_approve","block_id":"b","value":"req-1"}]}`,
		"invalid UTF-8":      "{\"type\":\"block_actions\",\"user\":{\"id\":\"U\xff\"}}",
	}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := approvals.ParseForm([]byte(url.Values{"payload": {p}}.Encode()))
			if !errors.Is(err, approvals.ErrBadPayload) {
				t.Fatalf("ParseForm = %v, want ErrBadPayload", err)
			}
		})
	}
}

// FuzzParseForm feeds arbitrary bodies to the parser: it must never panic, and whatever
// it accepts must be one press of a regflow button with a user and a clean request id.
// Seeds: the published payloads (read in place, no corpus is committed) and our own click.
//
//	go test ./shared/approvals -run '^$' -fuzz FuzzParseForm -fuzztime 60s
func FuzzParseForm(f *testing.F) {
	f.Add(form(payload("U1", slackmsg.ActionApprove, "req-1", "1700000000.000001", "https://hooks.slack.com/a")))
	f.Add([]byte("payload=%7B%7D"))
	f.Add([]byte("payload="))
	if matches, _ := filepath.Glob(filepath.Join(testenv.RealTestdata(f), "slack-*.json")); len(matches) > 0 {
		for _, m := range matches {
			b, err := os.ReadFile(m)
			if err != nil {
				f.Fatal(err)
			}
			if len(b) > 4<<10 {
				// The 44 KB all-fields sample stalls the fuzzer's minimizer for minutes;
				// TestPublishedPayloads covers it.
				continue
			}
			f.Add(form(b))
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := approvals.ParseForm(body)
		if err != nil {
			if !errors.Is(err, approvals.ErrBadPayload) {
				t.Fatalf("refusal %v is not ErrBadPayload", err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("refusal message is not UTF-8: %q", err.Error())
			}
			return
		}
		switch c.Action {
		case slackmsg.ActionApprove, slackmsg.ActionReject, slackmsg.ActionRollback:
		default:
			t.Fatalf("accepted action %q", c.Action)
		}
		if c.User == "" || c.RequestID == "" || len(c.RequestID) > 128 || strings.ContainsAny(c.RequestID, " <>@\n\"") {
			t.Fatalf("accepted %+v", c)
		}
	})
}

func TestClickFormRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 0, 0, 123456000, time.UTC)
	for _, c := range []approvals.Click{
		{User: "U0ALICE", UserName: "alice", Team: "T1", Action: slackmsg.ActionApprove, RequestID: "req-927791412308c4fe6d86", ResponseURL: "http://127.0.0.1:1/hooks"},
		{User: "U0BOB", Action: slackmsg.ActionReject, RequestID: "req-1", ActionTS: "1700000000.000001"},
	} {
		got, err := approvals.ParseForm(approvals.ClickForm(c, at))
		if err != nil {
			t.Fatal(err)
		}
		want := c
		if want.ActionTS == "" {
			want.ActionTS = "1795770000.123456"
		}
		if got != want {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, want)
		}
	}
}
