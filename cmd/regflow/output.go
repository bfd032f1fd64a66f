package main

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// emit prints v as indented JSON with --json, else calls human to print it for people.
func (g *globals) emit(cmd *cobra.Command, v any, human func(w io.Writer) error) error {
	out := cmd.OutOrStdout()
	if g.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return human(out)
}

// table writes aligned columns; rows are tab-separated cells.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// progress tells the user on stderr what a slow step is doing; stdout stays for results.
func progress(cmd *cobra.Command, format string, args ...any) {
	fmt.Fprintf(cmd.ErrOrStderr(), format+"\n", args...)
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// checkDigest refuses anything but a full sha256 digest: a short or mistyped one
// could name a different image.
func checkDigest(d string) error {
	if !digestRE.MatchString(d) {
		return fmt.Errorf("bad digest %q: want sha256: and 64 lowercase hex digits (`regflow status --json` and `regflow approvals --json` show full digests)", d)
	}
	return nil
}

// parseRef splits <repository>@<digest>.
func parseRef(ref string) (repo, digest string, err error) {
	repo, digest, ok := strings.Cut(ref, "@")
	if !ok || repo == "" {
		return "", "", fmt.Errorf("bad image reference %q: want <repository>@sha256:<64 hex digits>, e.g. shop/web@sha256:3b4c…", ref)
	}
	if err := checkDigest(digest); err != nil {
		return "", "", fmt.Errorf("bad image reference %q: %w", ref, err)
	}
	return repo, digest, nil
}

// stamp shows a time in UTC to the minute, with how long ago (or until) it is.
func stamp(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC") + " (" + relative(t, now) + ")"
}

func relative(t, now time.Time) string {
	d := t.Sub(now)
	if d < 0 {
		return span(-d) + " ago"
	}
	return "in " + span(d)
}

func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 72*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// syncWriter serializes writes from handler goroutines (Slack posts, progress callbacks)
// with the command's own output.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
