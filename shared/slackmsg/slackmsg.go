// Package slackmsg renders regflow's Slack messages as Block Kit: approval requests with
// their buttons, and alerts. shared/slackbot posts and updates them.
package slackmsg

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/regflow/regflow/shared/regflow"
)

// Action ids carried by the buttons; the approvals function dispatches on them.
const (
	ActionApprove  = "regflow_approve"
	ActionReject   = "regflow_reject"
	ActionRollback = "regflow_rollback"
)

// Context is what a message shows beyond the request itself.
type Context struct {
	// Approvers describes who may approve ("<@U1>, <@U2> or members of <!subteam^S1>").
	Approvers string
	// Verification, when known, is the previous environment's result.
	Verification *regflow.Verification
	// Note is an extra line (a refusal, a promotion failure, a rollback).
	Note string
}

// ApprovalBlocks renders a request in any status; buttons appear only while it is pending.
func ApprovalBlocks(r regflow.ApprovalRequest, c Context) []slack.Block {
	title := fmt.Sprintf("Promote %s to %s?", r.Repository, r.Env)
	switch r.Status {
	case regflow.StatusApproved:
		title = fmt.Sprintf("Approved: %s to %s", r.Repository, r.Env)
	case regflow.StatusRejected:
		title = fmt.Sprintf("Rejected: %s to %s", r.Repository, r.Env)
	case regflow.StatusExpired:
		title = fmt.Sprintf("Expired: %s to %s", r.Repository, r.Env)
	case regflow.StatusPromoted:
		title = fmt.Sprintf("Promoted: %s to %s", r.Repository, r.Env)
	case regflow.StatusFailed:
		title = fmt.Sprintf("Promotion failed: %s to %s", r.Repository, r.Env)
	case regflow.StatusSuperseded:
		title = fmt.Sprintf("Superseded: %s to %s", r.Repository, r.Env)
	}
	md := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
	}
	fields := []*slack.TextBlockObject{
		md("*Repository*\n`" + r.Repository + "`"),
		md("*Tag / commit*\n`" + orDash(r.Tag) + "`"),
		md("*Digest*\n`" + regflow.ShortDigest(r.Digest) + "`"),
		md("*Findings*\n" + Severity(r.Findings)),
		md("*Approvers*\n" + orDash(c.Approvers) + fmt.Sprintf(" (%d needed)", max(r.Required, 1))),
		md("*Expires*\n" + r.ExpiresAt.UTC().Format("2006-01-02 15:04 MST")),
	}
	if r.Signature != nil && r.Signature.Line() != "" {
		fields = append(fields, md("*Signature*\n"+r.Signature.Line()))
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, title, false, false)),
		slack.NewSectionBlock(nil, fields, nil),
	}
	if v := c.Verification; v != nil {
		res := "passed"
		if !v.Passed {
			res = "FAILED"
		}
		line := fmt.Sprintf("Verified in *%s*: %s (reported by %s, %s)", v.Env, res, v.By, v.At.UTC().Format(time.RFC3339))
		if v.URL != "" {
			line += " <" + v.URL + "|details>"
		}
		blocks = append(blocks, slack.NewSectionBlock(md(line), nil, nil))
	}
	if len(r.Approvals) > 0 {
		var who []string
		for _, v := range r.Approvals {
			who = append(who, "<@"+v.User+">")
		}
		blocks = append(blocks, slack.NewContextBlock("", md("Approved by "+strings.Join(who, ", "))))
	}
	if r.DecidedBy != "" && r.Status == regflow.StatusRejected {
		blocks = append(blocks, slack.NewContextBlock("", md(fmt.Sprintf("Rejected by <@%s> at %s", r.DecidedBy, r.DecidedAt.UTC().Format(time.RFC3339)))))
	}
	if c.Note != "" {
		blocks = append(blocks, slack.NewContextBlock("", md(c.Note)))
	}
	switch r.Status {
	case regflow.StatusPending:
		approve := slack.NewButtonBlockElement(ActionApprove, r.ID, slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)).WithStyle(slack.StylePrimary)
		reject := slack.NewButtonBlockElement(ActionReject, r.ID, slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false)).WithStyle(slack.StyleDanger)
		blocks = append(blocks, slack.NewActionBlock("regflow_decision", approve, reject))
	case regflow.StatusPromoted:
		rollback := slack.NewButtonBlockElement(ActionRollback, r.ID, slack.NewTextBlockObject(slack.PlainTextType, "Roll back", false, false)).WithStyle(slack.StyleDanger)
		blocks = append(blocks, slack.NewActionBlock("regflow_release", rollback))
	}
	return blocks
}

// Fallback is the plain text Slack shows in notifications.
func Fallback(r regflow.ApprovalRequest) string {
	return fmt.Sprintf("[%s] promote %s:%s (%s) to %s; findings %s", orDash(r.Status), r.Repository, orDash(r.Tag), regflow.ShortDigest(r.Digest), r.Env, Severity(r.Findings))
}

// Severity summarises counts most severe first: "CRITICAL 0 · HIGH 2 · MEDIUM 5", or "none".
func Severity(counts map[string]int) string {
	order := map[string]int{"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3, "INFORMATIONAL": 4, "UNDEFINED": 5}
	var sevs []string
	for s, n := range counts {
		if n > 0 {
			sevs = append(sevs, s)
		}
	}
	if len(sevs) == 0 {
		return "none"
	}
	sort.Slice(sevs, func(i, j int) bool { return order[sevs[i]] < order[sevs[j]] })
	var parts []string
	for _, s := range sevs {
		parts = append(parts, fmt.Sprintf("%s %d", s, counts[s]))
	}
	return strings.Join(parts, " · ")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
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

// Approvers renders who may approve an environment.
func Approvers(users, groups []string) string {
	var parts []string
	for _, u := range users {
		parts = append(parts, "<@"+u+">")
	}
	for _, g := range groups {
		parts = append(parts, "<!subteam^"+g+">")
	}
	return strings.Join(parts, ", ")
}
