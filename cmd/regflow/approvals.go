package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/regflow"
)

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
