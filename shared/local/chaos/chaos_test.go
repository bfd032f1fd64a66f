// Package chaos runs the whole flow on the local stack under injected faults and checks
// that every run ends true: what was approved runs everywhere it was approved for, each
// request was decided and promoted once, each sweep summarised once, nothing protected
// deleted, and every audit entry agrees with the registries.
package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localbus"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/ocicopy"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/slackmsg"
)

const repo = "shop/web"

// seeds are the runs: REGFLOW_CHAOS_SEEDS="1,2,3" or "1-40"; default five, which keeps
// `make test` well under its budget.
func seeds(t *testing.T) []uint64 {
	spec := os.Getenv("REGFLOW_CHAOS_SEEDS")
	if spec == "" {
		spec = "1-5"
	}
	var out []uint64
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(strings.TrimSpace(lo), 10, 64)
		if err != nil {
			t.Fatalf("REGFLOW_CHAOS_SEEDS=%q: %v", spec, err)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(strings.TrimSpace(hi), 10, 64); err != nil || b < a {
				t.Fatalf("REGFLOW_CHAOS_SEEDS=%q: bad range %q", spec, part)
			}
		}
		for s := a; s <= b; s++ {
			out = append(out, s)
		}
	}
	return out
}

func TestWholeFlowUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local stack several times")
	}
	start := time.Now()
	ss := seeds(t)
	for _, seed := range ss {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			run(t, seed)
			if t.Failed() {
				t.Logf("reproduce: REGFLOW_CHAOS_SEEDS=%d go test -count=1 -run TestWholeFlowUnderFaults ./shared/local/chaos", seed)
			}
		})
	}
	t.Logf("%d seeds in %s", len(ss), time.Since(start).Round(time.Millisecond))
}

// world is one run's stack and what the test saw on its bus.
type world struct {
	st  *localstack.Stack
	rnd *rand.Rand

	mu     sync.Mutex
	events []event.Envelope // regflow's events, each once (observers see no duplicates)
	errs   []string         // handler failures the bus retried or gave up on
}

func (w *world) seen(detailType string) []event.Envelope {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []event.Envelope
	for _, e := range w.events {
		if e.DetailType == detailType {
			out = append(out, e)
		}
	}
	return out
}

