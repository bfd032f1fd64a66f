// Command wanproxy puts a registry behind a fixed (and optionally jittered) delay per request,
// the round trip of a cross-region copy, and counts requests by kind for bench/copy.sh.
// GET /_wanproxy/counts answers the counts as JSON (?reset=1 zeroes them after reading).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/regflow/regflow/shared/local/ocitest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	backend := flag.String("backend", "", "registry host:port behind the proxy")
	latency := flag.Duration("latency", 25*time.Millisecond, "delay added to every request")
	jitter := flag.Duration("jitter", 0, "random extra delay per request, in [0, jitter)")
	flag.Parse()
	if *backend == "" {
		fmt.Fprintln(os.Stderr, "wanproxy: -backend is required")
		os.Exit(2)
	}
	p := ocitest.NewFaultHandler(*backend, ocitest.Faults{Latency: *latency, Jitter: *jitter})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_wanproxy/counts", func(w http.ResponseWriter, r *http.Request) {
		counts := p.RoundTrips()
		if r.URL.Query().Get("reset") == "1" {
			p.ResetRoundTrips()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(counts)
	})
	mux.Handle("/", p)
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "wanproxy:", err)
		os.Exit(1)
	}
}
