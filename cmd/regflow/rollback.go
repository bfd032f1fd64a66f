package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/regflow"
)

// rolledBack is what `regflow rollback --json` prints.
type rolledBack struct {
	Env        string    `json:"env"`
	Repository string    `json:"repository"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Tag        string    `json:"tag,omitempty"`
	By         string    `json:"by"`
	At         time.Time `json:"at"`
	Version    int       `json:"version"`
	// Rollback is the stored rollback this command recorded and the promoter applied.
	Rollback string `json:"rollback"`
}

func newRollbackCmd(g *globals) *cobra.Command {
	var to, as string
	cmd := &cobra.Command{
		Use:   "rollback <env> <repository> [--to <digest>]",
		Short: "Point an environment back at a digest already there: no copy, no rebuild",
		Long: `Moves an environment's release pointer of a repository back to a digest already in that
environment's registry: the previous release by default, or --to <digest>. Nothing is copied
or rebuilt. The rollback is recorded in regflow's store with your identity (--as, your AWS
identity, or $USER@local) before the pointer moves; the move is audited and announced on the
regflow bus ("Release Rolled Back").
Running it again without --to moves the pointer again (back to what ran before).`,
		Example: `  regflow rollback prod shop/web
  regflow rollback prod shop/web --to sha256:3b4c0f…`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			envName, repo := args[0], args[1]
			if to != "" {
				if err := checkDigest(to); err != nil {
					return fmt.Errorf("--to: %w", err)
				}
			}
			b, ctx, err := g.open(cmd, envName)
			if err != nil {
				return err
			}
			defer b.close()
			who, err := b.who(ctx, as)
			if err != nil {
				return b.explain(err)
			}
			target := "the previous release"
			if to != "" {
				target = regflow.ShortDigest(to)
			}
			progress(cmd, "rolling %s %s back to %s…", envName, repo, target)
			before, _ := b.store.GetRelease(ctx, envName, repo)
			// Recorded first, with the caller's identity: the promoter applies only stored
			// rollbacks, once each.
			rb, err := b.app.Promoter.RecordRollback(ctx, envName, repo, to, who)
			if err != nil {
				return b.explain(fmt.Errorf("rollback: %w", err))
			}
			moved, err := b.app.Promoter.ApplyRollback(ctx, rb.ID)
			if err != nil && moved.Version > before.Version && before.Version > 0 {
				// The pointer moved and only the announcement failed: running rollback again
				// would move it once more, so say exactly where things stand.
				return b.explain(fmt.Errorf("%s %s now runs %s (was %s), but announcing the rollback failed: %w\n(do not run the rollback again; the release pointer has moved)",
					envName, repo, regflow.ShortDigest(moved.Digest), regflow.ShortDigest(before.Digest), err))
			}
			if err != nil {
				return b.explain(fmt.Errorf("rollback: %w", err))
			}
			from := ""
			if len(moved.Previous) > 0 {
				from = moved.Previous[0]
			}
			out := rolledBack{Env: envName, Repository: repo, From: from, To: moved.Digest, Tag: moved.Tag, By: moved.By, At: moved.At, Version: moved.Version, Rollback: rb.ID}
			return g.emit(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s %s: %s → %s (tag %s), by %s. Release pointer moved; nothing copied.\n",
					envName, repo, regflow.ShortDigest(from), regflow.ShortDigest(moved.Digest), orDash(moved.Tag), who)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "digest to roll back to (default: the previous release)")
	cmd.Flags().StringVar(&as, "as", "", "identity to record (default: your AWS identity, or $USER@local with --local)")
	return cmd
}
