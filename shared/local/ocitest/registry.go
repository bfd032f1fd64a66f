package ocitest

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is an in-process go-containerregistry registry (in-memory, referrers API on).
type Registry struct {
	// Host is "127.0.0.1:port"; name.Registry treats loopback as plain HTTP.
	Host   string
	Server *httptest.Server
}

// NewRegistry starts an in-process registry, closed when the test ends. wrap, if not nil,
// wraps the registry handler (to observe or alter requests).
func NewRegistry(tb testing.TB, wrap func(http.Handler) http.Handler) *Registry {
	return newRegistry(tb, wrap, true)
}

// NewRegistryWithoutReferrersAPI is NewRegistry without the OCI 1.1 referrers API, like
// Distribution 2.x: clients keep referrers in sha256-<hex> tag indexes instead.
func NewRegistryWithoutReferrersAPI(tb testing.TB, wrap func(http.Handler) http.Handler) *Registry {
	return newRegistry(tb, wrap, false)
}

func newRegistry(tb testing.TB, wrap func(http.Handler) http.Handler, referrersAPI bool) *Registry {
	tb.Helper()
	var h http.Handler = registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithReferrersSupport(referrersAPI),
	)
	if wrap != nil {
		h = wrap(h)
	}
	s := httptest.NewServer(h)
	tb.Cleanup(s.Close)
	return &Registry{Host: strings.TrimPrefix(s.URL, "http://"), Server: s}
}

// childEnv names the environment variable that turns a test binary into a registry server.
const childEnv = "REGFLOW_OCITEST_REGISTRY_DIR"

// ServeIfChild serves a registry and never returns when this process was started by
// RegistryProcess. Call it first thing in TestMain.
func ServeIfChild() {
	dir := os.Getenv(childEnv)
	if dir == "" {
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ocitest registry:", err)
		os.Exit(2)
	}
	// The parent reads the address from our first line of output.
	fmt.Println(ln.Addr().String())
	h := registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithReferrersSupport(true),
		registry.WithBlobHandler(registry.NewDiskBlobHandler(dir)),
	)
	err = http.Serve(ln, h)
	fmt.Fprintln(os.Stderr, "ocitest registry:", err)
	os.Exit(1)
}

// RegistryProcess starts a registry with disk-backed blobs in a child process (the current test
// binary, which must call ServeIfChild in TestMain), so that its memory is not this process's.
// It returns the registry host.
func RegistryProcess(tb testing.TB) string {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatalf("registry process: %v", err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+tb.TempDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("registry process: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("registry process: %v", err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		if a == "" {
			tb.Fatalf("registry process exited before listening")
		}
		return a
	case <-time.After(30 * time.Second):
		tb.Fatalf("registry process did not start within 30s")
		return ""
	}
}
