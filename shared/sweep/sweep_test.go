package sweep_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/retention"
	"github.com/regflow/regflow/shared/sweep"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	now = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	day = 24 * time.Hour
)

func retentionConfig() config.Retention {
	return config.Retention{
		MaxAge: config.Duration(90 * day), UntaggedMaxAge: config.Duration(14 * day),
		KeepNewest: 2, KeepReleases: 2,
	}
}

// estate is one repository with every kind of image the sweep must get right.
type estate struct {
	srv   *localecr.Server
	store *embedded.Store
	repo  string
	// kept and deleted are the digests the sweep must keep and delete.
	kept, deleted []string
	// protected are kept only because the store names them.
	protected []string
	// index and its children are deleted together (the index first).
	index    string
	children []string
}

// newEstate seeds team/app with 1,600 expired untagged images (so listing pages
// and deletes need 17 batches), old and young tagged images, a release pointer,
// a pending request, an expired index with two children, a kept index whose
// child is old, and signatures of a kept and of a deleted image.
func newEstate(t *testing.T) *estate {
	t.Helper()
	srv := sweeptest.StartECR(t, localecr.Options{Clock: localecr.FixedClock(now)})
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &estate{srv: srv, store: st, repo: "team/app"}
	old, young := now.Add(-120*day), now.Add(-3*day)
	seed := func(body []byte, pushed time.Time, tags ...string) string {
		return sweeptest.Seed(t, srv, e.repo, localecr.SeedImage{Manifest: body, PushedAt: pushed, Tags: tags, SizeBytes: 1000})[0]
	}
	for i := range 1600 {
		e.deleted = append(e.deleted, seed(sweeptest.Plain(fmt.Sprint("junk", i)), old))
	}
	// Tagged: v1..v6 old; release pointer on v1 (current) and v2 (previous), v3 is 3 back (beyond keepReleases 2).
	var tagged []string
	for i := 1; i <= 6; i++ {
		tagged = append(tagged, seed(sweeptest.Plain(fmt.Sprint("v", i)), old.Add(time.Duration(i)*time.Hour), fmt.Sprint("v", i)))
	}
	e.protected = append(e.protected, tagged[0], tagged[1])
	e.deleted = append(e.deleted, tagged[2], tagged[3])
	// Pending approval for v5.
	e.protected = append(e.protected, tagged[4])
	e.deleted = append(e.deleted, tagged[5])
	// Two young tagged images (also the newest two).
	e.kept = append(e.kept, seed(sweeptest.Plain("y1"), young, "y1"), seed(sweeptest.Plain("y2"), young, "y2"))
	// An expired index and its children: all go, index first.
	c1, c2 := sweeptest.OCI("c1"), sweeptest.OCI("c2")
	e.children = []string{seed(c1, old), seed(c2, old)}
	e.index = seed(sweeptest.Index(c1, c2), old, "multi-old")
	e.deleted = append(e.deleted, e.index)
	e.deleted = append(e.deleted, e.children...)
	// A young index keeps its old child.
	k1 := sweeptest.OCI("k1")
	e.kept = append(e.kept, seed(k1, old), seed(sweeptest.Index(k1), young, "multi-young"))
	// Signatures: of the release (kept) and of an expired tag (deleted with it).
	e.kept = append(e.kept, seed(sweeptest.Referrer("sig-v1", sweeptest.Plain("v1")), old))
	e.deleted = append(e.deleted, seed(sweeptest.Referrer("sig-v4", sweeptest.Plain("v4")), young))

	ctx := context.Background()
	rel := regflow.Release{Env: "prod", Repository: e.repo}.MoveTo(tagged[2], "v3", "U1", old, 5).
		MoveTo(tagged[1], "v2", "U1", old, 5).MoveTo(tagged[0], "v1", "U1", old, 5)
	rel.Version = 1 // a new pointer, written once
	if err := st.PutRelease(ctx, rel); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateRequest(ctx, regflow.ApprovalRequest{ID: "req-1", Env: "prod", Repository: e.repo, Digest: tagged[4], Status: regflow.StatusPending, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// Another repository's release must not protect anything here.
	if err := st.PutRelease(ctx, regflow.Release{Env: "prod", Repository: "other"}.MoveTo(tagged[3], "v4", "U1", old, 5)); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *estate) sweeper() *sweep.Sweeper {
	return &sweep.Sweeper{Retention: retentionConfig(), Audit: e.store, Cache: e.store, Protection: e.store, Environments: []string{"staging", "prod"}}
}

func (e *estate) registry() sweep.Registry {
	return ecr.SweepRegistry(ecr.New(sweeptest.Client(e.srv), ""))
}

var target = sweep.Target{Name: "dev", Account: "111111111111", Region: "us-east-1"}

func (e *estate) run(t *testing.T, s *sweep.Sweeper, reg sweep.Registry, run sweep.Run) *sweep.Report {
	t.Helper()
	ctx := context.Background()
	prot, err := sweep.LoadProtections(ctx, e.store, now)
	if err != nil {
		t.Fatal(err)
	}
	return s.Estate(ctx, run, []sweep.Target{target}, func(context.Context, sweep.Target) (sweep.Registry, error) { return reg, nil }, prot)
}

func (e *estate) present(t *testing.T) map[string]bool {
	t.Helper()
	imgs, err := ecr.New(sweeptest.Client(e.srv), "").ListImages(context.Background(), e.repo)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, img := range imgs {
		out[img.Digest] = true
	}
	return out
}

func selection(r *sweep.Report) []retention.Report {
	var out []retention.Report
	for _, rr := range r.Registries {
		s := rr.Report
		s.DryRun = false
		out = append(out, s)
	}
	return out
}

// TestSweepRepository: a dry run deletes nothing and reports exactly what the real
// run then does; the real run deletes in order within the 100-id cap, audits every
// deletion, keeps what the store protects; a second sweep deletes nothing.
func TestSweepRepository(t *testing.T) {
	e := newEstate(t)
	ctx := context.Background()
	before := e.present(t)
	total := len(before)

	e.srv.ResetRequests()
	dry := e.run(t, e.sweeper(), e.registry(), sweep.Run{ID: "dry", Now: now, DryRun: true})
	if got := e.present(t); len(got) != total {
		t.Fatalf("dry run left %d of %d images", len(got), total)
	}
	if n := e.srv.Requests("BatchDeleteImage"); n != 0 {
		t.Fatalf("dry run made %d BatchDeleteImage calls", n)
	}
	if trail, _ := e.store.Audit(ctx, e.repo+"@"+e.deleted[0]); len(trail) != 0 {
		t.Fatalf("dry run audited a deletion: %+v", trail)
	}
	if !strings.HasPrefix(dry.Summary(), "Dry run: would delete 1607 of ") {
		t.Errorf("dry run summary: %s", dry.Summary())
	}

	e.srv.ResetRequests()
	real := e.run(t, e.sweeper(), e.registry(), sweep.Run{ID: "run-1", Now: now})
	if diff := cmp.Diff(selection(dry), selection(real)); diff != "" {
		t.Fatalf("the dry run's selection differs from the real run's (-dry +real):\n%s", diff)
	}
	rr := real.Registries[0]
	if gone(rr.Outcome) != len(e.deleted) || rr.Outcome.Refused != 0 || len(rr.NotDeleted) != 0 || len(rr.Report.Failed) != 0 {
		t.Fatalf("outcome %+v, not deleted %v, failed %v; want %d removed", rr.Outcome, rr.NotDeleted, rr.Report.Failed, len(e.deleted))
	}
	// Pages: 2 DescribeImages calls for 1,6xx images (plus 1 for the final check below).
	if n := e.srv.Requests("DescribeImages"); n != 2 {
		t.Errorf("DescribeImages calls = %d, want 2", n)
	}
	if n, want := e.srv.Requests("BatchDeleteImage"), rr.Report.Batches; n != want || want < 17 {
		t.Errorf("BatchDeleteImage calls = %d, want one per batch (%d, at least ceil(%d/100))", n, want, len(e.deleted))
	}
	got := e.present(t)
	for _, d := range append(slices.Clone(e.kept), e.protected...) {
		if !got[d] {
			t.Errorf("kept image %s was deleted", d)
		}
	}
	for _, d := range e.deleted {
		if got[d] {
			t.Errorf("image %s should be gone", d)
		}
	}
	if len(got) != len(e.kept)+len(e.protected) {
		t.Errorf("%d images left, want %d", len(got), len(e.kept)+len(e.protected))
	}
	// The index went in an earlier batch than its children.
	batch := map[string]int{}
	for _, d := range rr.Report.Decisions {
		batch[d.Digest] = d.Batch
	}
	for _, c := range e.children {
		if batch[e.index] >= batch[c] {
			t.Errorf("index in batch %d, child %s in batch %d", batch[e.index], c, batch[c])
		}
	}
	// Every deletion is audited once, with the run's deterministic ID.
	for _, d := range e.deleted {
		trail, err := e.store.Audit(ctx, e.repo+"@"+d)
		if err != nil {
			t.Fatal(err)
		}
		if len(trail) != 1 || trail[0].Action != event.ActionImageDeleted || trail[0].Actor != sweep.Actor ||
			trail[0].ID != "run-1#111111111111/us-east-1#"+d || !strings.HasPrefix(trail[0].Reason, "delete:") {
			t.Fatalf("audit of %s: %+v", d, trail)
		}
	}
	for _, d := range e.protected {
		if trail, _ := e.store.Audit(ctx, e.repo+"@"+d); len(trail) != 0 {
			t.Fatalf("protected %s audited: %+v", d, trail)
		}
	}
	reasons := map[string]string{}
	for _, d := range rr.Report.Decisions {
		reasons[d.Digest] = d.Reason
	}
	for d, want := range map[string]string{e.protected[0]: "kept: prod current", e.protected[2]: "kept: awaiting approval for prod"} {
		if !strings.HasPrefix(reasons[d], want) {
			t.Errorf("reason for %s = %q, want %q…", d, reasons[d], want)
		}
	}

	// A second sweep right after deletes nothing, and reads no manifest again (cached).
	e.srv.ResetRequests()
	again := e.run(t, e.sweeper(), e.registry(), sweep.Run{ID: "run-2", Now: now})
	if r := again.Registries[0]; r.Report.Deleted != 0 || r.Outcome.Removed != 0 {
		t.Fatalf("second sweep selected %d, removed %d", r.Report.Deleted, r.Outcome.Removed)
	}
	if n := e.srv.Requests("BatchDeleteImage") + e.srv.Requests("BatchGetImage"); n != 0 {
		t.Fatalf("second sweep made %d delete or manifest calls", n)
	}
}

// TestSweepUnderThrottling: every ECR operation is throttled above 3 requests a
// second (one repository's calls run one after another, so a higher limit would not
// trip) while 1,607 images go in 17 delete batches: no delete fails.
func TestSweepUnderThrottling(t *testing.T) {
	if testing.Short() {
		t.Skip("throttled calls take seconds")
	}
	e := newEstate(t)
	e.srv.SetFault(localecr.AllOps, localecr.Fault{ThrottleAbove: 3})
	rep := e.run(t, e.sweeper(), e.registry(), sweep.Run{ID: "throttled", Now: now})
	rr := rep.Registries[0]
	if gone(rr.Outcome) != len(e.deleted) || len(rr.NotDeleted) != 0 || len(rr.Report.Failed) != 0 {
		t.Fatalf("under throttling: %+v, not deleted %v, failed %v", rr.Outcome, rr.NotDeleted, rr.Report.Failed)
	}
	calls := e.srv.Requests("BatchDeleteImage")
	t.Logf("%d BatchDeleteImage requests for %d batches", calls, rr.Report.Batches)
	if calls <= rr.Report.Batches {
		t.Fatal("nothing was throttled: the test proves nothing")
	}
}

// pushIndexOnDelete pushes a new index listing one expired child between the
// sweep's listing and its first delete: the child must stay, reported and audited.
type pushIndexOnDelete struct {
	sweep.Registry
	push func()
	done bool
}

func (p *pushIndexOnDelete) DeleteImages(ctx context.Context, repo string, ds []string) (sweep.Deletion, error) {
	if !p.done {
		p.done = true
		p.push()
	}
	return p.Registry.DeleteImages(ctx, repo, ds)
}

// laggingParents answers ImageReferencedByManifestList for children of a
// just-deleted index on their first delete, as a registry whose view of manifest
// lists lags: the sweep must retry them after a pause.
type laggingParents struct {
	sweep.Registry
	parent  string
	lagging map[string]bool
}

func (l *laggingParents) DeleteImages(ctx context.Context, repo string, ds []string) (sweep.Deletion, error) {
	var pass []string
	var out sweep.Deletion
	for _, d := range ds {
		if l.lagging[d] {
			delete(l.lagging, d)
			out.Referenced = append(out.Referenced, sweep.Referenced{Digest: d, Parents: []string{l.parent}, Reason: "referenced by manifest list: [" + l.parent + "]"})
			continue
		}
		pass = append(pass, d)
	}
	if len(pass) == 0 {
		return out, nil
	}
	d, err := l.Registry.DeleteImages(ctx, repo, pass)
	d.Referenced = append(d.Referenced, out.Referenced...)
	return d, err
}

func TestSweepReferencedByManifestList(t *testing.T) {
	ctx := context.Background()
	t.Run("a manifest list pushed after the listing keeps its child", func(t *testing.T) {
		e := newEstate(t)
		child := e.children[0]
		body, err := ecr.New(sweeptest.Client(e.srv), "").Manifests(ctx, e.repo, []string{child})
		if err != nil {
			t.Fatal(err)
		}
		var fresh string
		reg := &pushIndexOnDelete{Registry: e.registry(), push: func() {
			fresh = sweeptest.Seed(t, e.srv, e.repo, localecr.SeedImage{Manifest: sweeptest.Index(body[child]), PushedAt: now, Tags: []string{"fresh"}})[0]
		}}
		rep := e.run(t, e.sweeper(), reg, sweep.Run{ID: "late-index", Now: now})
		rr := rep.Registries[0]
		if len(rr.NotDeleted) != 1 || rr.NotDeleted[0].Digest != child || rr.NotDeleted[0].Code != "ImageReferencedByManifestList" {
			t.Fatalf("not deleted = %+v", rr.NotDeleted)
		}
		if !strings.Contains(rr.NotDeleted[0].Reason, regflow.ShortDigest(fresh)) {
			t.Errorf("reason %q does not name the new index", rr.NotDeleted[0].Reason)
		}
		if gone(rr.Outcome) != len(e.deleted)-1 || rr.Outcome.Refused != 1 {
			t.Fatalf("outcome %+v", rr.Outcome)
		}
		if got := e.present(t); !got[child] || !got[fresh] || got[e.index] {
			t.Fatalf("child present %v, new index present %v, old index present %v", got[child], got[fresh], got[e.index])
		}
		trail, _ := e.store.Audit(ctx, e.repo+"@"+child)
		// Written from the delete's answer: refused, never "deleted".
		if len(trail) != 1 || trail[0].Action != event.ActionDeleteFailed {
			t.Fatalf("audit of the kept child: %+v", trail)
		}
		if !strings.Contains(rep.Summary(), "1 could not be deleted") {
			t.Errorf("summary: %s", rep.Summary())
		}
	})
	t.Run("children refused for a parent already deleted are retried", func(t *testing.T) {
		e := newEstate(t)
		reg := &laggingParents{Registry: e.registry(), parent: e.index, lagging: map[string]bool{e.children[0]: true, e.children[1]: true}}
		s := e.sweeper()
		pauses := 0
		s.Pause = func(context.Context, int) error { pauses++; return nil }
		rep := e.run(t, s, reg, sweep.Run{ID: "lag", Now: now})
		rr := rep.Registries[0]
		if gone(rr.Outcome) != len(e.deleted) || len(rr.NotDeleted) != 0 || pauses != 1 {
			t.Fatalf("outcome %+v, not deleted %v, pauses %d", rr.Outcome, rr.NotDeleted, pauses)
		}
		if got := e.present(t); got[e.children[0]] || got[e.children[1]] {
			t.Fatal("children left behind")
		}
	})
}

// TestSweepFailsSafe: without protection data nothing is deleted, and a repository
// that cannot be read is reported while the others are swept.
func TestSweepFailsSafe(t *testing.T) {
	e := newEstate(t)
	sweeptest.Seed(t, e.srv, "team/other", localecr.SeedImage{Manifest: sweeptest.Plain("x"), PushedAt: now.Add(-200 * day)})
	ctx := context.Background()
	if _, err := sweep.LoadProtections(ctx, brokenProtection{}, now); err == nil || !strings.Contains(err.Error(), "deletes nothing without them") {
		t.Fatalf("broken protection source: %v", err)
	}
	reg := &failingRepo{Registry: e.registry(), repo: e.repo}
	s := e.sweeper()
	s.Audit = nil
	rep := e.run(t, s, reg, sweep.Run{ID: "x", Now: now})
	rr := rep.Registries[0]
	if len(rr.Report.Failed) != 2 || rr.Outcome.Removed != 0 {
		t.Fatalf("failed %+v outcome %+v: want team/app unreadable and team/other refused for want of an audit trail", rr.Report.Failed, rr.Outcome)
	}
	if !strings.Contains(rr.Report.Failed[1].Error, "audit trail") {
		t.Errorf("team/other failure: %s", rr.Report.Failed[1].Error)
	}
	if len(e.present(t)) != len(e.kept)+len(e.protected)+len(e.deleted) {
		t.Fatal("something was deleted")
	}
}

type brokenProtection struct{}

func (brokenProtection) Releases(context.Context) ([]regflow.Release, error) {
	return nil, fmt.Errorf("table unreachable")
}
func (brokenProtection) Requests(context.Context, string) ([]regflow.ApprovalRequest, error) {
	return nil, nil
}
func (brokenProtection) GetRelease(context.Context, string, string) (regflow.Release, error) {
	return regflow.Release{}, fmt.Errorf("table unreachable")
}

type failingRepo struct {
	sweep.Registry
	repo string
}

func (f *failingRepo) ListImages(ctx context.Context, repo string) ([]retention.Image, error) {
	if repo == f.repo {
		return nil, fmt.Errorf("AccessDeniedException")
	}
	return f.Registry.ListImages(ctx, repo)
}

// gone counts images the sweep removed and those it found already gone.
func gone(o sweep.Outcome) int { return o.Removed + o.AlreadyGone }
