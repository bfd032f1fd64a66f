// Package testenv starts the real counterparts that adapter tests run against:
// DynamoDB Local (AWS's own emulator) and moto_server. Each starts once per test
// binary on a free loopback port and stops when the binary's TestMain returns.
//
// Outside CI a missing emulator skips the test with a message saying how to
// install it; with CI=true it fails, so CI never goes green by skipping.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Main runs the tests and stops every service they started.
func Main(m *testing.M) {
	code := m.Run()
	services.stopAll()
	os.Exit(code)
}

// InCI reports whether the tests run in CI, where nothing may be skipped for a missing tool.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips the test, or fails it in CI, because a real counterpart is missing.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI=true and a required test service is missing: %s", msg)
	}
	t.Skipf("skipping: %s", msg)
}

// RepoRoot returns the module root (the directory holding go.mod).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// RealTestdata returns ../shared/testdata/real next to the repository, where the team keeps
// published payloads, or skips (fails in CI) when a clone has no such folder.
func RealTestdata(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "..", "shared", "testdata", "real")
	if _, err := os.Stat(dir); err != nil {
		Unavailable(t, "the published payloads folder %s is absent (it sits beside the repository on the team's machines)", dir)
	}
	return dir
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// service is one started emulator process.
type service struct {
	once     sync.Once
	endpoint string
	cmd      *exec.Cmd
	exited   <-chan error // receives cmd.Wait's result; Wait must be called once only
	err      error
}

type registry struct {
	mu  sync.Mutex
	all map[string]*service
}

// services holds the processes this test binary started, so Main can stop them.
var services = &registry{all: map[string]*service{}}

func (r *registry) get(name string) *service {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.all[name]
	if !ok {
		s = &service{}
		r.all[name] = s
	}
	return s
}

func (r *registry) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.all {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	}
}

// start launches cmd in its own process group, killed with the test binary, and waits until
// ready returns nil. The returned channel yields the process's exit.
func start(name string, cmd *exec.Cmd, ready func(context.Context) error, timeout time.Duration) (*exec.Cmd, <-chan error, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logf, err := os.CreateTemp("", "regflow-"+name+"-*.log")
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if err := ready(ctx); err == nil {
			return cmd, exited, nil
		}
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logf.Name())
			return nil, nil, fmt.Errorf("%s exited before it was ready (%v): %s", name, err, tail(out, 2000))
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			out, _ := os.ReadFile(logf.Name())
			return nil, nil, fmt.Errorf("%s not ready after %s: %s", name, timeout, tail(out, 2000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func httpReady(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
}
