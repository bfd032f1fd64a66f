package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/app"
	"github.com/spf13/cobra"
)

// functions are the handlers `regflow invoke` runs, each as its Lambda function wires it.
var functions = app.Functions

func newInvokeCmd(g *globals) *cobra.Command {
	var eventFile string
	cmd := &cobra.Command{
		Use:   "invoke <function> --event FILE",
		Short: "Run one function's handler on an event file, like `sam local invoke`",
		Long: `Runs a regflow function's handler in this process, wired as its Lambda function is,
against AWS (default credential chain and the config) or the local stack (--local).
It acts for real: a tagguard event can remove a tag, a promoter event copies images.

Functions and their events:
  tagguard   an EventBridge "ECR Image Action" event          (events/tagguard/)
  scangate   an "ECR Image Scan", "Inspector2 Scan" or "Verification Result" event (events/scangate/)
  promoter   a regflow "Promotion Approved" event             (events/promoter/)
  approvals  an API Gateway HTTP API (payload 2.0) request carrying a Slack click;
             its Slack signature must be fresh (5 minutes), as in AWS.
  sweeper    a scheduled event, or {"dryRun": true}              (events/sweeper/)
  sweepworker an SQS event of sweep batches                       (events/sweeper/sqs-batch.json)
Use --event - to read the event from stdin.`,
		Example: `  regflow invoke tagguard --event events/tagguard/push-sha.json --local
  regflow invoke promoter --event events/promoter/promotion-approved.json`,
		Args:      cobra.MatchAll(cobra.ExactArgs(1), knownFunction),
		ValidArgs: functions,
		RunE: func(cmd *cobra.Command, args []string) error {
			fn := args[0]
			raw, err := readEvent(cmd, eventFile)
			if err != nil {
				return err
			}
			b, err := g.backend(cmd.Context())
			if err != nil {
				return err
			}
			defer b.close()
			where := "AWS"
			if b.local {
				where = "the local stack"
			}
			progress(cmd, "invoking %s with %s against %s…", fn, eventFile, where)
			start := time.Now()
			res, err := b.invoke(cmd.Context(), fn, raw)
			if err != nil {
				return b.explain(fmt.Errorf("%s failed: %w", fn, err))
			}
			progress(cmd, "%s finished in %s", fn, time.Since(start).Round(time.Millisecond))
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		},
	}
	cmd.Flags().StringVarP(&eventFile, "event", "e", "", "event JSON file (- for stdin)")
	_ = cmd.MarkFlagRequired("event")
	return cmd
}

// knownFunction is cobra.OnlyValidArgs with the choices in the message.
func knownFunction(_ *cobra.Command, args []string) error {
	if !slices.Contains(functions, args[0]) {
		return fmt.Errorf("unknown function %q: choose one of %s", args[0], strings.Join(functions, ", "))
	}
	return nil
}

func readEvent(cmd *cobra.Command, file string) (json.RawMessage, error) {
	var raw []byte
	var err error
	if file == "-" {
		raw, err = io.ReadAll(cmd.InOrStdin())
	} else {
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read event: %w", err)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("event %s is not JSON", file)
	}
	return raw, nil
}

// invoke runs fn's handler once, returning what the Lambda function would return.
func (b *backend) invoke(ctx context.Context, fn string, raw json.RawMessage) (any, error) {
	out, err := b.app.Invoke(ctx, fn, raw)
	// A click's Slack work follows its answer; let it finish before the process exits.
	b.app.FollowUpsDone()
	return out, err
}
