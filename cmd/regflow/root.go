package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/config"
)

// globals are the flags every command shares.
type globals struct {
	configPath string
	local      bool
	json       bool
	stateDir   string
	verbose    bool
	// sweeperRole is `sweep --role`: the role the sweep assumes in environment accounts.
	sweeperRole string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "regflow",
		Short:         "Keep an ECR estate safe, clean and promotable: build once, promote the same digest",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", "regflow.yaml", "regflow config file")
	root.PersistentFlags().BoolVar(&g.local, "local", false, "work against the local stack (reads .regflow/local.json)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON for scripts instead of tables")
	root.PersistentFlags().StringVar(&g.stateDir, "state-dir", ".regflow", "where the local stack keeps its store and local.json")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log what regflow does")
	root.AddCommand(newLocalCmd(g), newDemoCmd(g), newCopyCmd(g), newStatusCmd(g), newHistoryCmd(g), newApprovalsCmd(g), newVerifyCmd(g), newVerifySignatureCmd(g), newRollbackCmd(g), newInvokeCmd(g), newSweepCmd(g), newUICmd(g))
	return root
}

func (g *globals) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(g.configPath)
	if err != nil {
		return nil, fmt.Errorf("%w\n(pass --config with the path of your regflow.yaml)", err)
	}
	return cfg, nil
}

func (g *globals) logger() *slog.Logger {
	if !g.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
