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
			return g.emit(cmd, rels, func(w io.Writer) error {
				if len(rels) == 0 && repo == "" {
					_, err := fmt.Fprintf(w, "No releases yet: nothing has been promoted beyond %s (CI pushes there; approved promotions create release pointers).\n", orDash(b.cfg.Source()))
					return err
				}
				now := time.Now()
				var rows [][]string
				for _, r := range rels {
					prev := make([]string, len(r.Previous))
					for i, p := range r.Previous {
						prev[i] = regflow.ShortDigest(p)
					}
					rows = append(rows, []string{r.Env, r.Repository, regflow.ShortDigest(r.Digest), orDash(r.Tag), stamp(r.At, now), orDash(r.By), orDash(strings.Join(prev, " "))})
				}
				// Name the environments a repository has not reached, so "nothing" is visible.
				if repo != "" && len(b.cfg.PromotionPath) > 1 {
					for _, env := range b.cfg.PromotionPath[1:] {
						if !slices.ContainsFunc(rels, func(r regflow.Release) bool { return r.Env == env }) {
							rows = append(rows, []string{env, repo, "-", "-", "not released", "-", "-"})
						}
					}
				}
				return table(w, []string{"ENV", "REPOSITORY", "DIGEST", "TAG", "SINCE", "BY", "PREVIOUS"}, rows)
			})
		},
	}
}
