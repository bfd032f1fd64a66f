package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestCheckUIAddr(t *testing.T) {
	tests := []struct {
		addr     string
		explicit bool
		loopback bool
		err      string
	}{
		{"127.0.0.1:8080", false, true, ""},
		{"localhost:9000", true, true, ""},
		{"[::1]:8080", true, true, ""},
		{"0.0.0.0:8080", true, false, ""},
		{"10.1.2.3:8080", true, false, ""},
		{"10.1.2.3:8080", false, false, "without --addr"},
		{":8080", true, false, "no host"},
		{"127.0.0.1", true, false, "host:port"},
		{"127.0.0.1:", true, false, "no port"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			loopback, err := checkUIAddr(tc.addr, tc.explicit)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want an error with %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil || loopback != tc.loopback {
				t.Fatalf("got %v, %v; want loopback %v", loopback, err, tc.loopback)
			}
		})
	}
}

// TestUIOffLoopbackWarns runs `regflow ui` on an explicitly named non-loopback host
// against a local stack: it serves, and warns that nothing authenticates.
func TestUIOffLoopbackWarns(t *testing.T) {
	f := startStack(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newRootCmd()
	var out, errOut lockedBuffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"--local", "--state-dir", f.dir, "--config", "../../regflow.yaml", "ui", "--addr", "0.0.0.0:0"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "http://") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("regflow ui: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "WARNING") || !strings.Contains(errOut.String(), "no authentication") {
		t.Errorf("no warning off loopback; stderr:\n%s", errOut.String())
	}
	if strings.Contains(out.String(), "loopback only") {
		t.Errorf("claims loopback while listening on 0.0.0.0:\n%s", out.String())
	}
}

func TestUIRefusesAnAddressWithoutHost(t *testing.T) {
	_, err := run(t, "--local", "--config", "../../regflow.yaml", "ui", "--addr", ":8080")
	if err == nil || !strings.Contains(err.Error(), "no host") {
		t.Fatalf("want a refusal naming the missing host, got %v", err)
	}
}
