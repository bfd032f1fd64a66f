// Command sweep benchmarks the retention sweep against a local ECR (make bench-sweep).
//
// The parent process runs the local ECR (seeded with Seed, latency injected on every
// API call), writes release pointers into an embedded store, then starts the sweep
// in a child process ("worker" mode) so the worker's peak RSS is its own, read from
// /proc/self/status (VmHWM). It reports wall time, peak RSS and the API calls made
// against the minimum: ceil(images/1000) DescribeImages pages per repository plus
// one BatchDeleteImage call per delete batch.
//
// What runs comes from a local ECS and Lambda (shared/local/localruntime) seeded with
// services and functions that run expired images no pointer names: the sweep reads them
// once (awsruntime.InUse, as the sweeper role does in AWS), keeps those images, and the
// report adds the in-use reads to the calls, against their own minimum (one page per
// listing, DescribeServices per 10, DescribeTasks per 100, each task definition and
// function version once).
//
// With -compare, the throttled estate is swept once per retry strategy, each on a
// freshly seeded copy, and once unthrottled: that run's requests are the minimum
// the others are measured against, side by side.
//
//	go run ./bench/sweep                          # 100,000 images, 1,000 repositories, 10 ms per call
//	go run ./bench/sweep -repos 100 -throttle 20 -compare sdk-adaptive,paced -max-ratio 1.05
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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/awsruntime"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localruntime"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/promoter"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/retention"
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
	// MinCalls is the minimum per repository: ceil(images/1000) + its delete batches.
	MinCalls int `json:"minCalls"`
	// InUseKept are the images kept because they run.
	InUseKept int `json:"inUseKept"`
	Drift     int `json:"drift"`
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

// estate is what the parent seeds: the same for every run of one invocation.
type estate struct {
	repos, perRepo, indexEvery int
	latency                    time.Duration
	concurrency                int
	// services run one expired image each in every repository in serviceEvery, tasks each;
	// functions run one each in every repository in functionEvery.
	serviceEvery, functionEvery, tasks int
}

// runStats is one sweep of a freshly seeded estate, as the registry counted it.
type runStats struct {
	name  string
	res   result
	calls map[string]int
	all   int
	// inUse are the in-use reads by operation, and their minimum.
	inUse            map[string]int
	inUseAll, minUse int
	running          int // images seeded as running
}

