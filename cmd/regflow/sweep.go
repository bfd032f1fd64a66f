package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/glob"
	"github.com/regflow/regflow/shared/sweep"
)

func newSweepCmd(g *globals) *cobra.Command {
	var (
		dryRun      bool
		repo, at    string
		role        string
		concurrency int
	)
	cmd := &cobra.Command{
		Use:   "sweep [--dry-run] [--repo GLOB] [--now TIME]",
		Short: "Apply the retention policy to every environment's registry, explaining every decision",
		Long: `Sweeps every repository the config manages in every environment's registry, as the
scheduled sweeper does: images past retention.maxAge (or untaggedMaxAge) go, unless an
environment's release pointer, an open approval request, a kept index or a kept
signature needs them. Deletions are audited. Start with --dry-run.

Against AWS it uses the default credential chain, the pipeline table for protection
data and the audit trail, and assumes --role in environment accounts other than the
caller's. With --local it sweeps the registries of the running local stack (regflow
local), reading protection data from and auditing into its store.

  regflow sweep --dry-run
  regflow sweep --dry-run --now 2027-01-01 --repo 'shop/*'   # what goes next month?
  regflow sweep --json > report.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now().UTC()
			var err error
			if at != "" {
				if !dryRun {
					return errors.New("--now previews a future sweep: use it with --dry-run")
				}
				if now, err = parseNow(at); err != nil {
					return err
				}
			}
			if err := glob.Valid(repo); repo != "" && err != nil {
				return fmt.Errorf("--repo: %w", err)
			}
			g.sweeperRole = role
			b, err := g.backend(cmd.Context())
			if err != nil {
				return err
			}
			defer b.close()
			opts := app.SweepOptions{
				Run:  sweep.Run{ID: "cli-" + time.Now().UTC().Format("20060102T150405.000Z"), Now: now, DryRun: dryRun},
				Only: repo, Concurrency: concurrency,
			}
			stderr := &syncWriter{w: cmd.ErrOrStderr()}
			var done atomic.Int64
			opts.OnRepository = func(p sweep.Progress) {
				n := done.Add(1)
				switch {
				case p.Err != nil:
					fmt.Fprintf(stderr, "[%d] %s %s: FAILED: %v\n", n, p.Target.Name, p.Repository, p.Err)
				case dryRun:
					fmt.Fprintf(stderr, "[%d] %s %s: %d images, %d would go\n", n, p.Target.Name, p.Repository, p.Images, p.Selected)
				default:
					fmt.Fprintf(stderr, "[%d] %s %s: %d images, %d selected, %d deleted\n", n, p.Target.Name, p.Repository, p.Images, p.Selected, p.Removed)
				}
			}
			fmt.Fprintf(stderr, "sweeping %d registries at %s%s\n", len(sweep.Targets(b.cfg)), now.Format(time.RFC3339), map[bool]string{true: " (dry run: nothing is deleted)"}[dryRun])
			rep, err := b.app.Sweep(cmd.Context(), opts)
			if err != nil {
				return b.explain(err)
			}

			out := cmd.OutOrStdout()
			if g.json {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else if err := rep.WriteTable(out); err != nil {
				return err
			}
			sel, res := rep.Totals()
			if n := len(sel.Failed) + res.Refused; n > 0 {
				return fmt.Errorf("sweep finished with %d repositories not swept and %d images not deleted (see the report)", len(sel.Failed), res.Refused)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "decide and report, delete nothing")
	cmd.Flags().StringVar(&repo, "repo", "", "only repositories matching this glob (* matches any run of characters, / included)")
	cmd.Flags().StringVar(&at, "now", "", "measure ages at this time (RFC 3339 or YYYY-MM-DD), with --dry-run: preview a future sweep")
	cmd.Flags().StringVar(&role, "role", "", "role name to assume in environment accounts other than the pipeline account (default $"+awsapp.EnvSweeperRole+")")
	cmd.Flags().IntVar(&concurrency, "concurrency", sweep.DefaultConcurrency, "repositories swept at once per registry")
	return cmd
}

func parseNow(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--now %q: give a time as 2027-01-01T03:00:00Z or a date as 2027-01-01", s)
}

// awsDeps builds the adapters from the default credential chain and config.
