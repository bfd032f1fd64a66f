package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/scangate"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/tagguard"
)

// The tests in this file each pin a drift between entry points that built a use case their
// own way: the CLI and `regflow invoke` now run what the Lambda functions run.

// variant writes regflow.yaml with each old→new replacement applied and returns its path.
func variant(t *testing.T, replace ...string) string {
	t.Helper()
	raw, err := os.ReadFile("../../regflow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("regflow.yaml lacks %q", replace[i])
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	p := filepath.Join(t.TempDir(), "regflow.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInvokeTagguardPublishesViolations: `regflow invoke tagguard` published no "Tag Policy
// Violation" (only the Lambda and the local stack did).
func TestInvokeTagguardPublishesViolations(t *testing.T) {
	f := startStack(t)
	digest := f.push(t, strings.Repeat("ab", 20))
	push := map[string]any{"version": "0", "id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "detail-type": event.TypeImageAction, "source": event.SourceECR,
		"account": "111111111111", "time": time.Now().UTC().Format(time.RFC3339), "region": "us-east-1", "resources": []string{},
		"detail": map[string]any{"result": "SUCCESS", "repository-name": repo, "image-digest": digest, "action-type": "PUSH", "image-tag": "latest"}}
	var res tagguard.Result
	f.okJSON(t, &res, "invoke", "tagguard", "--event", writeJSON(t, push))
	if res.Violation == "" {
		t.Fatalf("invoke tagguard: %+v", res)
	}
	f.settle(t)
	got := f.events(event.TypeTagPolicyViolation)
	if len(got) != 1 {
		t.Fatalf("%d Tag Policy Violation events on the bus after invoke, want 1", len(got))
	}
	var v event.TagPolicyViolation
	if err := json.Unmarshal(got[0].Detail, &v); err != nil || v.Tag != "latest" || v.Digest != digest {
		t.Fatalf("violation detail %s: %v", got[0].Detail, err)
	}
}

// TestInvokeApprovalsAsTheFunction: the CLI's approvals ignored pipeline.slackTeam and never
// replied through response_url.
func TestInvokeApprovalsAsTheFunction(t *testing.T) {
	var mu sync.Mutex
	var replies []string
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		replies = append(replies, string(b))
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	defer hooks.Close()
	t.Setenv(slackbot.EnvResponseURLPrefixes, hooks.URL+"/actions/")

	f := startStackWith(t, variant(t, "# slackTeam: T0123ABCD", "slackTeam: T0OURS"))
	digest := f.push(t, strings.Repeat("cd", 20))
	r := f.scan(t, digest)
	invoke := func(team, user string, n int) events.APIGatewayV2HTTPResponse {
		t.Helper()
		click := apiGatewayClickFrom(t, f.signingSecret(t), team, user, r.ID, hooks.URL+"/actions/"+team+"/1/abc", n)
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal([]byte(f.ok(t, "invoke", "approvals", "--event", writeJSON(t, click))), &resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := invoke("T0THEIRS", "U0ALICE", 1); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a click from another workspace: HTTP %d %s", resp.StatusCode, resp.Body)
	}
	if got := f.request(t, "staging", digest); got.Status != regflow.StatusPending || len(got.Approvals) != 0 {
		t.Fatalf("a refused click changed the request: %+v", got)
	}
	resp := invoke("T0OURS", "U0ALICE", 2)
	if resp.StatusCode != http.StatusOK || resp.Headers[approvals.HeaderOutcome] != string(approvals.KindApproved) {
		t.Fatalf("approve: HTTP %d %q %s", resp.StatusCode, resp.Headers[approvals.HeaderOutcome], resp.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(replies) != 1 || !strings.Contains(replies[0], "Approved") {
		t.Fatalf("replies through response_url: %q", replies)
	}
}

// TestInvokeScangateByAccountAndRegion: with two environments in one account (different
// regions), the CLI's scan gate read the first environment's registry.
func TestInvokeScangateByAccountAndRegion(t *testing.T) {
	path := variant(t,
		"  staging:\n    account: \"222222222222\"\n    promotionRole: arn:aws:iam::222222222222:role/regflow-promotion",
		"  staging:\n    account: \"111111111111\"\n    region: eu-west-1\n    promotionRole: arn:aws:iam::111111111111:role/regflow-promotion")
	f := startStackWith(t, path)
	staging := f.st.Info().Environments["staging"]
	if staging.Account != "111111111111" || staging.Region != "eu-west-1" {
		t.Fatalf("staging = %+v", staging)
	}
	// An image only staging's registry has.
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("ef", 20)
	ref, err := name.ParseReference(staging.Registry+"/"+repo+":"+sha, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(context.Background())); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	digest := digestOf(t, img)
	// As if promoted there: only a digest that came by promotion moves on.
	if err := f.st.Store.PutRelease(context.Background(), regflow.Release{Env: "staging", Repository: repo, Digest: digest, Tag: sha, Version: 1}); err != nil {
		t.Fatal(err)
	}
	scan := map[string]any{"version": "0", "id": "8b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", "detail-type": event.TypeImageScan, "source": event.SourceECR,
		"account": "111111111111", "time": time.Now().UTC().Format(time.RFC3339), "region": "eu-west-1",
		"resources": []string{"arn:aws:ecr:eu-west-1:111111111111:repository/" + repo},
		"detail": map[string]any{"scan-status": "COMPLETE", "repository-name": repo, "image-digest": digest, "image-tags": []string{sha},
			"finding-severity-counts": map[string]int{}}}
	var res scangate.Result
	f.okJSON(t, &res, "invoke", "scangate", "--event", writeJSON(t, scan))
	if res.Env != "staging" || res.Next != "prod" || res.Ignored {
		t.Fatalf("scan in staging's region: %+v", res)
	}
}