func parent() error {
	repos := flag.Int("repos", 1000, "repositories")
	perRepo := flag.Int("images", 100, "images per repository")
	latency := flag.Duration("latency", 10*time.Millisecond, "latency injected on every ECR API call")
	throttle := flag.Int("throttle", 0, "throttle each ECR operation above this many requests a second (0: off)")
	indexEvery := flag.Int("index-every", 20, "one repository in N also holds a multi-platform index with 2 children and a signature")
	concurrency := flag.Int("concurrency", sweep.DefaultConcurrency, "repositories swept at once")
	serviceEvery := flag.Int("service-every", 10, "one repository in N has an expired image an ECS service runs (0: none)")
	functionEvery := flag.Int("function-every", 50, "one repository in N has an expired image a Lambda alias runs (0: none)")
	tasks := flag.Int("tasks", 2, "running tasks per ECS service")
	compare := flag.String("compare", "", "with -throttle: also sweep the same estate with these retryers (comma-separated: "+strings.Join(retryerNames, ", ")+") and print them side by side with an unthrottled run, whose requests are the minimum")
	limit := flag.Float64("max-ratio", 0, "with -compare: fail if regflow's retryer (paced) makes more than this many times the unthrottled run's requests")
	flag.Parse()
	e := estate{repos: *repos, perRepo: *perRepo, indexEvery: *indexEvery, latency: *latency, concurrency: *concurrency,
		serviceEvery: *serviceEvery, functionEvery: *functionEvery, tasks: *tasks}

	if *compare == "" || *throttle == 0 {
		st, err := e.run("paced", *throttle)
		if err != nil {
			return err
		}
		st.print(e, *throttle)
		return st.check()
	}
	names := strings.Split(*compare, ",")
	runs := make([]runStats, 0, len(names)+1)
	base, err := e.run("paced", 0)
	if err != nil {
		return err
	}
	base.name = "unthrottled"
	runs = append(runs, base)
	for _, n := range names {
		st, err := e.run(n, *throttle)
		if err != nil {
			return err
		}
		st.print(e, *throttle)
		runs = append(runs, st)
	}
	fmt.Printf("\nside by side: %d repositories, %d images, %s per call, throttle %d/s per operation, concurrency %d\n",
		base.res.Repositories, base.res.Images, e.latency, *throttle, e.concurrency)
	fmt.Printf("minimum = the unthrottled run's ECR requests (%d: %s); extra = throttled attempts and other retries\n", base.all, opsLine(base.calls))
	fmt.Printf("%-13s %9s %7s %9s %9s %8s %s\n", "retryer", "requests", "extra", "vs min", "wall (s)", "failures", "by operation")
	var failed []string
	for _, r := range runs {
		fails := r.res.Refused + r.res.Failed + (r.res.Selected - r.res.Removed)
		ratio := float64(r.all) / float64(base.all)
		fmt.Printf("%-13s %9d %7d %8.3fx %9.2f %8d %s\n", r.name, r.all, r.all-base.all, ratio, r.res.WallSeconds, fails, opsLine(r.calls))
		if fails > 0 {
			failed = append(failed, fmt.Sprintf("%s: %d failed deletions", r.name, fails))
		}
		if r.name == "paced" && *limit > 0 && ratio > *limit {
			failed = append(failed, fmt.Sprintf("paced: %.3fx the minimum ECR requests, above %.2fx", ratio, *limit))
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

func opsLine(calls map[string]int) string {
	ops := make([]string, 0, len(calls))
	for op, n := range calls {
		ops = append(ops, fmt.Sprintf("%s %d", op, n))
	}
	slices.Sort(ops)
	return strings.Join(ops, ", ")
}

// run seeds a fresh local ECR and store, then sweeps them in a child process with retryer.
func (e estate) run(retryer string, throttle int) (runStats, error) {
	st := runStats{name: retryer}
	srv, err := localecr.New(localecr.Options{Clock: localecr.FixedClock(now), AuthDisabled: true})
	if err != nil {
		return st, err
	}
	if err := srv.Start(context.Background()); err != nil {
		return st, err
	}
	defer srv.Close()

	dir, err := os.MkdirTemp("", "bench-sweep-")
	if err != nil {
		return st, err
	}
	defer os.RemoveAll(dir)
	running, err := e.seed(srv, filepath.Join(dir, "store.db"))
	if err != nil {
		return st, err
	}
	rt, minUse, err := e.seedRuntime(running)
	if err != nil {
		return st, err
	}
	defer rt.Close()
	before := runtimeCounts(rt)
	st.minUse, st.running = minUse, len(running)

	srv.SetFault(localecr.AllOps, localecr.Fault{Latency: e.latency, ThrottleAbove: throttle})
	srv.ResetRequests()
	self, err := os.Executable()
	if err != nil {
		return st, err
	}
	cmd := exec.Command(self, "worker", "-endpoint", srv.URL(), "-store", filepath.Join(dir, "store.db"),
		"-concurrency", strconv.Itoa(e.concurrency), "-retryer", retryer, "-runtime", rt.URL())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return st, fmt.Errorf("worker: %w", err)
	}
	if err := json.Unmarshal(out, &st.res); err != nil {
		return st, fmt.Errorf("worker said %q: %w", out, err)
	}
	st.calls = srv.RequestCounts()
	for _, n := range st.calls {
		st.all += n
	}
	st.inUse = map[string]int{}
	for op, n := range runtimeCounts(rt) {
		if d := n - before[op]; d > 0 {
			st.inUse[op] = d
			st.inUseAll += d
		}
	}
	return st, nil
}

// benchHost is the registry host the seeded services and functions pull from.
const benchHost = "111111111111.dkr.ecr.us-east-1.amazonaws.com"

// inUseOps are the calls awsruntime.InUse makes.
var inUseOps = []string{"ListClusters", "ListTasks", "DescribeTasks", "ListServices", "DescribeServices", "DescribeTaskDefinition", "ListFunctions", "ListAliases", "GetFunction"}

func runtimeCounts(rt *localruntime.Server) map[string]int {
	out := map[string]int{}
	for _, op := range inUseOps {
		out[op] = rt.Requests(op)
	}
	return out
}

// ran is an expired image seeded to run: in an ECS service, or behind a Lambda alias.
type ran struct {
	repo, digest string
	lambda       bool
}

// seedRuntime starts a local ECS and Lambda running what the seed says (services spread
// over clusters of at most 50), and returns the minimum calls to read it all.
func (e estate) seedRuntime(running []ran) (*localruntime.Server, int, error) {
	ctx := context.Background()
	rt, err := localruntime.New(localruntime.Options{Account: "111111111111", DeploymentDelay: time.Millisecond, UpdateDelay: time.Millisecond})
	if err != nil {
		return nil, 0, err
	}
	if err := rt.Start(ctx); err != nil {
		return nil, 0, err
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""), BaseEndpoint: aws.String(rt.URL())}
	ecsAPI, lambdaAPI := ecs.NewFromConfig(cfg), lambda.NewFromConfig(cfg)
	services, functions := 0, 0
	perCluster := map[string]int{}
	for _, r := range running {
		image := benchHost + "/" + r.repo + "@" + r.digest
		if r.lambda {
			fn := fmt.Sprintf("fn%04d", functions)
			functions++
			if _, err := lambdaAPI.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(fn), PackageType: lambdatypes.PackageTypeImage, Publish: true,
				Role: aws.String("arn:aws:iam::111111111111:role/" + fn), Code: &lambdatypes.FunctionCode{ImageUri: aws.String(image)}}); err != nil {
				rt.Close()
				return nil, 0, err
			}
			if _, err := lambdaAPI.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
				rt.Close()
				return nil, 0, err
			}
			continue
		}
		cluster := fmt.Sprintf("c%02d", services/50)
		name := fmt.Sprintf("svc%04d", services)
		services++
		perCluster[cluster]++
		if perCluster[cluster] == 1 {
			if _, err := ecsAPI.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
				rt.Close()
				return nil, 0, err
			}
		}
		td, err := ecsAPI.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(name), Memory: aws.String("512"),
			ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(image)}}})
		if err != nil {
			rt.Close()
			return nil, 0, err
		}
		if _, err := ecsAPI.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String(name),
			TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(int32(e.tasks))}); err != nil {
			rt.Close()
			return nil, 0, err
		}
	}
	for deadline := time.Now().Add(time.Minute); rt.InProgress() > 0; {
		if time.Now().After(deadline) {
			rt.Close()
			return nil, 0, errors.New("the seeded ECS services did not start within a minute")
		}
		rt.Tick()
		time.Sleep(5 * time.Millisecond)
	}
	pages := func(n, per int) int { return max(1, (n+per-1)/per) }
	minimum := pages(len(perCluster), 100) + pages(functions, 50) + 2*functions // ListAliases, GetFunction of the alias's version ($LATEST is the same image: one more call)
	minimum += functions                                                        // GetFunction of $LATEST
	for _, n := range perCluster {
		minimum += pages(n*e.tasks, 100) + (n*e.tasks+99)/100 + pages(n, 100) + (n+9)/10 + n
	}
	fmt.Printf("seeded %d ECS services (%d tasks each) in %d clusters and %d Lambda functions running expired images\n", services, e.tasks, len(perCluster), functions)
	return rt, minimum, nil
}

