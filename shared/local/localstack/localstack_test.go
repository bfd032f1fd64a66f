package localstack_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/regflow"
)

func loadConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "..", "..", "regflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCranePushOfLatestIsUndone pushes the way a user would (go-containerregistry, as crane does)
// and waits for the guard to remove the tag.
func TestCranePushOfLatestIsUndone(t *testing.T) {
	ctx := context.Background()
	alerts := make(chan slacklocal.Message, 4)
	st, err := localstack.Start(ctx, localstack.Options{Config: loadConfig(t), Dir: t.TempDir(), OnSlack: func(m slacklocal.Message) { alerts <- m }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dev := st.Info().Environments["dev"]

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	const sha = "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd"
	for _, tag := range []string{sha, "latest"} {
		ref, err := name.ParseReference(dev.Registry+"/shop/web:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	digest, _ := img.Digest()
	reg := st.Registry("dev")
	start := time.Now()
	deadline := start.Add(time.Second)
	for {
		if _, err := reg.DigestOf(ctx, "shop/web", "latest"); errors.Is(err, regflow.ErrImageNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("latest was still there a second after the push")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("latest removed %v after the push returned", time.Since(start).Round(time.Millisecond))
	select {
	case m := <-alerts:
		if m.Channel != "C0ALERTS" {
			t.Errorf("alert went to %s", m.Channel)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no alert")
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := st.Store.GetImage(ctx, "shop/web", digest.String())
	if err != nil || rec.Commit != sha {
		t.Fatalf("recorded %+v, %v", rec, err)
	}
	if m, _ := reg.TagMutability(ctx, "shop/web"); m.Mode != regflow.Immutable {
		t.Fatalf("repository is %s", m.Mode)
	}
}

// TestClicksFromAnotherWorkspaceAreRefused: with pipeline.slackTeam set, a correctly signed
// click from another workspace changes nothing.
func TestClicksFromAnotherWorkspaceAreRefused(t *testing.T) {
	ctx := context.Background()
	cfg := loadConfig(t)
	cfg.Pipeline.SlackTeam = "T0OURS"
	st, err := localstack.Start(ctx, localstack.Options{Config: cfg, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	const sha = "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd"
	ref, _ := name.ParseReference(st.Info().Environments["dev"].Registry+"/shop/web:"+sha, name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.ECR["dev"].InjectScan("shop/web", d.String()); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	id := regflow.RequestID("staging", "shop/web", d.String())
	res, err := st.ClickFrom(ctx, "T0THEIRS", "U0BOB", "regflow_approve", id)
	if err != nil || res.Status != 403 {
		t.Fatalf("click from another workspace: %+v, %v", res, err)
	}
	if req, _ := st.Store.GetRequest(ctx, id); req.Status != regflow.StatusPending || len(req.Approvals) != 0 {
		t.Fatalf("request changed: %+v", req)
	}
	// The stand-in's own clicks come from the configured workspace (they came from T0LOCAL
	// and were refused once slackTeam was set).
	res, err = st.Click(ctx, "U0BOB", "regflow_approve", id)
	if err != nil || res.Status != 200 || res.Outcome == "refused" {
		t.Fatalf("the stack's own click: %+v, %v", res, err)
	}
	if req, _ := st.Store.GetRequest(ctx, id); len(req.Approvals) != 1 {
		t.Fatalf("the stack's own click was not recorded: %+v", req)
	}
}
