package webui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPages renders each page over HTTP for an estate of 1,000 repositories × 3
// environments in the embedded store, read in shared mode as `regflow ui --local` reads
// it. The retention preview runs the composition root's dry-run sweep against three local
// ECRs holding 9 images per repository (27,000 in all): each figure includes listing every
// registry's repositories and sweeping the page's (at most 10) in each registry.
//
//	go test -run '^$' -bench BenchmarkPages -benchtime 20x ./shared/webui/
func BenchmarkPages(b *testing.B) {
	srv := newSite(b, 1000, true)
	pages := []struct{ name, path string }{
		{"estate", "/"},
		{"estate-filtered", "/?repo=team-00%2A/svc"},
		{"estate-last-page", "/?page=10"},
		{"repository", "/repositories/" + repoName(500)},
		{"approvals", "/approvals"},
		{"approvals-blocked", "/approvals?status=blocked"},
		{"retention-one-repo", "/retention?repo=" + repoName(10)},
		{"retention-10-repos", "/retention?repo=team-001%3F/svc"},
		{"retention-all-1000-repos", "/retention?repo=team-%2A"},
		{"retention-all-last-page", "/retention?repo=team-%2A&page=100"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			cpu0 := cpuTime(b)
			for b.Loop() {
				fetch(b, srv, p.path)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
			// The registries and the store run in this process: its CPU time is the page's
			// whole work, a figure that holds on a machine other jobs share.
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/page")
		})
	}
}

// cpuTime is the user and system time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fetch(b *testing.B, srv *httptest.Server, path string) {
	res, err := http.Get(srv.URL + path)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || n == 0 {
		b.Fatalf("%s: status %d, %d bytes, %v", path, res.StatusCode, n, err)
	}
}
