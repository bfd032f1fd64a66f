package slacklocal

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"
)

// Render draws a message's Block Kit for a terminal: the header, fields two per line,
// context lines and the buttons, inside a frame. Slack's mrkdwn marks are stripped.
func Render(m Message, width int) string {
	var lines []string
	for _, b := range m.Blocks.BlockSet {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			lines = append(lines, strings.ToUpper(plain(b.Text.Text)), "")
		case *slack.SectionBlock:
			if b.Text != nil {
				lines = append(lines, wrap(plain(b.Text.Text), width-4)...)
			}
			for i := 0; i < len(b.Fields); i += 2 {
				row := field(b.Fields[i].Text)
				if i+1 < len(b.Fields) {
					row = fmt.Sprintf("%-*s %s", (width-4)/2, row, field(b.Fields[i+1].Text))
				}
				lines = append(lines, row)
			}
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if t, ok := e.(*slack.TextBlockObject); ok {
					lines = append(lines, wrap(plain(t.Text), width-4)...)
				}
			}
		case *slack.ActionBlock:
			var btns []string
			for _, e := range b.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok {
					btns = append(btns, "[ "+btn.Text.Text+" ]")
				}
			}
			lines = append(lines, "", strings.Join(btns, "  "))
		}
	}
	if len(lines) == 0 {
		lines = wrap(plain(m.Text), width-4)
	}
	bar := "+" + strings.Repeat("-", width-2) + "+"
	out := []string{bar}
	for _, l := range lines {
		r := []rune(l)
		if len(r) > width-4 {
			l = string(r[:width-5]) + "…"
		}
		out = append(out, fmt.Sprintf("| %-*s |", width-4, l))
	}
	return strings.Join(append(out, bar), "\n")
}

// field turns "*Label*\nvalue" into "Label: value".
func field(s string) string {
	label, value, ok := strings.Cut(s, "\n")
	if !ok {
		return plain(s)
	}
	return plain(label) + ": " + plain(value)
}

func plain(s string) string {
	s = strings.NewReplacer("*", "", "`", "", "_", " ").Replace(s)
	// <@U123> → @U123, <url|text> → text (url)
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		j := strings.IndexByte(s[max(i, 0):], '>')
		if i < 0 || j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		inner := s[i+1 : i+j]
		switch {
		case strings.HasPrefix(inner, "@"):
			b.WriteString(inner)
		case strings.HasPrefix(inner, "!subteam^"):
			b.WriteString("@" + strings.TrimPrefix(inner, "!subteam^"))
		default:
			url, text, ok := strings.Cut(inner, "|")
			if ok {
				b.WriteString(text + " (" + url + ")")
			} else {
				b.WriteString(url)
			}
		}
		s = s[i+j+1:]
	}
}

func wrap(s string, width int) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, w := range strings.Fields(para) {
			if line != "" && len([]rune(line))+1+len([]rune(w)) > width {
				out = append(out, line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		out = append(out, line)
	}
	return out
}
