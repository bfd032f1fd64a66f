package slackmsg_test

import (
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
)

func TestLongAlertTextIsTruncated(t *testing.T) {
	a := regflow.Alert{Title: strings.Repeat("x", 500), Text: "t"}
	blocks := slackmsg.AlertBlocks(a)
	if got := len([]rune(blocks[0].(*slack.HeaderBlock).Text.Text)); got != 150 {
		t.Errorf("header length %d, Slack's limit is 150", got)
	}
}

func TestSeverity(t *testing.T) {
	if got := slackmsg.Severity(map[string]int{"LOW": 1, "CRITICAL": 2, "HIGH": 0}); got != "CRITICAL 2 · LOW 1" {
		t.Fatalf("got %q", got)
	}
	if got := slackmsg.Severity(nil); got != "none" {
		t.Fatalf("got %q", got)
	}
}
