package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCtx(context.Background(), args...)
}

func runCtx(ctx context.Context, args ...string) (string, error) {
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func TestDemo(t *testing.T) {
	out, err := run(t, "demo", "--config", "../../regflow.yaml")
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"tag guard removed shop/web:latest", "[slack #C0ALERTS] Tag policy violation", "recorded shop/web@sha256:",
		"PROMOTE SHOP/WEB TO STAGING?", "U0BOB clicks Approve → HTTP 200 approved", "staging serves shop/web:3f2c1e9a7b6d",
		"U0ALICE clicks Approve → HTTP 200 refused", "U0CAROL clicks Approve → HTTP 200 approved", "prod serves shop/web:3f2c1e9a7b6d",
		"no blob or manifest was written", "the sweep deleted exactly the", "prod's current image is still there",
		// What runs: the ECS services follow the pointers, and their outcomes come back.
		"staging's ECS service staging/web runs shop/web@", "SERVICE_DEPLOYMENT_COMPLETED → staging's release is deployed",
		"prod's ECS service prod/web runs shop/web@", "the rollback changed what prod's service runs",
		"SERVICE_DEPLOYMENT_FAILED: the circuit breaker rolled staging back; its pointer followed",
		"failed to deploy in staging and was rolled back", "prod's approval stays closed",
		// Signed-only prod: CI's signature shown in the approval, an unsigned build refused.
		"Signature: Signed by key SHA256:", "prod's gate refused shop/web@", "Signature not verified: no signature on",
		// In-use protection: an old image no pointer names survives because a service runs it.
		"yet the sweep kept it: kept: running in ECS service legacy/reports, 1 task",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestBadConfigNamesTheField(t *testing.T) {
	_, err := run(t, "demo", "--config", "/nonexistent/regflow.yaml")
	if err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("got %v", err)
	}
}