func run(t *testing.T, seed uint64) {
	ctx := context.Background()
	began := time.Now()
	phase := func(name string) { t.Logf("%-28s %6dms", name, time.Since(began).Milliseconds()) }
	cfg, err := config.Load(filepath.Join("..", "..", "..", "regflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{rnd: rand.New(rand.NewPCG(seed, 0xc4a05))}
	st, err := localstack.Start(ctx, localstack.Options{
		Config: cfg, Dir: t.TempDir(), FaultSeed: seed,
		// AWS's delivery: at least once, unordered, a failing function retried twice.
		Delivery: localbus.Delivery{Attempts: 3, Backoff: 5 * time.Millisecond, Duplicate: 0.3, MaxDelay: 5 * time.Millisecond, Seed: seed},
		OnError: func(rule string, err error) {
			w.mu.Lock()
			w.errs = append(w.errs, rule+": "+err.Error())
			w.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	w.st = st
	// Loopback registries: the copy's retries back off for milliseconds, not ECR's seconds.
	st.Promoter.CopyOptions = append(st.Promoter.CopyOptions, ocicopy.WithRetryBackoff(remote.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 6}))
	st.Bus.Subscribe(localbus.Rule{Name: "observer", Sources: []string{event.SourceRegflow}}, func(_ context.Context, raw []byte) error {
		e, err := event.Parse(raw)
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.events = append(w.events, e)
		w.mu.Unlock()
		return nil
	})

	// Before the faults: six builds 120 days old (the sweep's candidates) and three new ones.
	t0 := st.Clock.Now()
	st.Clock.SetNow(t0.Add(-120 * 24 * time.Hour))
	var old []string
	for i := range 6 {
		old = append(old, w.push(t, fmt.Sprintf("%040x", 0xa000+i), 512))
	}
	st.Clock.SetNow(t0)
	var fresh []string
	for i := range 3 {
		fresh = append(fresh, w.push(t, fmt.Sprintf("%040x", 0xb000+i), 32<<10))
	}
	w.settle(t)

	// The faults: 20% server errors everywhere, throttling of the hottest ECR calls, 20%
	// of blob downloads cut after 1 KiB.
	faults := func() {
		for _, srv := range st.ECR {
			srv.SetFault(localecr.AllOps, localecr.Fault{ErrorRate: 0.2})
			srv.SetFault(localecr.OpBlobGet, localecr.Fault{ErrorRate: 0.1, DropRate: 0.2, DropAfterBytes: 1024})
			srv.SetFault("DescribeImages", localecr.Fault{ErrorRate: 0.2, ThrottleAbove: 30})
			srv.SetFault("BatchGetImage", localecr.Fault{ErrorRate: 0.2, ThrottleAbove: 30})
		}
	}
	calm := func() {
		for _, srv := range st.ECR {
			srv.ClearFaults()
		}
	}
	phase("pushed")
	faults()

	// dev's scans open staging's requests; each is clicked three times at once.
	for _, d := range fresh {
		if err := st.ECR["dev"].InjectScan(repo, d); err != nil {
			t.Fatal(err)
		}
	}
	w.settle(t)
	for _, d := range fresh {
		r := w.request(t, "staging", d)
		if r.Status != regflow.StatusPending {
			t.Fatalf("staging's request for %s is %s (%s), want pending; handler failures: %v", d, r.Status, r.Reason, w.errs)
		}
		w.clicks(t, r.ID, "U0BOB", "U0BOB", "U0CAROL")
	}
	w.settle(t)
	phase("staging approved")
	// A promoter killed mid-copy (its context ends at a random moment), then redelivered.
	approved := w.seen(event.TypePromotionApproved)
	if len(approved) == 0 {
		t.Fatal("no Promotion Approved on the bus")
	}
	victim := approved[w.rnd.IntN(len(approved))]
	raw, err := json.Marshal(victim)
	if err != nil {
		t.Fatal(err)
	}
	killCtx, kill := context.WithTimeout(ctx, time.Duration(1+w.rnd.IntN(40))*time.Millisecond)
	_, _ = st.App.Invoke(killCtx, route.Promoter, raw)
	kill()
	if _, err := st.App.Invoke(ctx, route.Promoter, raw); err != nil {
		t.Logf("redelivered promotion: %v (the bus retries)", err)
	}
	w.settle(t)

	// Staging's tests pass; prod's requests open and are approved in order, by two people
	// each, double clicks included.
	for _, d := range fresh {
		if _, err := st.Gate.Verify(ctx, regflow.Verification{Env: "staging", Repository: repo, Digest: d, Passed: true, By: "deploy-bot", At: st.Clock.Now()}); err != nil {
			t.Fatalf("verify %s: %v", d, err)
		}
	}
	w.settle(t)
	for _, d := range fresh {
		r := w.request(t, "prod", d)
		if r.Status != regflow.StatusPending {
			t.Fatalf("prod's request for %s is %s (%s), want pending; handler failures: %v", d, r.Status, r.Reason, w.errs)
		}
		st.Clock.Advance(time.Minute) // approvals one minute apart: their order is the releases' order
		w.clicks(t, r.ID, "U0BOB", "U0CAROL", "U0CAROL", "U0BOB")
	}
	w.settle(t)

	phase("prod promoted")
	// 100 days later the sweep runs, and its trigger is delivered twice.
	st.Clock.Advance(100 * 24 * time.Hour)
	trigger := fmt.Sprintf(`{"version":"0","id":"chaos-%d","detail-type":"Scheduled Event","source":"aws.events","account":"111111111111","time":%q,"region":"us-east-1","resources":[],"detail":{"dryRun":false}}`,
		seed, st.Clock.Now().UTC().Format(time.RFC3339))
	// The first delivery runs out of time mid-sweep (its workers must stop, record and hand
	// the rest on); the redelivery finishes the run.
	short, cancel := context.WithTimeout(ctx, time.Duration(5+w.rnd.IntN(60))*time.Millisecond)
	if _, err := st.App.Invoke(short, route.Sweeper, []byte(trigger)); err != nil {
		t.Logf("sweep trigger past its deadline: %v (the schedule's target retries)", err)
	}
	cancel()
	if _, err := st.App.Invoke(ctx, route.Sweeper, []byte(trigger)); err != nil {
		t.Logf("sweep trigger: %v", err)
	}
	w.settle(t)
	phase("swept")
	calm()

	w.check(t, fresh, old)
	phase("checked")
}

// check is what every run must end with.
func (w *world) check(t *testing.T, fresh, old []string) {
	ctx := context.Background()
	st := w.st
	// The same digest in every environment it was approved for, under its tag, and prod's
	// pointer on the newest approval.
	for _, env := range []string{"staging", "prod"} {
		for _, d := range fresh {
			img, err := st.Registry(env).DescribeImage(ctx, repo, d)
			if err != nil {
				t.Errorf("%s lacks %s: %v", env, d, err)
				continue
			}
			if len(img.Tags) == 0 {
				t.Errorf("%s has %s without its tag", env, d)
			}
		}
	}
	if rel, err := st.Store.GetRelease(ctx, "prod", repo); err != nil || rel.Digest != fresh[len(fresh)-1] {
		t.Errorf("prod's release is %s (%v), want the newest approval %s", rel.Digest, err, fresh[len(fresh)-1])
	}
	// One decision and one "Image Promoted" (or "Promotion Superseded") per request.
	perRequest := func(detailType string) map[string]int {
		n := map[string]int{}
		for _, e := range w.seen(detailType) {
			var d struct {
				RequestID string `json:"requestId"`
			}
			_ = json.Unmarshal(e.Detail, &d)
			n[d.RequestID]++
		}
		return n
	}
	approved, promoted, superseded := perRequest(event.TypePromotionApproved), perRequest(event.TypeImagePromoted), perRequest(event.TypePromotionSuperseded)
	for _, env := range []string{"staging", "prod"} {
		for _, d := range fresh {
			id := regflow.RequestID(env, repo, d)
			// An older approval finishing after a newer one is superseded (its copy stays).
			if approved[id] != 1 || promoted[id]+superseded[id] != 1 {
				r, _ := st.Store.GetRequest(ctx, id)
				trail, _ := st.Store.Audit(ctx, repo+"@"+d)
				var acts []string
				for _, e := range trail {
					acts = append(acts, e.Action+"("+e.Reason+")")
				}
				t.Errorf("request %s: %d Promotion Approved, %d Image Promoted; want one decision and one Image Promoted or Promotion Superseded (request %s: %s; attempts %d; audit %v)", id, approved[id], promoted[id], r.Status, r.Reason, r.Attempts, acts)
			}
		}
	}
	// One sweep summary for the run, delivered twice.
	if n := len(w.seen(event.TypeRetentionSweepCompleted)); n != 1 {
		t.Errorf("%d Retention Sweep Completed events, want 1", n)
	}
	// Nothing protected deleted: every release (current and kept) and every request's image.
	for _, env := range []string{"staging", "prod"} {
		rel, err := st.Store.GetRelease(ctx, env, repo)
		if err != nil {
			t.Errorf("release %s: %v", env, err)
			continue
		}
		for _, d := range append([]string{rel.Digest}, rel.Previous...) {
			if _, err := st.Registry(env).DescribeImage(ctx, repo, d); err != nil {
				t.Errorf("the sweep deleted %s's release %s: %v", env, d, err)
			}
		}
	}
	for _, d := range fresh {
		if _, err := st.Registry("dev").DescribeImage(ctx, repo, d); err != nil {
			t.Errorf("the sweep deleted dev's promoted build %s: %v", d, err)
		}
	}
	// Every audit entry matches the registry, both ways, and the sweep did delete.
	deleted := 0
	for _, d := range append(slices.Clone(old), fresh...) {
		trail, err := st.Store.Audit(ctx, repo+"@"+d)
		if err != nil {
			t.Fatal(err)
		}
		_, gone := st.Registry("dev").DescribeImage(ctx, repo, d)
		saysDeleted := false
		for _, e := range trail {
			switch e.Action {
			case event.ActionImageDeleted:
				saysDeleted = true
				if !errors.Is(gone, regflow.ErrImageNotFound) {
					t.Errorf("audit says %s was deleted from %s; the registry still has it", d, e.Details["registry"])
				}
			case event.ActionImagePromoted:
				if _, err := st.Registry(e.Details["env"]).DescribeImage(ctx, repo, d); err != nil {
					t.Errorf("audit says %s was promoted to %s: %v", d, e.Details["env"], err)
				}
			}
		}
		if errors.Is(gone, regflow.ErrImageNotFound) {
			deleted++
			if !saysDeleted {
				t.Errorf("%s is gone from dev with no image.deleted entry", d)
			}
		}
	}
	// A sweep cut short by its deadline may delete nothing, but then its one summary says
	// so (partial, naming what was not swept).
	if deleted == 0 {
		partial := false
		for _, e := range w.seen(event.TypeRetentionSweepCompleted) {
			var d event.RetentionSweepCompleted
			_ = json.Unmarshal(e.Detail, &d)
			partial = partial || (d.Partial && len(d.NotSwept) > 0)
		}
		if !partial {
			t.Errorf("the sweep deleted none of the %d old builds and its summary is not partial", len(old))
		}
	}
}

func (w *world) push(t *testing.T, sha string, layer int64) string {
	t.Helper()
	img, err := random.Image(layer, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(w.st.Info().Environments["dev"].Registry+"/"+repo+":"+sha, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return digestOf(t, img)
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func (w *world) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.st.Settle(ctx); err != nil {
		t.Fatalf("settle: %v", err)
	}
}

func (w *world) request(t *testing.T, env, digest string) regflow.ApprovalRequest {
	t.Helper()
	r, err := w.st.Store.GetRequest(context.Background(), regflow.RequestID(env, repo, digest))
	if err != nil {
		t.Fatalf("%s's request for %s: %v; handler failures: %v", env, digest, err, w.errs)
	}
	return r
}

// clicks posts every user's Approve at once, as double-clicking people do.
func (w *world) clicks(t *testing.T, id string, users ...string) {
	t.Helper()
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := w.st.Click(context.Background(), u, slackmsg.ActionApprove, id); err != nil || res.Status >= 500 {
				t.Errorf("click by %s on %s: %+v %v", u, id, res, err)
			}
		}()
	}
	wg.Wait()
}
