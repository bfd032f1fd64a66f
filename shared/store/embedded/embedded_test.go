package embedded_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/regflow/regflow/shared/store"
	"github.com/regflow/regflow/shared/store/embedded"
	"github.com/regflow/regflow/shared/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := embedded.Open(filepath.Join(t.TempDir(), "regflow.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
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
