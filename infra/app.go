package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/regflow/regflow/shared/config"
)

// Context keys the app reads (cdk.json, `cdk -c key=value`, or AppProps.Context).
const (
	// ContextConfig is the path of the regflow config file.
	ContextConfig = "config"
	// ContextAssets is the directory holding <function>/bootstrap from `make build`.
	ContextAssets = "assets"
	// ContextAlarmTopic optionally names an SNS topic ARN every alarm notifies.
	ContextAlarmTopic = "alarmTopicArn"

	defaultConfig = "regflow.yaml"
	defaultAssets = "bin"
)

// Stacks are the stacks Build added to the app.
type Stacks struct {
	Pipeline awscdk.Stack
	// Targets by environment name: one per environment outside the pipeline's account and region.
	Targets map[string]awscdk.Stack

	targetsInOrder []string
}

// All returns every stack, the pipeline first.
func (s *Stacks) All() []awscdk.Stack {
	out := []awscdk.Stack{s.Pipeline}
	for _, t := range s.targetsInOrder {
		out = append(out, s.Targets[t])
	}
	return out
}

// Build reads the config named by the app's context, validates it and adds regflow's
// stacks to app, with the cdk-nag AwsSolutions checks applied to all of them.
func Build(app awscdk.App) (*Stacks, error) {
	cfgPath := contextString(app, ContextConfig, defaultConfig)
	assets := contextString(app, ContextAssets, defaultAssets)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("regflow config (context %q): %w", ContextConfig, err)
	}
	p, err := newPlan(cfg)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", cfgPath, err)
	}
	if err := checkAssets(assets); err != nil {
		return nil, err
	}

	pipeline, err := newPipelineStack(app, p, pipelineOptions{
		assets:     assets,
		alarmTopic: contextString(app, ContextAlarmTopic, ""),
	})
	if err != nil {
		return nil, err
	}
	stacks := &Stacks{Pipeline: pipeline, Targets: map[string]awscdk.Stack{}}
	for _, name := range p.targets {
		t, err := newTargetStack(app, p, name)
		if err != nil {
			return nil, err
		}
		t.AddStackDependency(pipeline, jsii.String("the target account trusts the pipeline's function roles by ARN, so they must exist first"))
		stacks.Targets[name] = t
		stacks.targetsInOrder = append(stacks.targetsInOrder, name)
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return stacks, nil
}

// checkAssets makes sure `make build` produced every function's bootstrap.
func checkAssets(dir string) error {
	var missing []error
	for _, fn := range functionNames() {
		p := filepath.Join(dir, fn, "bootstrap")
		st, err := os.Stat(p)
		switch {
		case err != nil:
			missing = append(missing, fmt.Errorf("%s: %w", p, err))
		case st.IsDir():
			missing = append(missing, fmt.Errorf("%s is a directory, not the function binary", p))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("function binaries missing under %q (context %q): run `make build` first; it builds bin/<name>/bootstrap for each functions/<name>, and regflow deploys %s: %w",
			dir, ContextAssets, strings.Join(functionNames(), ", "), errors.Join(missing...))
	}
	return nil
}

func contextString(app awscdk.App, key, def string) string {
	v := app.Node().TryGetContext(jsii.String(key))
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return def
}
