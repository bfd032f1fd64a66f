package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/webui"
)

// defaultUIAddr is loopback: the view has no authentication of its own.
const defaultUIAddr = "127.0.0.1:8080"

func newUICmd(g *globals) *cobra.Command {
	var addr, role string
	cmd := &cobra.Command{
		Use:   "ui [--local] [--addr 127.0.0.1:8080]",
		Short: "Serve a read-only web view: what runs where, what waits for approval, what retention would delete",
		Long: `Serves a read-only web view of the estate from this machine, with your own AWS
credentials (or the local stack with --local). Pages: the estate (repositories ×
environments), each repository's promotion timeline and audit trail, the open
approval requests, and a retention dry run. It adds nothing to the AWS deployment.

It listens on loopback only. The view has no authentication: to listen elsewhere,
pass --addr with an explicit host, and regflow warns that anyone who reaches the
port can read the estate.`,
		Example: `  regflow ui --local
  regflow ui --addr 127.0.0.1:9000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loopback, err := checkUIAddr(addr, cmd.Flags().Changed("addr"))
			if err != nil {
				return err
			}
			g.sweeperRole = role
			b, ctx, err := g.open(cmd, "")
			if err != nil {
				return err
			}
			defer b.close()
			h, err := webui.New(webui.Options{Config: b.cfg, Store: b.store, Preview: webui.SweepPreview(b.app, time.Now), Targets: b.app.Deployer.Observe, Log: g.logger()})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (is another `regflow ui` running? pass --addr with a free port)", addr, err)
			}
			errOut := cmd.ErrOrStderr()
			if !loopback {
				fmt.Fprintf(errOut, "WARNING: listening on %s, not loopback. The web view has no authentication: anyone who can reach this port can read the estate.\n", ln.Addr())
			}
			where := "AWS (" + b.cfg.Pipeline.Region + ")"
			if b.local {
				where = "the local stack in " + g.stateDir
			}
			fmt.Fprintf(cmd.OutOrStdout(), "regflow web view (read-only) of %s at http://%s/\n", where, ln.Addr())
			if loopback {
				fmt.Fprintln(cmd.OutOrStdout(), "listening on loopback only; press Ctrl-C to stop")
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case err := <-done:
				return fmt.Errorf("web view stopped: %w", err)
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				if err := srv.Shutdown(sctx); err != nil {
					return fmt.Errorf("stop the web view: %w", err)
				}
				if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultUIAddr, "address to listen on; a non-loopback host must be given explicitly (no authentication)")
	cmd.Flags().StringVar(&role, "role", "", "role name the retention preview assumes in environment accounts other than the pipeline account (default $"+awsapp.EnvSweeperRole+")")
	return cmd
}

// checkUIAddr accepts a loopback address, or any host when given explicitly; it says
// whether the address is loopback. An address without a host would listen everywhere.
func checkUIAddr(addr string, explicit bool) (bool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("--addr %q: give host:port, e.g. %s: %w", addr, defaultUIAddr, err)
	}
	if port == "" {
		return false, fmt.Errorf("--addr %q has no port: give host:port, e.g. %s", addr, defaultUIAddr)
	}
	if host == "" {
		return false, fmt.Errorf("--addr %q has no host and would listen on every interface: the view has no authentication; give 127.0.0.1:%s, or name the host to expose it on", addr, port)
	}
	loopback := host == "localhost"
	if ip := net.ParseIP(host); ip != nil {
		loopback = ip.IsLoopback()
	}
	if !loopback && !explicit {
		return false, fmt.Errorf("refusing to listen on %s without --addr naming it", addr)
	}
	return loopback, nil
}
