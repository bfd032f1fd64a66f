// Command sweep benchmarks the retention sweep against a local ECR (make bench-sweep).
//
// The parent process runs the local ECR (seeded with Seed, latency injected on every
// API call), writes release pointers into an embedded store, then starts the sweep
// in a child process ("worker" mode) so the worker's peak RSS is its own, read from
// /proc/self/status (VmHWM). It reports wall time, peak RSS and the API calls made
// against the minimum: ceil(images/1000) DescribeImages pages per repository plus
// ceil(deletions/100) BatchDeleteImage calls.
//
//	go run ./bench/sweep                          # 100,000 images, 1,000 repositories, 10 ms per call
//	go run ./bench/sweep -repos 100 -throttle 20  # throttled run on a smaller estate
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/promoter"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/sweep"
)

var now = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)

// result is what the worker reports to the parent.
type result struct {
	WallSeconds float64 `json:"wallSeconds"`
	PeakRSSKiB  int64   `json:"peakRssKiB"`
	// PeakGoMiB is the most memory the Go runtime held from the OS (sampled every 5 ms):
	// RSS without the embedded store's memory-mapped file, which a worker on DynamoDB lacks.
	PeakGoMiB    float64 `json:"peakGoMiB"`
	RssFileKiB   int64   `json:"rssFileKiB"`
	Repositories int     `json:"repositories"`
	Images       int     `json:"images"`
	Selected     int     `json:"selected"`
	Removed      int     `json:"removed"`
	Refused      int     `json:"refused"`
	Failed       int     `json:"failed"`
	// MinCalls is the minimum per repository: ceil(images/1000) + ceil(deletions/100).
	MinCalls int `json:"minCalls"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := worker(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := parent(); err != nil {
		log.Fatal(err)
	}
}

func parent() error {
	repos := flag.Int("repos", 1000, "repositories")
	perRepo := flag.Int("images", 100, "images per repository")
	latency := flag.Duration("latency", 10*time.Millisecond, "latency injected on every ECR API call")
	throttle := flag.Int("throttle", 0, "throttle each ECR operation above this many requests a second (0: off)")
	indexEvery := flag.Int("index-every", 20, "one repository in N also holds a multi-platform index with 2 children and a signature")
	concurrency := flag.Int("concurrency", sweep.DefaultConcurrency, "repositories swept at once")
	flag.Parse()

	srv, err := localecr.New(localecr.Options{Clock: localecr.FixedClock(now), AuthDisabled: true})
	if err != nil {
		return err
	}
	if err := srv.Start(context.Background()); err != nil {
		return err
	}
	defer srv.Close()

	dir, err := os.MkdirTemp("", "bench-sweep-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := embedded.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		return err
	}
	start := time.Now()
	images := 0
	for r := range *repos {
		name := fmt.Sprintf("team%02d/app%04d", r%50, r)
		var seeds []localecr.SeedImage
		// Per repository: 60% expired untagged builds, 10% expired tagged releases (one of
		// them the current release), 30% young tagged images.
		for i := range *perRepo {
			s := localecr.SeedImage{Manifest: sweeptest.Plain(fmt.Sprintf("%s/%d", name, i)), SizeBytes: 50 << 20}
			switch {
			case i < *perRepo*6/10:
				s.PushedAt = now.Add(-time.Duration(100+i) * 24 * time.Hour)
			case i < *perRepo*7/10:
				s.PushedAt = now.Add(-time.Duration(100+i) * 24 * time.Hour)
				s.Tags = []string{fmt.Sprintf("%040x", r*100000+i)}
			default:
				s.PushedAt = now.Add(-time.Duration(i%30) * 24 * time.Hour)
				s.Tags = []string{fmt.Sprintf("%040x", r*100000+i)}
			}
			seeds = append(seeds, s)
		}
		if *indexEvery > 0 && r%*indexEvery == 0 {
			c1, c2 := sweeptest.OCI(name+"/c1"), sweeptest.OCI(name+"/c2")
			old := now.Add(-200 * 24 * time.Hour)
			seeds = append(seeds[:len(seeds)-4],
				localecr.SeedImage{Manifest: c1, PushedAt: old}, localecr.SeedImage{Manifest: c2, PushedAt: old},
				localecr.SeedImage{Manifest: sweeptest.Index(c1, c2), PushedAt: old, Tags: []string{"multi"}},
				localecr.SeedImage{Manifest: sweeptest.Referrer(name+"/sig", c1), PushedAt: old})
		}
		digests, err := srv.Seed(name, seeds...)
		if err != nil {
			return err
		}
		images += len(digests)
		cur := *perRepo*6/10 + 1 // an expired tagged image that prod runs
		rel := regflow.Release{Env: "prod", Repository: name}.MoveTo(digests[cur], "", "bench", now, 3)
		if err := st.PutRelease(context.Background(), rel); err != nil {
			return err
		}
	}
	st.Close()
	fmt.Printf("seeded %d images in %d repositories in %s\n", images, *repos, time.Since(start).Round(time.Millisecond))

	srv.SetFault(localecr.AllOps, localecr.Fault{Latency: *latency, ThrottleAbove: *throttle})
	srv.ResetRequests()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "worker", "-endpoint", srv.URL(), "-store", filepath.Join(dir, "store.db"), "-concurrency", strconv.Itoa(*concurrency))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	var res result
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("worker said %q: %w", out, err)
	}
	calls := srv.RequestCounts()
	made := calls["DescribeImages"] + calls["BatchDeleteImage"]
	all := 0
	for _, n := range calls {
		all += n
	}
	fmt.Printf("estate: %d repositories, %d images; latency %s per call; throttle %d/s per operation; concurrency %d\n",
		res.Repositories, res.Images, *latency, *throttle, *concurrency)
	fmt.Printf("wall time (worker): %.2f s\n", res.WallSeconds)
	fmt.Printf("peak RSS (worker, VmHWM): %.1f MiB, of which file-backed at the end (the embedded store's mmap): %.1f MiB\n", float64(res.PeakRSSKiB)/1024, float64(res.RssFileKiB)/1024)
	fmt.Printf("peak Go runtime memory (worker, sampled): %.1f MiB\n", res.PeakGoMiB)
	fmt.Printf("selected %d, removed %d, refused %d, repositories failed %d\n", res.Selected, res.Removed, res.Refused, res.Failed)
	fmt.Printf("API requests by operation (throttled ones included): %v\n", calls)
	fmt.Printf("DescribeImages + BatchDeleteImage: %d requests vs minimum %d = %.3fx\n", made, res.MinCalls, float64(made)/float64(res.MinCalls))
	fmt.Printf("all ECR requests: %d vs minimum %d = %.3fx (DescribeRepositories pages and BatchGetImage for OCI indexes, children and signatures add to the minimum)\n",
		all, res.MinCalls, float64(all)/float64(res.MinCalls))
	if res.Refused > 0 || res.Failed > 0 || res.Removed != res.Selected {
		return fmt.Errorf("failed deletions: %d refused, %d repositories failed, %d of %d removed", res.Refused, res.Failed, res.Removed, res.Selected)
	}
	return nil
}

func worker(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ExitOnError)
	endpoint := fs.String("endpoint", "", "local ECR URL")
	storePath := fs.String("store", "", "embedded store file")
	concurrency := fs.Int("concurrency", sweep.DefaultConcurrency, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv := endpointClient(*endpoint)
	st, err := embedded.Open(*storePath)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	stop := make(chan struct{})
	peakGo := make(chan float64)
	go samplePeak(stop, peakGo)
	start := time.Now()
	// The sweep as regflow builds it (shared/app), over one registry.
	cfg := &config.Config{
		PromotionPath: []string{"bench"},
		Environments:  map[string]config.Environment{"bench": {Account: "111111111111", Region: "us-east-1"}},
		Retention:     config.Retention{MaxAge: config.Duration(90 * 24 * time.Hour), UntaggedMaxAge: config.Duration(14 * 24 * time.Hour), KeepReleases: 3},
	}
	a, err := app.New(app.Adapters{
		Config: cfg, Store: st, Registries: benchRegistry{srv}, Publisher: discard{},
		Slack: slackbot.New(slackbot.Options{}), SigningSecret: func(context.Context) ([]byte, error) { return nil, nil },
	})
	if err != nil {
		return err
	}
	rep, err := a.Sweep(ctx, app.SweepOptions{Run: sweep.Run{ID: "bench", Now: now}, Concurrency: *concurrency})
	if err != nil {
		return err
	}
	res := result{WallSeconds: time.Since(start).Seconds(), PeakRSSKiB: status("VmHWM:"), RssFileKiB: status("RssFile:")}
	close(stop)
	res.PeakGoMiB = <-peakGo
	sel, out := rep.Totals()
	res.Repositories, res.Images, res.Selected, res.Removed, res.Refused, res.Failed = sel.Repositories, sel.Images, sel.Deleted, out.Removed, out.Refused, len(sel.Failed)
	// The minimum per repository, from the decisions.
	perRepo := map[string][2]int{}
	for _, rr := range rep.Registries {
		for _, d := range rr.Report.Decisions {
			c := perRepo[d.Repository]
			c[0]++
			if d.Action == "delete" {
				c[1]++
			}
			perRepo[d.Repository] = c
		}
	}
	for _, c := range perRepo {
		res.MinCalls += (c[0]+999)/1000 + (c[1]+99)/100
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// benchRegistry is the one registry the benchmark sweeps.
type benchRegistry struct{ r sweep.Registry }

func (b benchRegistry) Registry(string, string) (*ecr.Client, error) {
	return nil, errors.New("the sweep benchmark reaches its registry only to sweep")
}

func (b benchRegistry) Promotion(context.Context, string, string) (promoter.Endpoint, error) {
	return promoter.Endpoint{}, errors.New("the sweep benchmark promotes nothing")
}

func (b benchRegistry) Sweep(context.Context, sweep.Target) (sweep.Registry, error) { return b.r, nil }

// discard drops the run's events.
type discard struct{}

func (discard) Publish(context.Context, event.Message) error { return nil }

func endpointClient(url string) sweep.Registry {
	return ecr.SweepRegistry(ecr.New(sweeptest.ClientFor(url, "us-east-1"), ""))
}

// samplePeak tracks the Go runtime's memory mapped from the OS and not returned.
func samplePeak(stop <-chan struct{}, out chan<- float64) {
	ms := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	peak := 0.0
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(ms)
		peak = max(peak, float64(ms[0].Value.Uint64()-ms[1].Value.Uint64())/(1<<20))
		select {
		case <-stop:
			out <- peak
			return
		case <-t.C:
		}
	}
}

// status reads a kB figure from /proc/self/status.
func status(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}
