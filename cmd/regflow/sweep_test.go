package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/sweep"
)

// TestSweepCommand runs `regflow sweep --local` against an in-process local stack:
// a dry run (JSON) deletes nothing, --now previews a later sweep, the real sweep
// deletes what expired except the release, with progress on stderr and a table on
// stdout, and audits each deletion in the stack's store.
func TestSweepCommand(t *testing.T) {
	f := startStack(t)
	ctx := context.Background()
	now := time.Now().UTC()
	dev, prod := f.st.ECR["dev"], f.st.ECR["prod"]
	old := now.Add(-200 * 24 * time.Hour)
	seed := func(srv *localecr.Server, repo, id string, pushed time.Time, tags ...string) string {
		return sweeptest.Seed(t, srv, repo, localecr.SeedImage{Manifest: sweeptest.Plain(id), PushedAt: pushed, Tags: tags, SizeBytes: 5 << 20})[0]
	}
	// regflow.yaml keeps the newest 5 tagged images and untagged ones for 14 days.
	expired := []string{seed(dev, "shop/app", "a", old)}
	seed(dev, "shop/app", "b", now.Add(-10*24*time.Hour))
	released := seed(dev, "shop/app", "c", old, "v2")
	seed(dev, "shop/app", "d", now.Add(-24*time.Hour), "v3")
	seed(prod, "shop/app", "c", old, "v2")
	seed(dev, "tools/ci", "e", old)
	rel := regflow.Release{Env: "prod", Repository: "shop/app"}.MoveTo(released, "v2", "U0ALICE", old, 3)
	if err := f.st.Store.PutRelease(ctx, rel); err != nil {
		t.Fatal(err)
	}
	count := func(srv *localecr.Server, repo string) int {
		imgs, err := f.st.Registry("dev").ListImages(ctx, repo)
		if srv == prod {
			imgs, err = f.st.Registry("prod").ListImages(ctx, repo)
		}
		if err != nil {
			t.Fatal(err)
		}
		return len(imgs)
	}

	var rep sweep.Report
	f.okJSON(t, &rep, "sweep", "--dry-run")
	sel, out := rep.Totals()
	if !rep.Run.DryRun || sel.Images != 6 || sel.Deleted != 2 || out.Removed != 0 {
		t.Fatalf("dry run report: %d images, %d selected, %d removed", sel.Images, sel.Deleted, out.Removed)
	}
	if count(dev, "shop/app") != 4 {
		t.Fatal("the dry run deleted")
	}

	stdout, stderr, err := f.cli("sweep", "--dry-run", "--repo", "shop/*", "--now", now.AddDate(1, 0, 0).Format(time.DateOnly))
	if err != nil {
		t.Fatalf("preview: %v\n%s", err, stderr)
	}
	contains(t, stdout, "Dry run: would delete 2 of 5 images", "kept: prod current")
	if strings.Contains(stdout, "tools/ci") {
		t.Errorf("--repo shop/* swept tools/ci:\n%s", stdout)
	}

	stdout, stderr, err = f.cli("sweep")
	if err != nil {
		t.Fatalf("sweep: %v\n%s\n%s", err, stdout, stderr)
	}
	contains(t, stdout, "Deleted 2 of 6 images in 3 repositories", "kept: prod current", "delete: untagged, pushed 200 days ago")
	contains(t, stderr, "dev shop/app: 4 images, 1 selected, 1 deleted", "prod shop/app: 1 images, 0 selected, 0 deleted")
	if n := count(dev, "shop/app"); n != 3 {
		t.Fatalf("%d images left in dev shop/app, want the release and the young ones", n)
	}
	if n := count(prod, "shop/app"); n != 1 {
		t.Fatal("the release went from prod")
	}
	for _, d := range expired {
		trail, err := f.st.Store.Audit(ctx, "shop/app@"+d)
		if err != nil || len(trail) != 1 || trail[0].Action != event.ActionImageDeleted {
			t.Fatalf("audit of %s: %+v %v", d, trail, err)
		}
	}

	if _, _, err := f.cli("sweep", "--now", "2030-01-01"); err == nil || !strings.Contains(err.Error(), "--dry-run") {
		t.Fatalf("--now without --dry-run: %v", err)
	}
	if _, _, err := f.cli("sweep", "--dry-run", "--now", "next month"); err == nil || !strings.Contains(err.Error(), "2027-01-01") {
		t.Fatalf("bad --now: %v", err)
	}
	var again sweep.Report
	f.okJSON(t, &again, "sweep")
	if _, out := again.Totals(); out.Removed != 0 {
		t.Fatalf("a second sweep removed %d", out.Removed)
	}
}

// TestSweepCommandTwoRegionsOneAccount: dev and staging share an account but live in
// two regions, so they are two registries: `regflow sweep --local` sweeps each once.
func TestSweepCommandTwoRegionsOneAccount(t *testing.T) {
	raw, err := os.ReadFile("../../regflow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "  staging:\n    account: \"222222222222\"\n", "  staging:\n    account: \"111111111111\"\n    region: us-west-2\n", 1)
	cfg = strings.ReplaceAll(cfg, "arn:aws:iam::222222222222:", "arn:aws:iam::111111111111:")
	if cfg == string(raw) {
		t.Fatal("regflow.yaml changed: the test no longer moves staging")
	}
	path := filepath.Join(t.TempDir(), "regflow.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	f := startStackWith(t, path)
	old := time.Now().UTC().Add(-200 * 24 * time.Hour)
	for _, env := range []string{"dev", "staging"} {
		sweeptest.Seed(t, f.st.ECR[env], "shop/app", localecr.SeedImage{Manifest: sweeptest.Plain(env), PushedAt: old})
	}
	stdout, stderr, err := f.cli("sweep")
	if err != nil {
		t.Fatalf("sweep: %v\n%s\n%s", err, stdout, stderr)
	}
	for _, env := range []string{"dev", "staging"} {
		if n := strings.Count(stderr, "] "+env+" shop/app:"); n != 1 {
			t.Errorf("%s shop/app swept %d times:\n%s", env, n, stderr)
		}
		imgs, err := f.st.Registry(env).ListImages(context.Background(), "shop/app")
		if err != nil || len(imgs) != 0 {
			t.Errorf("%s shop/app holds %d images after the sweep (%v)", env, len(imgs), err)
		}
	}
}
