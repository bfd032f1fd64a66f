package main

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/slacklocal"
)

func newLocalCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "local",
		Short: "Run regflow locally: one local ECR per environment, handlers wired as in AWS, until interrupted",
		Long: `Starts a local ECR for every environment of the config (registry and ECR API on loopback),
the embedded store, a Slack stand-in and the regflow handlers, and writes .regflow/local.json.
Push with crane or docker to an environment's registry and watch regflow act, e.g.:

  crane push image.tar $(jq -r .environments.dev.registry .regflow/local.json)/app:latest`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			out := &syncWriter{w: cmd.OutOrStdout()}
			st, err := localstack.Start(cmd.Context(), localstack.Options{
				Config: cfg, Dir: g.stateDir, Log: g.logger(), SharedStore: true,
				OnSlack: func(m slacklocal.Message) { fmt.Fprintf(out, "\n[slack %s] %s\n", m.Channel, m.Text) },
				OnError: func(rule string, err error) { fmt.Fprintf(out, "\n[error] %s: %v\n", rule, err) },
			})
			if err != nil {
				return err
			}
			defer st.Close()
			info := st.Info()
			names := make([]string, 0, len(info.Environments))
			for n := range info.Environments {
				names = append(names, n)
			}
			sort.Slice(names, func(i, j int) bool { return index(cfg.PromotionPath, names[i]) < index(cfg.PromotionPath, names[j]) })
			fmt.Fprintln(out, "regflow local stack is running (Ctrl-C to stop)")
			for _, n := range names {
				e := info.Environments[n]
				fmt.Fprintf(out, "  %-8s account %s  region %s  registry %s  ECR API %s\n", n, e.Account, e.Region, e.Registry, e.ECREndpoint)
			}
			fmt.Fprintf(out, "  details in %s\n", filepath.Join(g.stateDir, "local.json"))
			<-cmd.Context().Done()
			fmt.Fprintln(out, "stopping")
			return nil
		},
	}
}

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return len(list)
}
