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
	for _, want := range []string{"tag guard removed shop/web:latest", "[slack #C0ALERTS] Tag policy violation", "recorded shop/web@sha256:"} {
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
