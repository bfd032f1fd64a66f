// Command infra is regflow's CDK app: a pipeline stack (functions, table, bus, Slack
// API) and one stack per environment account (event forwarding, promotion and sweeper
// roles), generated from the same validated config file the functions read.
//
// Run it through the CDK CLI (cdk.json at the repo root) or directly:
//
//	make build && go run ./infra     # writes cdk.out/
//	npx aws-cdk@2.1148.1 synth -c config=other.yaml
//
// Context keys: config (default regflow.yaml), assets (default bin), alarmTopicArn.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "regflow infra:", err)
		os.Exit(1)
	}
}

func run() error {
	defer jsii.Close()
	props := &awscdk.AppProps{}
	// The CDK CLI sets CDK_OUTDIR; run on its own, the app would write to a temp dir.
	if os.Getenv("CDK_OUTDIR") == "" {
		props.Outdir = jsii.String("cdk.out")
	}
	app := awscdk.NewApp(props)
	if _, err := Build(app); err != nil {
		return err
	}
	asm := app.Synth(nil)
	if errs := synthErrors(asm); len(errs) > 0 {
		return fmt.Errorf("%d error(s) in the synthesized stacks (cdk-nag findings must be fixed or suppressed with a reason):\n  %s",
			len(errs), strings.Join(errs, "\n  "))
	}
	fmt.Fprintf(os.Stderr, "regflow infra: synthesized %d stacks to %s\n", len(*asm.Stacks()), *asm.Directory())
	return nil
}
