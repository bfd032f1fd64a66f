package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

// imageHistory is what `regflow history --json` prints.
type imageHistory struct {
	Image *regflow.Image       `json:"image"`
	Audit []regflow.AuditEntry `json:"audit"`
}

func newHistoryCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "history <repository>@<digest>",
		Short:   "Show one image's audit trail, oldest first (pushes, tag decisions, scans, approvals, promotions, rollbacks)",
		Example: `  regflow history shop/web@sha256:3b4c0f…`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, digest, err := parseRef(args[0])
			if err != nil {
				return err
			}
			b, ctx, err := g.open(cmd, "")
			if err != nil {
				return err
			}
			defer b.close()
			h := imageHistory{Audit: []regflow.AuditEntry{}}
			img, err := b.store.GetImage(ctx, repo, digest)
			switch {
			case err == nil:
				h.Image = &img
			case !errors.Is(err, store.ErrNotFound):
				return b.explain(fmt.Errorf("read image %s@%s: %w", repo, digest, err))
			}
			entries, err := b.store.Audit(ctx, repo+"@"+digest)
			if err != nil {
				return b.explain(fmt.Errorf("read the audit trail of %s@%s: %w", repo, digest, err))
			}
			h.Audit = append(h.Audit, entries...)
			if h.Image == nil && len(h.Audit) == 0 {
				return fmt.Errorf("regflow has no record of %s@%s: check the repository and digest (`regflow status --json` lists what runs where)", repo, regflow.ShortDigest(digest))
			}
			return g.emit(cmd, h, func(w io.Writer) error {
				fmt.Fprintf(w, "%s@%s\n", repo, digest)
				if h.Image != nil {
					fmt.Fprintf(w, "  tags %s  commit %s  pushed %s\n\n", orDash(strings.Join(h.Image.Tags, ", ")), orDash(h.Image.Commit), stamp(h.Image.PushedAt, time.Now()))
				} else {
					fmt.Fprintf(w, "  (no image record: regflow did not see it pushed)\n\n")
				}
				var rows [][]string
				for _, e := range h.Audit {
					rows = append(rows, []string{e.Time.UTC().Format("2006-01-02 15:04:05"), e.Action, e.Actor, describeEntry(e)})
				}
				return table(w, []string{"TIME (UTC)", "ACTION", "ACTOR", "WHY / DETAILS"}, rows)
			})
		},
	}
}

// describeEntry puts an entry's reason and details on one line, details in key order.
func describeEntry(e regflow.AuditEntry) string {
	var parts []string
	if e.Reason != "" {
		parts = append(parts, e.Reason)
	}
	keys := make([]string, 0, len(e.Details))
	for k, v := range e.Details {
		if v != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := e.Details[k]
		if strings.HasPrefix(v, "sha256:") {
			v = regflow.ShortDigest(v)
		}
		parts = append(parts, k+"="+v)
	}
	return orDash(strings.Join(parts, "; "))
}
