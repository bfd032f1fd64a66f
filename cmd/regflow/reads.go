package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
	"github.com/spf13/cobra"
)

// The read-only commands: status (what runs where), approvals (what waits) and history
// (what happened to a digest). They read the store and change nothing.

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status [repository]",
		Short: "Show what runs where: digest, tag, since when, approved by whom, what ran before",
		Long: `Lists each environment's release pointers: the digest it runs per repository, its tag,
when it moved there, who approved it (or who rolled it back), and the digests before it.
The first environment has none: CI pushes there and promotions start from it.`,
		Example: `  regflow status
  regflow status shop/web --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := g.backend(cmd.Context())
			if err != nil {
				return err
			}
			defer b.close()
			repo := ""
			if len(args) == 1 {
				repo = args[0]
			}
			all, err := b.store.Releases(cmd.Context())
			if err != nil {
				return b.explain(fmt.Errorf("read release pointers: %w", err))
			}
			rels := []regflow.Release{}
			for _, r := range all {
				if repo == "" || r.Repository == repo {
					rels = append(rels, r)
				}
			}
			order := func(env string) int {
				if i := slices.Index(b.cfg.PromotionPath, env); i >= 0 {
					return i
				}
				return len(b.cfg.PromotionPath)
			}
			slices.SortFunc(rels, func(a, c regflow.Release) int {
				if d := order(a.Env) - order(c.Env); d != 0 {
					return d
				}
				return strings.Compare(a.Repository, c.Repository)
			})
			// What each environment's targets run, next to the pointer: a target running another
			// digest is drift (someone deployed by hand, or a deployment rolled back).
			rows := make([]statusRow, len(rels))
			for i, r := range rels {
				rows[i] = statusRow{Release: r, Targets: b.app.Deployer.Observe(cmd.Context(), r.Env, r.Repository)}
				for _, o := range rows[i].Targets {
					if o.Digest != "" && o.Digest != r.Digest {
						rows[i].Drift = true
					}
				}
			}
			return g.emit(cmd, rows, func(w io.Writer) error {
				if len(rels) == 0 && repo == "" {
					_, err := fmt.Fprintf(w, "No releases yet: nothing has been promoted beyond %s (CI pushes there; approved promotions create release pointers).\n", orDash(b.cfg.Source()))
					return err
				}
				now := time.Now()
				var lines [][]string
				for _, row := range rows {
					r := row.Release
					prev := make([]string, len(r.Previous))
					for i, p := range r.Previous {
						prev[i] = regflow.ShortDigest(p)
					}
					lines = append(lines, []string{r.Env, r.Repository, regflow.ShortDigest(r.Digest), orDash(r.Tag), stamp(r.At, now), orDash(r.By), orDash(strings.Join(prev, " ")), runs(row)})
				}
				// Name the environments a repository has not reached, so "nothing" is visible.
				if repo != "" && len(b.cfg.PromotionPath) > 1 {
					for _, env := range b.cfg.PromotionPath[1:] {
						if !slices.ContainsFunc(rels, func(r regflow.Release) bool { return r.Env == env }) {
							lines = append(lines, []string{env, repo, "-", "-", "not released", "-", "-", "-"})
						}
					}
				}
				return table(w, []string{"ENV", "REPOSITORY", "DIGEST", "TAG", "SINCE", "BY", "PREVIOUS", "RUNS"}, lines)
			})
		},
	}
}

// statusRow is a release pointer and what its environment's targets run.
type statusRow struct {
	regflow.Release
	Targets []deploy.Observed `json:"targets,omitempty"`
	// Drift is set when a target runs another digest than the pointer.
	Drift bool `json:"drift,omitempty"`
}

// runs says in a few words what the targets run: "ok" when each runs the pointer's digest.
func runs(row statusRow) string {
	if len(row.Targets) == 0 {
		return "-"
	}
	var parts []string
	for _, o := range row.Targets {
		switch {
		case o.Error != "":
			parts = append(parts, o.Kind+" "+o.Target+": unknown ("+oneLine(o.Error)+")")
		case o.Digest != row.Digest:
			parts = append(parts, "DRIFT "+o.Kind+" "+o.Target+" runs "+orDash(regflow.ShortDigest(o.Digest)))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("ok (%d targets)", len(row.Targets))
	}
	return strings.Join(parts, "; ")
}

func newApprovalsCmd(g *globals) *cobra.Command {
	var env string
	var all bool
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List approval requests waiting for people (--all: also waiting and blocked ones)",
		Example: `  regflow approvals
  regflow approvals --env prod --all --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := g.backend(cmd.Context())
			if err != nil {
				return err
			}
			defer b.close()
			if env != "" {
				if _, err := b.env(env); err != nil {
					return err
				}
			}
			statuses := []string{regflow.StatusPending}
			if all {
				statuses = append(statuses, regflow.StatusWaiting, regflow.StatusBlocked)
			}
			reqs := []regflow.ApprovalRequest{}
			for _, s := range statuses {
				rs, err := b.store.Requests(cmd.Context(), s)
				if err != nil {
					return b.explain(fmt.Errorf("list %s approval requests: %w", s, err))
				}
				for _, r := range rs {
					if env == "" || r.Env == env {
						reqs = append(reqs, r)
					}
				}
			}
			slices.SortStableFunc(reqs, func(a, c regflow.ApprovalRequest) int { return a.CreatedAt.Compare(c.CreatedAt) })
			return g.emit(cmd, reqs, func(w io.Writer) error {
				if len(reqs) == 0 {
					what := "pending approval requests"
					if all {
						what = "pending, waiting or blocked approval requests"
					}
					if env != "" {
						what += " for " + env
					}
					_, err := fmt.Fprintf(w, "No %s.\n", what)
					return err
				}
				now := time.Now()
				header := []string{"ID", "ENV", "REPOSITORY", "TAG", "DIGEST", "APPROVALS", "EXPIRES"}
				if all {
					header = append(header, "STATUS", "REASON")
				}
				var rows [][]string
				for _, r := range reqs {
					expires := stamp(r.ExpiresAt, now)
					if !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
						expires = "expired " + relative(r.ExpiresAt, now)
					}
					row := []string{r.ID, r.Env, r.Repository, orDash(r.Tag), regflow.ShortDigest(r.Digest),
						fmt.Sprintf("%d/%d", len(r.Approvals), max(r.Required, 1)), expires}
					if all {
						row = append(row, r.Status, orDash(oneLine(r.Reason)))
					}
					rows = append(rows, row)
				}
				return table(w, header, rows)
			})
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "only this environment's requests")
	cmd.Flags().BoolVar(&all, "all", false, "also list requests waiting for verification and blocked ones")
	return cmd
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

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
