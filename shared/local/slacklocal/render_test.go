package slacklocal

import (
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
)

func TestRender(t *testing.T) {
	r := regflow.ApprovalRequest{ID: "req-1", Env: "prod", Repository: "shop/web", Digest: "sha256:0123456789abcdef0123", Tag: "3f2c1e9a",
		Status: regflow.StatusPending, Required: 2, Findings: map[string]int{"HIGH": 2}, ExpiresAt: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	v := regflow.Verification{Env: "staging", Passed: true, By: "U0ALICE", URL: "https://ci/42", At: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
	m := Message{Blocks: slack.Blocks{BlockSet: slackmsg.ApprovalBlocks(r, slackmsg.Context{Approvers: slackmsg.Approvers([]string{"U0BOB"}, []string{"S0OPS"}), Verification: &v})}}
	out := Render(m, 90)
	for _, want := range []string{"PROMOTE SHOP/WEB TO PROD?", "Repository: shop/web", "Findings: HIGH 2", "@U0BOB, @S0OPS (2 needed)", "(https://ci/42)", "[ Approve ]  [ Reject ]"} {
		if !strings.Contains(out, want) {
			t.Errorf("render lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if n := len([]rune(l)); n != 90 {
			t.Fatalf("line of width %d, want 90: %q", n, l)
		}
	}
}
