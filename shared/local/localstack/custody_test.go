package localstack_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/store"
)

// craneBinary finds crane on PATH or under .tools/bin (make tools), or skips (fails in CI).
func craneBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("crane"); err == nil {
		return p
	}
	if root, err := testenv.RepoRoot(); err == nil {
		p := filepath.Join(root, ".tools", "bin", "crane")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "crane not found: run `make tools`")
	return ""
}

// slackLog keeps every message the Slack stand-in saw.
type slackLog struct {
	mu   sync.Mutex
	msgs []slacklocal.Message
}

func (l *slackLog) add(m slacklocal.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, m)
}

func (l *slackLog) in(channel string) []slacklocal.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []slacklocal.Message
	for _, m := range l.msgs {
		if m.Channel == channel {
			out = append(out, m)
		}
	}
	return out
}

// scanThere asks the environment's local ECR to scan repo@digest through the ECR API, as
// `aws ecr start-image-scan` does.
func scanThere(ctx context.Context, t *testing.T, st *localstack.Stack, env, repo, digest string) {
	t.Helper()
	if _, err := st.ECRClient(env).StartImageScan(ctx, &ecrsdk.StartImageScanInput{
		RepositoryName: aws.String(repo), ImageId: &types.ImageIdentifier{ImageDigest: aws.String(digest)},
	}); err != nil {
		t.Fatalf("start-image-scan in %s: %v", env, err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCustodyDirectPushIntoStagingOpensNoProdRequest: an image crane pushes straight into
// staging's registry, scanned there and reported verified, opens nothing for prod; an
// audit entry and an alert name it. A digest that came through dev's gate and staging's
// approval, reported the same way, opens prod's request.
func TestCustodyDirectPushIntoStagingOpensNoProdRequest(t *testing.T) {
	crane := craneBinary(t)
	ctx := context.Background()
	slack := &slackLog{}
	st, err := localstack.Start(ctx, localstack.Options{Config: loadConfig(t), Dir: t.TempDir(), OnSlack: slack.add})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const repo = "shop/web"
	staging := st.Config.Environments["staging"]

	// 1. Straight into staging, with the crane binary, tagged like a real build.
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	tar := filepath.Join(t.TempDir(), "image.tar")
	tag, _ := name.NewTag("shop/web:latest")
	if err := tarball.WriteToFile(tar, tag, img); err != nil {
		t.Fatal(err)
	}
	const sha = "1111111111222222222233333333334444444444"
	ref := st.Info().Environments["staging"].Registry + "/" + repo + ":" + sha
	if out, err := exec.Command(crane, "push", "--insecure", tar, ref).CombinedOutput(); err != nil {
		t.Fatalf("crane push into staging: %v\n%s", err, out)
	}
	d, _ := img.Digest()
	direct := d.String()
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	scanThere(ctx, t, st, "staging", repo, direct)
	res, err := st.Gate.Verify(ctx, regflow.Verification{Env: "staging", Repository: repo, Digest: direct, Passed: true, By: "deploy-bot", At: st.Clock.Now()})
	if err != nil {
		t.Fatalf("verify staging --passed: %v", err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if res.RequestID != "" {
		t.Errorf("verify opened %s (%s) for a digest pushed straight into staging", res.RequestID, res.Status)
	}
	if r, err := st.Store.GetRequest(ctx, regflow.RequestID("prod", repo, direct)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("prod request for a digest pushed straight into staging: %+v, %v", r, err)
	}
	trail, err := st.Store.Audit(ctx, repo+"@"+direct)
	if err != nil {
		t.Fatal(err)
	}
	var refused int
	for _, e := range trail {
		if e.Action == event.ActionCustodyRefused {
			refused++
			if e.Details["account"] != staging.Account || e.Details["env"] != "staging" {
				t.Errorf("custody entry should name staging's account: %+v", e)
			}
		}
	}
	if refused == 0 {
		t.Fatalf("no %s audit entry for %s@%s; trail: %+v", event.ActionCustodyRefused, repo, direct, trail)
	}
	var alerted bool
	for _, m := range slack.in(st.Config.Alerts.SlackChannel) {
		if strings.Contains(m.Text, "pushed directly into staging") && strings.Contains(m.Text, "did not pass dev's gate") {
			alerted = true
			all := m.Text + blocksText(m)
			for _, want := range []string{repo, regflow.ShortDigest(direct), staging.Account} {
				if !strings.Contains(all, want) {
					t.Errorf("custody alert lacks %q: %s", want, all)
				}
			}
		}
	}
	if !alerted {
		t.Fatalf("no custody alert in %s: %+v", st.Config.Alerts.SlackChannel, slack.in(st.Config.Alerts.SlackChannel))
	}

	// 2. The same steps for a digest that came through dev's gate and staging's approval.
	promoted := pushToDevAndPromote(ctx, t, st, repo)
	scanThere(ctx, t, st, "staging", repo, promoted)
	res, err = st.Gate.Verify(ctx, regflow.Verification{Env: "staging", Repository: repo, Digest: promoted, Passed: true, By: "deploy-bot", Requester: "U0ALICE", At: st.Clock.Now()})
	if err != nil {
		t.Fatalf("verify staging --passed: %v", err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	prod, err := st.Store.GetRequest(ctx, regflow.RequestID("prod", repo, promoted))
	if err != nil || prod.Status != regflow.StatusPending {
		t.Fatalf("a promoted digest should open prod's request: %+v, %v (verify said %+v)", prod, err, res)
	}
}

// pushToDevAndPromote pushes a SHA-tagged image into dev, scans it and approves staging's
// request, returning the digest once staging runs it.
func pushToDevAndPromote(ctx context.Context, t *testing.T, st *localstack.Stack, repo string) string {
	t.Helper()
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	const sha = "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd"
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
	id := regflow.RequestID("staging", repo, d.String())
	if res, err := st.Click(ctx, "U0BOB", slackmsg.ActionApprove, id); err != nil || res.Outcome != "approved" {
		t.Fatalf("approve staging: %+v, %v", res, err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if rel, err := st.Store.GetRelease(ctx, "staging", repo); err != nil || rel.Digest != d.String() {
		t.Fatalf("staging should run %s: %+v, %v", d, rel, err)
	}
	return d.String()
}

func blocksText(m slacklocal.Message) string {
	raw, _ := m.Blocks.MarshalJSON()
	return string(raw)
}
