package embedded_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/local/storetest"
	"github.com/regflow/regflow/shared/store"
)

func TestContract(t *testing.T) {
	newStore := func(t *testing.T) store.Store {
		s, err := embedded.Open(filepath.Join(t.TempDir(), "regflow.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	storetest.Run(t, newStore)
	storetest.RunSweep(t, newStore)
	storetest.RunRollbacks(t, newStore)
}

func TestSecondOpenerIsToldWhy(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the file lock timeout")
	}
	p := filepath.Join(t.TempDir(), "regflow.db")
	s, err := embedded.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = embedded.Open(p)
	if err == nil || !strings.Contains(err.Error(), "another regflow process holds it") {
		t.Fatalf("second open = %v", err)
	}
}

func TestSharedModeLetsProcessesTakeTurns(t *testing.T) {
	p := filepath.Join(t.TempDir(), "regflow.db")
	a, err := embedded.OpenShared(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := embedded.OpenShared(p)
	if err != nil {
		t.Fatalf("a second shared opener must not wait for the first: %v", err)
	}
	ctx := context.Background()
	if ok, err := a.Claim(ctx, "k", time.Unix(0, 0), time.Unix(100, 0)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, err := b.Claim(ctx, "k", time.Unix(1, 0), time.Unix(100, 0)); err != nil || ok {
		t.Fatalf("the other handle must see the claim: %v %v", ok, err)
	}
}

func TestSharedContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := embedded.OpenShared(filepath.Join(t.TempDir(), "regflow.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
