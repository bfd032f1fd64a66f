package localstack_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/sweep"
)

// TestSweeperRunsOnlyAtItsOwnTime sends hand-made sweeper triggers through the
// composition root (as the sweeper function receives them): a real sweep runs only
// at the trigger's own time, ±1 minute, and that time is the clock's; a dry run may
// preview any time. A refused trigger deletes nothing.
func TestSweeperRunsOnlyAtItsOwnTime(t *testing.T) {
	at := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	stamp := func(d time.Duration) string { return at.Add(d).Format(time.RFC3339) }
	cases := []struct {
		name    string
		trigger string
		refuse  string // part of the error; "" runs
	}{
		{"the schedule's own event", fmt.Sprintf(`{"detail-type":"Scheduled Event","time":%q,"detail":{}}`, stamp(0)), ""},
		{"real, now 30 s after the trigger", fmt.Sprintf(`{"time":%q,"detail":{"dryRun":false,"now":%q}}`, stamp(0), stamp(30*time.Second)), ""},
		{"real, delivered late (the past keeps more)", fmt.Sprintf(`{"time":%q,"detail":{}}`, stamp(-3*time.Hour)), ""},
		{"dry run previewing next year", fmt.Sprintf(`{"time":%q,"detail":{"dryRun":true,"now":%q}}`, stamp(0), stamp(365*24*time.Hour)), ""},
		{"dry run from a future trigger", fmt.Sprintf(`{"time":%q,"detail":{"dryRun":true}}`, stamp(400*24*time.Hour)), ""},
		{"real, now a year ahead", fmt.Sprintf(`{"time":%q,"detail":{"dryRun":false,"now":%q}}`, stamp(0), stamp(365*24*time.Hour)), "dryRun"},
		{"real, now 2 minutes ahead", fmt.Sprintf(`{"time":%q,"detail":{"now":%q}}`, stamp(0), stamp(2*time.Minute)), "dryRun"},
		{"real, now a day back", fmt.Sprintf(`{"time":%q,"detail":{"now":%q}}`, stamp(0), stamp(-24*time.Hour)), "dryRun"},
		{"real, the trigger itself in the future", fmt.Sprintf(`{"time":%q,"detail":{"dryRun":false}}`, stamp(400*24*time.Hour)), "future"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := localstack.Start(ctx, localstack.Options{Config: loadConfig(t), Dir: t.TempDir(), Clock: localecr.FixedClock(at)})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			// Young enough to stay at the real time, old enough to go a year later.
			sweeptest.Seed(t, st.ECR["dev"], "shop/web", localecr.SeedImage{Manifest: sweeptest.Plain("young"), PushedAt: at.Add(-24 * time.Hour)})

			_, err = st.App.Invoke(ctx, route.Sweeper, []byte(c.trigger))
			switch {
			case c.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.refuse != "" && err == nil:
				t.Fatal("a real sweep ran at a time other than its trigger's")
			case c.refuse != "" && !strings.Contains(err.Error(), c.refuse):
				t.Fatalf("error %q does not say %q", err, c.refuse)
			}
			imgs, err := st.Registry("dev").ListImages(ctx, "shop/web")
			if err != nil || len(imgs) != 1 {
				t.Fatalf("dev shop/web holds %d images (%v), want the young one kept", len(imgs), err)
			}
		})
	}
}

// TestSweepRegistriesByAccountAndRegion: dev and staging share an account in two
// regions; the stack's sweep registries are keyed by both, so each environment's
// target reaches its own local ECR and a region no environment has reaches none
// (it used to fall back to the account's first environment).
func TestSweepRegistriesByAccountAndRegion(t *testing.T) {
	cfg := loadConfig(t)
	staging := cfg.Environments["staging"]
	staging.Account, staging.Region = cfg.Environments["dev"].Account, "us-west-2"
	staging.PromotionRole = "arn:aws:iam::" + staging.Account + ":role/regflow-promotion"
	cfg.Environments["staging"] = staging
	ctx := context.Background()
	st, err := localstack.Start(ctx, localstack.Options{Config: cfg, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, env := range []string{"dev", "staging"} {
		sweeptest.Seed(t, st.ECR[env], "only/"+env, localecr.SeedImage{Manifest: sweeptest.Plain(env), PushedAt: time.Now()})
	}
	regs := localstack.Registries(st.Config, st.Info().Environments)
	targets := sweep.Targets(st.Config)
	if len(targets) != 3 {
		t.Fatalf("targets %v: want dev, staging and prod apart", targets)
	}
	for _, tg := range targets[:2] {
		reg, err := regs.Sweep(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		repos, err := reg.Repositories(ctx)
		if err != nil || len(repos) != 1 || repos[0] != "only/"+tg.Name {
			t.Fatalf("target %s reached repositories %v (%v), want only/%s", tg, repos, err, tg.Name)
		}
	}
	if reg, err := regs.Sweep(ctx, sweep.Target{Name: "x", Account: staging.Account, Region: "eu-west-1"}); err == nil {
		repos, _ := reg.Repositories(ctx)
		t.Fatalf("a region no environment has reached a registry holding %v", repos)
	}
}
