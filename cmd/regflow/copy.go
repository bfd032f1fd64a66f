package main

import (
	"encoding/json"
	"fmt"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/ocicopy"
	"github.com/regflow/regflow/shared/regflow"
)

func newCopyCmd(g *globals) *cobra.Command {
	var jobs int
	var noReferrers bool
	cmd := &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy an image by digest between registries: every platform, signatures and attestations, verified",
		Long: `Copies SRC (repo:tag, repo@sha256:…) to DST (a repository, repo:tag or repo@digest) with the
promoter's copy engine: the index and every platform manifest, every blob (skipping those the
target has), and the image's referrers (OCI 1.1 and cosign's sha256-<hex>.sig/.att/.sbom tags).
The tag is written last and the target digest is checked against the source.

Credentials: ECR hosts (<account>.dkr.ecr.<region>.amazonaws.com) get a token from
GetAuthorizationToken with your AWS credentials; other hosts use your docker config.
Loopback registries (the local stack) are reached over plain HTTP.`,
		Example: `  regflow copy 111111111111.dkr.ecr.us-east-1.amazonaws.com/shop/web:3f2c1e9… \
               222222222222.dkr.ecr.us-east-1.amazonaws.com/shop/web`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			awsCfg, err := awsconfig.LoadDefaultConfig(cmd.Context())
			if err != nil {
				return fmt.Errorf("load AWS configuration: %w", err)
			}
			keychain := authn.NewMultiKeychain(&ecr.Keychain{AWS: awsCfg}, authn.DefaultKeychain)
			opts := []ocicopy.Option{ocicopy.WithKeychain(keychain), ocicopy.WithJobs(jobs), ocicopy.WithLogger(g.logger())}
			if noReferrers {
				opts = append(opts, ocicopy.WithoutReferrers())
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "copying %s → %s …\n", args[0], args[1])
			res, err := ocicopy.Copy(cmd.Context(), args[0], args[1], opts...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.json {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(out, "%s\n  digest    %s (verified in the target)\n  manifests %d pushed, %d already there\n  blobs     %d copied, %d mounted, %d already there (%s moved)\n  referrers %d (%d copied)\n  took      %s\n",
				res.Target, res.Digest, res.ManifestsPushed, res.ManifestsSkipped, res.BlobsCopied, res.BlobsMounted, res.BlobsSkipped,
				regflow.Bytes(res.BytesMoved), res.Referrers, res.ReferrersCopied, res.Duration.Round(1e6))
			for _, w := range res.Warnings {
				fmt.Fprintln(out, "  warning:", w)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&jobs, "jobs", ocicopy.DefaultJobs, "blobs transferred at once")
	cmd.Flags().BoolVar(&noReferrers, "no-referrers", false, "copy only the image, not its signatures, attestations and SBOMs")
	return cmd
}
