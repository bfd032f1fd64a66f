package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/regflow"
	sigverify "github.com/regflow/regflow/shared/signature"
	"github.com/regflow/regflow/shared/signature/ocisig"
)

// signatureCheck is what `regflow verify-signature --json` prints.
type signatureCheck struct {
	Env        string                  `json:"env"`
	In         string                  `json:"in"`
	Repository string                  `json:"repository"`
	Digest     string                  `json:"digest"`
	Status     regflow.SignatureStatus `json:"status"`
}

// errSignatureRefused makes the command exit non-zero when the policy would refuse.
var errSignatureRefused = errors.New("the signature policy would refuse this digest")

func newVerifySignatureCmd(g *globals) *cobra.Command {
	var in string
	cmd := &cobra.Command{
		Use:   "verify-signature <env> <repository>@<digest>",
		Short: "Show whether a digest's signatures meet an environment's requireSignature",
		Long: `Checks a digest against the signatures the environment trusts (requireSignature in the
config), as the scan gate and the promoter will: cosign signatures (the sha256-<hex>.sig tag
and OCI referrers), Sigstore bundles and Notary Project signatures. By default the digest is
read where it would be promoted from, the previous environment's registry; --in names
another (the environment itself, to check a copy after promotion). Exits non-zero when the
policy would refuse, and says what was checked.`,
		Example: `  regflow verify-signature prod shop/web@sha256:3b4c0f…
  regflow verify-signature prod shop/web@sha256:3b4c0f… --in prod --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			envName := args[0]
			repo, digest, err := parseRef(args[1])
			if err != nil {
				return err
			}
			b, ctx, err := g.open(cmd, envName)
			if err != nil {
				return err
			}
			defer b.close()
			if b.cfg.Environments[envName].RequireSignature == nil {
				return fmt.Errorf("%s sets no requireSignature: nothing to check (add one under environments.%s in the config)", envName, envName)
			}
			if in == "" {
				in = envName
				if prev, ok := b.cfg.Previous(envName); ok {
					in = prev
				}
			}
			if _, err := b.env(in); err != nil {
				return fmt.Errorf("--in: %w", err)
			}
			checker, err := sigverify.NewChecker(b.cfg, ocisig.ReachECR(b.cfg, b.registries))
			if err != nil {
				return err
			}
			st, err := checker.VerifySignature(ctx, regflow.SignatureCheck{Env: envName, In: in, Repository: repo, Digest: digest})
			if err != nil {
				return b.explain(err)
			}
			err = g.emit(cmd, signatureCheck{Env: envName, In: in, Repository: repo, Digest: digest, Status: st}, func(w io.Writer) error {
				verdict := "would accept"
				if !st.Verified {
					verdict = "would refuse"
				}
				fmt.Fprintf(w, "%s %s %s@%s (read in %s).\n", envName, verdict, repo, regflow.ShortDigest(digest), in)
				if st.Verified {
					fmt.Fprintf(w, "Signed by %s (%s signature %s).\n", st.Identity, st.Kind, regflow.ShortDigest(st.SignatureDigest))
				}
				fmt.Fprintln(w, st.Reason)
				return nil
			})
			if err != nil {
				return err
			}
			if !st.Verified {
				return errSignatureRefused
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "environment whose registry holds the digest (default: the previous environment)")
	return cmd
}
