// Command regflow is the operator CLI: it runs the local stack and the demo, and
// (as later commands land) reads status, approvals and history, verifies,
// rolls back, copies and sweeps, against AWS or the local stack.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "regflow:", err)
		os.Exit(1)
	}
}
