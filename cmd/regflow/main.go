// Command regflow is the operator CLI: status, approvals and history; verify, rollback,
// copy, sweep and invoke, against AWS or the local stack; and the local stack and demo.
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
