package promoter_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
)

// handOver records what the promoter hands to an environment's runtimes (the deploy use
// case and its adapters have tests of their own, against moto and the local stack).
type handOver struct {
	mu   sync.Mutex
	got  []deploy.Release
	fail error
}

func (h *handOver) Deploy(_ context.Context, r deploy.Release) ([]deploy.Outcome, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, r)
	if h.fail != nil {
		return []deploy.Outcome{{Kind: "ecs", Target: "staging/web/app", Error: h.fail.Error()}}, h.fail
	}
	return []deploy.Outcome{{Kind: "ssm", Target: "/regflow/" + r.Repository, Changed: true}}, nil
}

func (h *handOver) calls() []deploy.Release {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]deploy.Release(nil), h.got...)
}

// Promotion is copy + verify + deploy: the digest the pointer now holds is handed to the
// environment's targets, once; a redelivery of the promoted request deploys nothing more.
func TestPromotionHandsTheDigestOver(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	h := &handOver{}
	st.Promoter.Deployer = h
	digest, _ := pushSigned(t, st, "dev", "shop/web", sha1, 41)
	id := approve(t, st, "staging", "shop/web", digest, sha1)
	res, err := st.Promoter.Promote(ctx, id)
	if err != nil || res.Outcome != "promoted" || len(res.Deployed) != 1 {
		t.Fatalf("promote: %+v, %v", res, err)
	}
	if _, err := st.Promoter.Promote(ctx, id); err != nil {
		t.Fatal(err)
	}
	got := h.calls()
	if len(got) != 1 || got[0].Env != "staging" || got[0].Digest != digest.String() || got[0].Tag != sha1 || got[0].Rollback || got[0].RequestID != id {
		t.Fatalf("deployments %+v, want one of %s to staging", got, digest)
	}
}

// A deployment that keeps failing is retried with the promotion; after the last attempt the
// copy stands (the request is promoted) and the failure is announced once, with an alert.
func TestFailedDeploymentIsRetriedThenAnnounced(t *testing.T) {
	st, ev := start(t)
	ctx := context.Background()
	h := &handOver{fail: errors.New("UpdateService: AccessDeniedException")}
	st.Promoter.Deployer = h
	digest, _ := pushSigned(t, st, "dev", "shop/web", sha1, 42)
	id := approve(t, st, "staging", "shop/web", digest, sha1)
	for i := 1; i < 3; i++ {
		if _, err := st.Promoter.Promote(ctx, id); err == nil {
			t.Fatalf("attempt %d: a failed deployment must be retried", i)
		}
		if r, _ := st.Store.GetRequest(ctx, id); r.Status != regflow.StatusApproved {
			t.Fatalf("after attempt %d the request is %s", i, r.Status)
		}
	}
	res, err := st.Promoter.Promote(ctx, id)
	if err != nil || res.Outcome != "promoted" {
		t.Fatalf("last attempt: %+v, %v", res, err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := ev.count(event.TypeDeploymentFailed); n != 1 {
		t.Fatalf("%d Deployment Failed events, want 1", n)
	}
	if n := len(h.calls()); n != 3 {
		t.Fatalf("%d deployment tries, want 3", n)
	}
}

// A rollback hands the previous digest to the same targets, nothing copied.
func TestRollbackRedeploys(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	h := &handOver{}
	st.Promoter.Deployer = h
	first, _ := pushSigned(t, st, "dev", "shop/web", sha1, 43)
	publishApproved(t, st, approve(t, st, "staging", "shop/web", first, sha1))
	second, _ := pushSigned(t, st, "dev", "shop/web", sha2, 44)
	publishApproved(t, st, approve(t, st, "staging", "shop/web", second, sha2))
	if _, err := st.Promoter.Rollback(ctx, "staging", "shop/web", "", "U0CAROL"); err != nil {
		t.Fatal(err)
	}
	got := h.calls()
	last := got[len(got)-1]
	if len(got) != 3 || last.Digest != first.String() || !last.Rollback {
		t.Fatalf("deployments %+v: want the rollback to hand %s over", got, first)
	}
}

// outcomes is a hand-over whose targets are of one kind each.
type outcomes struct{ kinds []string }

func (o outcomes) Deploy(_ context.Context, r deploy.Release) ([]deploy.Outcome, error) {
	var out []deploy.Outcome
	for _, k := range o.kinds {
		out = append(out, deploy.Outcome{Kind: k, Target: k + "-target", Changed: true})
	}
	return out, nil
}

// An SSM parameter or a Lambda alias runs the release once it is written or moved: the
// hand-over is their outcome and announces "Release Deployed" once, however often the
// promotion is delivered. With an ECS service among the targets, the service's completed
// deployment announces it instead (TestECSDeploymentOutcomes in shared/local/localstack).
func TestReleaseDeployedOnHandOver(t *testing.T) {
	for _, c := range []struct {
		name  string
		kinds []string
		want  int
	}{
		{"ssm and lambda", []string{"ssm", "lambda"}, 1},
		{"ssm only", []string{"ssm"}, 1},
		{"with an ECS service", []string{"ssm", "ecs", "lambda"}, 0},
		{"no targets", nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, ev := start(t)
			st.Promoter.Deployer = outcomes{kinds: c.kinds}
			digest, _ := pushSigned(t, st, "dev", "shop/web", sha1, 41)
			id := approve(t, st, "staging", "shop/web", digest, sha1)
			for range 2 {
				publishApproved(t, st, id)
			}
			if n := ev.count(event.TypeReleaseDeployed); n != c.want {
				t.Fatalf("%d Release Deployed events, want %d", n, c.want)
			}
		})
	}
}
