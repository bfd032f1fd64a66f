package awsapp_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/sweep"
)

// TestSweepRegistriesAreConfiguredOnes: the sweep reaches a registry only by the
// (account, region) of a configured environment; the pipeline account in another
// region, or an account no environment has, is refused before any call.
func TestSweepRegistriesAreConfiguredOnes(t *testing.T) {
	c, err := config.Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	regs := awsapp.Adapters(c, aws.Config{Region: "us-east-1"}, awsapp.Options{SweeperRole: "regflow-sweeper"}, nil).Registries
	ctx := context.Background()
	for _, tg := range sweep.Targets(c) {
		if _, err := regs.Sweep(ctx, tg); err != nil {
			t.Errorf("configured %s: %v", tg, err)
		}
	}
	for _, tg := range []sweep.Target{
		{Name: "dev", Account: "123456789012", Region: "eu-west-1"},
		{Name: "x", Account: "999999999999", Region: "us-east-1"},
	} {
		if _, err := regs.Sweep(ctx, tg); err == nil || !strings.Contains(err.Error(), "no configured environment") {
			t.Errorf("unconfigured %s: %v", tg, err)
		}
	}
}

// TestInUseReadsAreConfiguredOnes: what runs is read only in a configured environment's
// account and region, for its registry's images.
func TestInUseReadsAreConfiguredOnes(t *testing.T) {
	c, err := config.Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	a := awsapp.Adapters(c, aws.Config{Region: "us-east-1"}, awsapp.Options{SweeperRole: "regflow-sweeper"}, nil)
	if a.InUse == nil {
		t.Fatal("AWS adapters read nothing of what runs")
	}
	ctx := context.Background()
	for _, tg := range sweep.Targets(c) {
		if _, err := a.InUse(ctx, tg); err != nil {
			t.Errorf("configured %s: %v", tg, err)
		}
	}
	if _, err := a.InUse(ctx, sweep.Target{Name: "x", Account: "999999999999", Region: "us-east-1"}); err == nil || !strings.Contains(err.Error(), "no configured environment") {
		t.Errorf("unconfigured: %v", err)
	}
}
