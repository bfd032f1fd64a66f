package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/testenv"
)

// TestLocalUndoesACranePushOfLatest runs `regflow local` and pushes with the crane binary,
// exactly as a user would.
func TestLocalUndoesACranePushOfLatest(t *testing.T) {
	crane, err := exec.LookPath("crane")
	if err != nil {
		if root, rerr := testenv.RepoRoot(); rerr == nil {
			if p := filepath.Join(root, ".tools", "bin", "crane"); fileExists(p) {
				crane, err = p, nil
			}
		}
	}
	if err != nil {
		testenv.Unavailable(t, "crane not found: run `make tools`")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := runCtx(ctx, "local", "--config", "../../regflow.yaml", "--state-dir", dir)
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("regflow local: %v", err)
		}
	}()
	var info localstack.Info
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "local.json"))
		if err == nil && json.Unmarshal(b, &info) == nil && info.Environments["dev"].Registry != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("regflow local wrote no local.json")
		}
		time.Sleep(20 * time.Millisecond)
	}
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	tar := filepath.Join(t.TempDir(), "image.tar")
	tag, _ := name.NewTag("shop/web:latest")
	if err := tarball.WriteToFile(tar, tag, img); err != nil {
		t.Fatal(err)
	}
	ref := info.Environments["dev"].Registry + "/shop/web:latest"
	if out, err := exec.Command(crane, "push", "--insecure", tar, ref).CombinedOutput(); err != nil {
		t.Fatalf("crane push: %v\n%s", err, out)
	}
	pushed := time.Now()
	for {
		out, err := exec.Command(crane, "digest", "--insecure", ref).CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			break // the tag is gone
		}
		if time.Since(pushed) > time.Second {
			t.Fatalf("latest still there a second after the push: %s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("tagguard removed %s %v after crane push returned", ref, time.Since(pushed).Round(time.Millisecond))
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