func (e estate) seed(srv *localecr.Server, storePath string) ([]ran, error) {
	st, err := embedded.Open(storePath)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	start := time.Now()
	images := 0
	var running []ran
	for r := range e.repos {
		name := fmt.Sprintf("team%02d/app%04d", r%50, r)
		var seeds []localecr.SeedImage
		// Per repository: 60% expired untagged builds, 10% expired tagged releases (one of
		// them the current release), 30% young tagged images.
		for i := range e.perRepo {
			s := localecr.SeedImage{Manifest: sweeptest.Plain(fmt.Sprintf("%s/%d", name, i)), SizeBytes: 50 << 20}
			switch {
			case i < e.perRepo*6/10:
				s.PushedAt = now.Add(-time.Duration(100+i) * 24 * time.Hour)
			case i < e.perRepo*7/10:
				s.PushedAt = now.Add(-time.Duration(100+i) * 24 * time.Hour)
				s.Tags = []string{fmt.Sprintf("%040x", r*100000+i)}
			default:
				s.PushedAt = now.Add(-time.Duration(i%30) * 24 * time.Hour)
				s.Tags = []string{fmt.Sprintf("%040x", r*100000+i)}
			}
			seeds = append(seeds, s)
		}
		if e.indexEvery > 0 && r%e.indexEvery == 0 {
			c1, c2 := sweeptest.OCI(name+"/c1"), sweeptest.OCI(name+"/c2")
			old := now.Add(-200 * 24 * time.Hour)
			seeds = append(seeds[:len(seeds)-4],
				localecr.SeedImage{Manifest: c1, PushedAt: old}, localecr.SeedImage{Manifest: c2, PushedAt: old},
				localecr.SeedImage{Manifest: sweeptest.Index(c1, c2), PushedAt: old, Tags: []string{"multi"}},
				localecr.SeedImage{Manifest: sweeptest.Referrer(name+"/sig", c1), PushedAt: old})
		}
		digests, err := srv.Seed(name, seeds...)
		if err != nil {
			return nil, err
		}
		images += len(digests)
		cur := e.perRepo*6/10 + 1 // an expired tagged image that prod runs
		rel := regflow.Release{Env: "prod", Repository: name}.MoveTo(digests[cur], "", "bench", now, 3)
		if err := st.PutRelease(context.Background(), rel); err != nil {
			return nil, err
		}
		// Expired images no pointer names that run: tagged (cur+1) in a service, untagged (0) behind an alias.
		if e.serviceEvery > 0 && r%e.serviceEvery == 0 {
			running = append(running, ran{repo: name, digest: digests[cur+1]})
		}
		if e.functionEvery > 0 && r%e.functionEvery == 1 {
			running = append(running, ran{repo: name, digest: digests[0], lambda: true})
		}
	}
	fmt.Printf("seeded %d images in %d repositories in %s\n", images, e.repos, time.Since(start).Round(time.Millisecond))
	return running, nil
}

