package webui_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/webui"
)

// at is the synthetic estate's "now".
var at = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)

func testConfig(tb testing.TB) *config.Config {
	tb.Helper()
	cfg, err := config.Load(filepath.Join("..", "..", "regflow.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

func digestOf(repo string, n int) string {
	return fmt.Sprintf("sha256:%064x", uint64(len(repo))<<40|uint64(n)<<20|uint64(hash(repo)))
}

func hash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h & 0xfffff
}

func repoName(i int) string { return fmt.Sprintf("team-%04d/svc", i) }

// seedEstate writes what the flow would have left for n repositories: staging and prod
// pointers with history and audit entries, and open requests of every kind.
func seedEstate(tb testing.TB, path string, n int, extra ...regflow.AuditEntry) {
	tb.Helper()
	ctx := context.Background()
	st, err := embedded.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	var audit []regflow.AuditEntry
	for i := range n {
		repo := repoName(i)
		for k, env := range []string{"staging", "prod"} {
			cur := digestOf(repo, 10-k)
			rel := regflow.Release{Env: env, Repository: repo, Digest: cur, Tag: fmt.Sprintf("%040x", i*10+k), By: "U0BOB,U0CAROL",
				At: at.Add(-time.Duration(i%72+k) * time.Hour), Previous: []string{digestOf(repo, 7), digestOf(repo, 6)}, Version: 1}
			if err := st.PutRelease(ctx, rel); err != nil {
				tb.Fatal(err)
			}
			audit = append(audit, regflow.AuditEntry{Subject: repo + "@" + cur, ID: "promote/" + env, Time: rel.At, Action: "image.promoted", Actor: "promoter",
				Reason: "approved by U0BOB, U0CAROL", Details: map[string]string{"env": env, "tag": rel.Tag, "previous": digestOf(repo, 7)}})
		}
		add := func(env, status, reason string, findings map[string]int, votes ...regflow.Vote) {
			d := digestOf(repo, 11)
			r := regflow.ApprovalRequest{ID: regflow.RequestID(env, repo, d), Env: env, Repository: repo, Digest: d, Tag: fmt.Sprintf("%040x", i),
				Commit: fmt.Sprintf("%040x", i), Status: status, Reason: reason, Required: 2, Findings: findings,
				CreatedAt: at.Add(-2 * time.Hour), ExpiresAt: at.Add(70 * time.Hour), SlackChannel: "C0PROD", SlackTS: "1700000000.000100", Approvals: votes, Version: 1}
			if _, err := st.CreateRequest(ctx, r); err != nil {
				tb.Fatal(err)
			}
		}
		switch {
		case i%100 == 3:
			add("prod", regflow.StatusFailed, "copy to prod failed: registry answered 503", map[string]int{"MEDIUM": 1})
		case i%25 == 1:
			add("staging", regflow.StatusBlocked, "blocked for staging: CRITICAL 2 > 0", map[string]int{"CRITICAL": 2, "HIGH": 1})
		case i%10 == 0:
			add("prod", regflow.StatusPending, "within prod's gate (CRITICAL ≤ 0, HIGH ≤ 0)", map[string]int{"MEDIUM": 3}, regflow.Vote{User: "U0DAVE", At: at.Add(-time.Hour)})
		case i%20 == 5:
			add("prod", regflow.StatusWaiting, "gate passed; waiting for the staging deployment to report verification", map[string]int{"LOW": 1})
		}
	}
	if err := st.AppendAudits(ctx, append(audit, extra...)); err != nil {
		tb.Fatal(err)
	}
}

// registries starts one local ECR per environment account, each holding repos repositories
// of a few images of every age, and returns the retention preview `regflow ui --local`
// serves over them: the composition root's dry-run sweep, with protections from st.
func registries(tb testing.TB, cfg *config.Config, st app.Store, repos int, unreachable ...string) webui.Preview {
	tb.Helper()
	info := localstack.Info{Environments: map[string]localstack.EnvInfo{}}
	for _, env := range cfg.PromotionPath {
		e := cfg.Environments[env]
		srv := sweeptest.StartECR(tb, localecr.Options{Account: e.Account, Region: e.Region, Clock: localecr.FixedClock(at)})
		for i := range repos {
			repo := repoName(i)
			imgs := make([]localecr.SeedImage, 0, 9)
			for k, days := range []int{200, 150, 120, 95, 60, 30, 10, 1} {
				imgs = append(imgs, localecr.SeedImage{Tags: []string{fmt.Sprintf("%040x", i*100+k)}, PushedAt: at.Add(-time.Duration(days) * 24 * time.Hour), SizeBytes: int64(20+k) << 20})
			}
			imgs = append(imgs, localecr.SeedImage{PushedAt: at.Add(-40 * 24 * time.Hour), SizeBytes: 5 << 20})
			sweeptest.Seed(tb, srv, repo, imgs...)
		}
		info.Environments[env] = localstack.EnvInfo{Account: e.Account, Region: e.Region, Registry: srv.Host(), ECREndpoint: srv.URL()}
	}
	for _, env := range unreachable {
		e := info.Environments[env]
		e.ECREndpoint = "http://127.0.0.1:1" // nothing listens on port 1
		info.Environments[env] = e
	}
	a, err := app.New(localstack.Attach(cfg, info, st, nil))
	if err != nil {
		tb.Fatal(err)
	}
	return webui.SweepPreview(a, func() time.Time { return at })
}
