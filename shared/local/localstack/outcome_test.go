package localstack_test

import (
	"context"
	"encoding/json"
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
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/slackmsg"
)

// busLog keeps the events of some detail-types the local bus carried.
type busLog struct {
	mu     sync.Mutex
	events [][]byte
}

func (l *busLog) add(_ context.Context, b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, append([]byte(nil), b...))
	return nil
}

// of returns the events of one detail-type whose detail has every field of want.
func (l *busLog) of(detailType string, want map[string]string) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, b := range l.events {
		var env struct {
			DetailType string          `json:"detail-type"`
			Detail     json.RawMessage `json:"detail"`
		}
		var d map[string]any
		if json.Unmarshal(b, &env) != nil || env.DetailType != detailType || json.Unmarshal(env.Detail, &d) != nil {
			continue
		}
		match := true
		for k, v := range want {
			if s, _ := d[k].(string); s != v {
				match = false
			}
		}
		if match {
			out = append(out, b)
		}
	}
	return out
}

// pushAndPromote pushes an image tagged sha into dev, scans it there and approves its
// staging request, then waits until every ECS deployment has settled.
func pushAndPromote(ctx context.Context, t *testing.T, st *localstack.Stack, repo, sha string, img v1.Image) string {
	t.Helper()
	ref, _ := name.ParseReference(st.Info().Environments["dev"].Registry+"/"+repo+":"+sha, name.Insecure)
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.ECR["dev"].InjectScan(repo, d.String()); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := st.Click(ctx, "U0BOB", slackmsg.ActionApprove, regflow.RequestID("staging", repo, d.String())); err != nil || res.Outcome != "approved" {
		t.Fatalf("approve staging: %+v, %v", res, err)
	}
	// The promotion (and its UpdateService) first, then the deployment it started.
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.SettleDeployments(ctx); err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func audited(ctx context.Context, t *testing.T, st *localstack.Stack, subject, action string) int {
	t.Helper()
	trail, err := st.Store.Audit(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range trail {
		if e.Action == action {
			n++
		}
	}
	return n
}

// TestECSDeploymentOutcomes, end to end on the local stack: a promotion to staging makes
// staging's ECS service run the digest, and its SERVICE_DEPLOYMENT_COMPLETED marks the
// release deployed ("Release Deployed" once). A digest whose tasks fail to start (MarkBad)
// fails its deployment: the circuit breaker rolls the service back, regflow alerts,
// announces "Deployment Failed" once, counts it as a failed verification in staging so
// prod's approval cannot open, and moves staging's pointer back to what the service runs,
// nothing copied. The rollback deployment's COMPLETED does not mark the bad digest
// deployed, and every ECS event delivered again changes nothing.
func TestECSDeploymentOutcomes(t *testing.T) {
	ctx := context.Background()
	const repo = "shop/web"
	cfg := loadConfig(t)
	stg := cfg.Environments["staging"]
	stg.Deploy.Targets = []config.DeployTarget{{Repositories: "shop/*", ECS: &config.ECSTarget{Cluster: "staging", Service: "web", Container: "app"}}}
	cfg.Environments["staging"] = stg
	slack := &slackLog{}
	st, err := localstack.Start(ctx, localstack.Options{Config: cfg, Dir: t.TempDir(), OnSlack: slack.add, DeploymentDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := &busLog{}
	st.Bus.Subscribe(localbus.Rule{Name: "test-outcomes", DetailTypes: []string{event.TypeReleaseDeployed, event.TypeDeploymentFailed, event.TypeECSDeployment}}, log.add)
	reg := st.Config.Environments["staging"].Registry
	const seeded = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	if err := st.SeedTargets(ctx, "staging", repo, reg+"/"+repo+"@"+seeded); err != nil {
		t.Fatal(err)
	}
	if err := st.SettleDeployments(ctx); err != nil {
		t.Fatal(err)
	}
	rt := st.Runtimes["staging"]

	// 1. A good digest: the service runs it, and its COMPLETED marks the release deployed.
	good := pushAndPromote(ctx, t, st, repo, "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd", randomImage(t))
	if svcs := rt.Services(); len(svcs) != 1 || svcs[0].Digests["app"] != good {
		t.Fatalf("staging's service runs %+v, want %s", svcs, good)
	}
	if n := audited(ctx, t, st, repo+"@"+good, event.ActionDeploymentCompleted); n != 1 {
		t.Errorf("%d %s entries for %s, want 1", n, event.ActionDeploymentCompleted, good)
	}
	if n := len(log.of(event.TypeReleaseDeployed, map[string]string{"env": "staging", "digest": good})); n != 1 {
		t.Errorf("%d Release Deployed events for %s, want 1", n, good)
	}

	// 2. A digest whose tasks fail to start.
	alertsBefore := len(slack.in(cfg.Alerts.SlackChannel))
	badImage := randomImage(t)
	d, _ := badImage.Digest()
	rt.MarkBad(d.String())
	bad := pushAndPromote(ctx, t, st, repo, "1111111111222222222233333333334444444444", badImage)
	if svcs := rt.Services(); svcs[0].Digests["app"] != good {
		t.Fatalf("after the breaker's rollback staging's service runs %+v, want %s", svcs, good)
	}
	rel, err := st.Store.GetRelease(ctx, "staging", repo)
	if err != nil || rel.Digest != good {
		t.Fatalf("staging's pointer should follow the service back to %s: %+v, %v", good, rel, err)
	}
	if n := audited(ctx, t, st, repo+"@"+bad, event.ActionDeploymentRolledBack); n != 1 {
		t.Errorf("%d %s entries for %s, want 1", n, event.ActionDeploymentRolledBack, bad)
	}
	if n := audited(ctx, t, st, repo+"@"+bad, event.ActionDeploymentCompleted); n != 0 {
		t.Errorf("the breaker's rollback deployment marked the bad digest deployed (%d entries)", n)
	}
	if n := len(log.of(event.TypeReleaseDeployed, map[string]string{"digest": bad})); n != 0 {
		t.Errorf("%d Release Deployed events for the bad digest", n)
	}
	if n := len(log.of(event.TypeDeploymentFailed, map[string]string{"env": "staging", "digest": bad})); n != 1 {
		t.Errorf("%d Deployment Failed events for %s, want 1", n, bad)
	}
	if n := audited(ctx, t, st, repo+"@"+good, event.ActionReleaseRolledBack); n != 1 {
		t.Errorf("%d %s entries moving the pointer back to %s, want 1", n, event.ActionReleaseRolledBack, good)
	}
	v, err := st.Store.GetVerification(ctx, "staging", repo, bad)
	if err != nil || v.Passed || v.By != "regflow/ecs-deployment" {
		t.Errorf("staging's verification of the bad digest: %+v, %v; want failed, by regflow/ecs-deployment", v, err)
	}
	alerts := slack.in(cfg.Alerts.SlackChannel)
	if len(alerts) <= alertsBefore || !strings.Contains(blocksText(alerts[len(alerts)-1])+alerts[len(alerts)-1].Text, "rolled back") {
		t.Errorf("no alert about the rolled-back deployment; alerts: %d before, %+v", alertsBefore, alerts)
	}
	// prod's approval cannot open: the request is blocked (the scan of the copy may open it
	// later: it finds the failed verification), and a click changes nothing.
	st.ECR["staging"].InjectScan(repo, bad) //nolint:errcheck // the copy may have been scanned on push already
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	prodID := regflow.RequestID("prod", repo, bad)
	if r, err := st.Store.GetRequest(ctx, prodID); err != nil || r.Status != regflow.StatusBlocked {
		t.Fatalf("prod's request for the bad digest: %+v, %v; want blocked", r, err)
	}
	if res, err := st.Click(ctx, "U0ALICE", slackmsg.ActionApprove, prodID); err == nil && res.Outcome == "approved" {
		t.Fatalf("prod's approval of a digest whose staging deployment failed: %+v", res)
	}

	// 3. Every ECS event again, in order: nothing changes.
	ecsEvents := log.of(event.TypeECSDeployment, nil)
	trailGood, _ := st.Store.Audit(ctx, repo+"@"+good)
	trailBad, _ := st.Store.Audit(ctx, repo+"@"+bad)
	nAlerts := len(slack.in(cfg.Alerts.SlackChannel))
	// The breaker's rollback deployment completing after the pointer moved back may mark
	// the restored release deployed (once, for that deployment); nothing more.
	deployedGood := len(log.of(event.TypeReleaseDeployed, map[string]string{"env": "staging", "digest": good}))
	if deployedGood > 2 {
		t.Errorf("%d Release Deployed events for %s: one for its deployment, at most one for the rollback's", deployedGood, good)
	}
	for _, ev := range ecsEvents {
		if _, err := st.App.Invoke(ctx, route.Promoter, ev); err != nil {
			t.Fatalf("redelivered %s: %v", ev, err)
		}
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	again, _ := st.Store.GetRelease(ctx, "staging", repo)
	if again.Digest != good || again.Version != rel.Version {
		t.Errorf("redelivery moved the pointer: %+v, was %+v", again, rel)
	}
	if tg, _ := st.Store.Audit(ctx, repo+"@"+good); len(tg) != len(trailGood) {
		t.Errorf("redelivery added audit entries for %s: %d → %d", good, len(trailGood), len(tg))
	}
	if tb, _ := st.Store.Audit(ctx, repo+"@"+bad); len(tb) != len(trailBad) {
		t.Errorf("redelivery added audit entries for %s: %d → %d", bad, len(trailBad), len(tb))
	}
	if n := len(slack.in(cfg.Alerts.SlackChannel)); n != nAlerts {
		t.Errorf("redelivery alerted again: %d → %d", nAlerts, n)
	}
	if n := len(log.of(event.TypeReleaseDeployed, map[string]string{"env": "staging", "digest": good})); n != deployedGood {
		t.Errorf("after redelivery %d Release Deployed events for %s, want %d", n, good, deployedGood)
	}
	if n := len(log.of(event.TypeDeploymentFailed, map[string]string{"env": "staging", "digest": bad})); n != 1 {
		t.Errorf("after redelivery %d Deployment Failed events for %s, want 1", n, bad)
	}
}