func (st runStats) print(e estate, throttle int) {
	res, calls := st.res, st.calls
	made := calls["DescribeImages"] + calls["BatchDeleteImage"]
	fmt.Printf("retryer %s; estate: %d repositories, %d images; latency %s per call; throttle %d/s per operation; concurrency %d\n",
		st.name, res.Repositories, res.Images, e.latency, throttle, e.concurrency)
	fmt.Printf("wall time (worker): %.2f s\n", res.WallSeconds)
	fmt.Printf("peak RSS (worker, VmHWM): %.1f MiB, of which file-backed at the end (the embedded store's mmap): %.1f MiB\n", float64(res.PeakRSSKiB)/1024, float64(res.RssFileKiB)/1024)
	fmt.Printf("peak Go runtime memory (worker, sampled): %.1f MiB\n", res.PeakGoMiB)
	fmt.Printf("selected %d, removed %d, refused %d, repositories failed %d\n", res.Selected, res.Removed, res.Refused, res.Failed)
	fmt.Printf("API requests by operation (throttled ones included): %v\n", calls)
	fmt.Printf("DescribeImages + BatchDeleteImage: %d requests vs minimum %d = %.3fx\n", made, res.MinCalls, float64(made)/float64(res.MinCalls))
	fmt.Printf("all ECR requests: %d vs minimum %d = %.3fx (DescribeRepositories pages and BatchGetImage for OCI indexes, children and signatures add to the minimum)\n",
		st.all, res.MinCalls, float64(st.all)/float64(res.MinCalls))
	fmt.Printf("in-use reads (ECS, Lambda): %d requests vs minimum %d = %.3fx: %s\n", st.inUseAll, st.minUse, float64(st.inUseAll)/float64(st.minUse), opsLine(st.inUse))
	fmt.Printf("all API calls (ECR and in-use reads): %d vs minimum %d = %.3fx\n", st.all+st.inUseAll, res.MinCalls+st.minUse, float64(st.all+st.inUseAll)/float64(res.MinCalls+st.minUse))
	fmt.Printf("kept because they run: %d of %d seeded running; drift (running, no pointer): %d\n", res.InUseKept, st.running, res.Drift)
}

