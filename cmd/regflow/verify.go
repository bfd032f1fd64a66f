package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/scangate"
	"github.com/regflow/regflow/shared/store"
)

// verified is what `regflow verify --json` prints.
type verified struct {
	Verification regflow.Verification `json:"verification"`
	Result       scangate.Result      `json:"result"`
}

func newVerifyCmd(g *globals) *cobra.Command {
	var passed, failed bool
	var link, as, requester string
	cmd := &cobra.Command{
		Use:   "verify <env> <repository>@<digest> --passed|--failed",
		Short: "Report a deployment's test result; a pass opens the next environment's approval",
		Long: `Records that a digest's deployment in an environment passed (or failed) its tests, as a
deployment pipeline does at its end. Environments that require verification open their
approval request only after the previous environment reports a pass; a failure blocks it.
The report is signed with --as, or your AWS identity (sts:GetCallerIdentity), or $USER@local
against the local stack. Who asked for the promotion (and so cannot approve it) is who runs
this command, by that verified identity, mapped to a Slack user under approvals.requesters.`,
		Example: `  regflow verify staging shop/web@sha256:3b4c0f… --passed --url https://ci.example.com/runs/42`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if requester != "" {
				return fmt.Errorf("--requester is no longer accepted: a requester typed in is a free field anyone could fill; " +
					"regflow takes it from your verified identity (map AWS principals to Slack users under approvals.requesters) " +
					"or from the Verification Result your deployment pipeline sends from its environment's account")
			}
			envName := args[0]
			repo, digest, err := parseRef(args[1])
			if err != nil {
				return err
			}
			if link != "" {
				if u, err := url.Parse(link); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					return fmt.Errorf("bad --url %q: want an http(s) link to the test run", link)
				}
			}
			b, ctx, err := g.open(cmd, envName)
			if err != nil {
				return err
			}
			defer b.close()
			if _, err := b.store.GetImage(ctx, repo, digest); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("regflow has no record of %s@%s: check the digest (`regflow status --json` shows what runs where)", repo, regflow.ShortDigest(digest))
			} else if err != nil {
				return b.explain(err)
			}
			// A report about a digest the environment does not run is probably a mistake; say so, but record it.
			if rel, err := b.store.GetRelease(ctx, envName, repo); err == nil && rel.Digest != digest {
				progress(cmd, "note: %s runs %s@%s, not %s", envName, repo, regflow.ShortDigest(rel.Digest), regflow.ShortDigest(digest))
			}
			who, err := b.who(ctx, as)
			if err != nil {
				return b.explain(err)
			}
			// Who asked is who runs this, by their verified identity (never --as, which
			// anyone may write): the config maps it to the Slack user who cannot approve.
			var asker string
			if id, err := b.identity(ctx); err == nil {
				asker = b.cfg.RequesterFor(id)
			}
			v := regflow.Verification{Env: envName, Repository: repo, Digest: digest, Passed: passed, URL: link, By: who, Requester: asker, At: time.Now().UTC()}
			res, err := b.app.ScanGate.Verify(ctx, v)
			if err != nil {
				return b.explain(fmt.Errorf("record verification: %w", err))
			}
			return g.emit(cmd, verified{Verification: v, Result: res}, func(w io.Writer) error {
				outcome := "passed"
				if !passed {
					outcome = "failed"
				}
				fmt.Fprintf(w, "Recorded: %s@%s %s in %s (reported by %s).\n", repo, regflow.ShortDigest(digest), outcome, envName, who)
				switch {
				case res.Next == "":
					fmt.Fprintf(w, "%s is the last environment; nothing else opens.\n", envName)
				case res.RequestID != "":
					fmt.Fprintf(w, "%s: approval request %s is %s", res.Next, res.RequestID, res.Status)
					if res.Reason != "" {
						fmt.Fprintf(w, " (%s)", res.Reason)
					}
					fmt.Fprintln(w, ".")
				default:
					fmt.Fprintf(w, "%s: %s.\n", res.Next, orDash(res.Reason))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&passed, "passed", false, "the deployment's tests passed")
	cmd.Flags().BoolVar(&failed, "failed", false, "the deployment's tests failed")
	cmd.Flags().StringVar(&link, "url", "", "link to the test run, shown with the approval request")
	cmd.Flags().StringVar(&as, "as", "", "identity to record (default: your AWS identity, or $USER@local with --local)")
	cmd.Flags().StringVar(&requester, "requester", "", "no longer accepted: the requester comes from your verified identity (approvals.requesters)")
	_ = cmd.Flags().MarkHidden("requester")
	cmd.MarkFlagsMutuallyExclusive("passed", "failed")
	cmd.MarkFlagsOneRequired("passed", "failed")
	return cmd
}