func (st runStats) check() error {
	res := st.res
	if res.InUseKept != st.running {
		return fmt.Errorf("kept %d images because they run, want the %d seeded running", res.InUseKept, st.running)
	}
	if res.Refused > 0 || res.Failed > 0 || res.Removed != res.Selected {
		return fmt.Errorf("failed deletions: %d refused, %d repositories failed, %d of %d removed", res.Refused, res.Failed, res.Removed, res.Selected)
	}
	return nil
}

// retryerNames are the retry strategies the benchmark compares.
var retryerNames = []string{"paced", "sdk-adaptive"}

// retryerFor returns a strategy by name: regflow's (ecr.SweepRetryer, pacing each
// operation) or the SDK's adaptive mode as regflow used it before pacing.
func retryerFor(name string) (func() aws.Retryer, error) {
	switch name {
	case "paced":
		return ecr.SweepRetryer, nil
	case "sdk-adaptive":
		return func() aws.Retryer {
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
					so.MaxAttempts, so.MaxBackoff, so.RateLimiter = 12, 20*time.Second, ratelimit.None
				})
			})
		}, nil
	}
	return nil, fmt.Errorf("unknown retryer %q: choose one of %s", name, strings.Join(retryerNames, ", "))
}

func worker(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ExitOnError)
	endpoint := fs.String("endpoint", "", "local ECR URL")
	storePath := fs.String("store", "", "embedded store file")
	concurrency := fs.Int("concurrency", sweep.DefaultConcurrency, "")
	retryer := fs.String("retryer", "paced", "")
	runtimeURL := fs.String("runtime", "", "local ECS and Lambda URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := retryerFor(*retryer)
	if err != nil {
		return err
	}
	srv := endpointClient(*endpoint, r)
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
		InUse: func(context.Context, sweep.Target) (sweep.InUse, error) {
			c := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""), BaseEndpoint: aws.String(*runtimeURL)}
			return awsruntime.InUse{ECS: ecs.NewFromConfig(c), Lambda: lambda.NewFromConfig(c), Registry: benchHost}, nil
		},
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
	// The minimum per repository, from the decisions: listing pages, and one delete
	// call per batch (an index goes a batch before its children, so a repository with
	// one may need a call more than ceil(deletions/100)).
	perRepo := map[string][2]int{}
	for _, rr := range rep.Registries {
		res.Drift += len(rr.Drift)
		for _, d := range rr.Report.Decisions {
			if d.Code == retention.CodeInUse {
				res.InUseKept++
			}
			c := perRepo[d.Repository]
			c[0]++
			c[1] = max(c[1], d.Batch)
			perRepo[d.Repository] = c
		}
	}
	for _, c := range perRepo {
		res.MinCalls += (c[0]+999)/1000 + c[1]
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

func endpointClient(url string, retryer func() aws.Retryer) sweep.Registry {
	return ecr.SweepRegistry(ecr.New(ecrsdk.NewFromConfig(aws.Config{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(url), Retryer: retryer,
	}), ""))
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
