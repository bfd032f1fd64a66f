package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localbus"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/promoter"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/scangate"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/slacksig"
)

const repo = "shop/web"

// fixture is a local stack started in the test, as `regflow local` runs it.
type fixture struct {
	st  *localstack.Stack
	dir string
	// config is the --config the stack and the CLI share.
	config string
	// seen records regflow events that reached the stack's bus.
	mu   sync.Mutex
	seen []event.Envelope
}

func startStack(t *testing.T) *fixture { t.Helper(); return startStackWith(t, "../../regflow.yaml") }

// startStackWith starts a local stack on the config at path.
func startStackWith(t *testing.T, path string) *fixture {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: t.TempDir(), config: path}
	st, err := localstack.Start(context.Background(), localstack.Options{Config: cfg, Dir: f.dir, SharedStore: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	f.st = st
	st.Bus.Subscribe(localbus.Rule{Name: "test", Sources: []string{event.SourceRegflow}}, func(_ context.Context, ev []byte) error {
		e, err := event.Parse(ev)
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.seen = append(f.seen, e)
		f.mu.Unlock()
		return nil
	})
	f.wireLocalJSON(t, cfg)
	return f
}

// testSigningSecret signs Slack clicks when the stack does not publish a secret of its own.
const testSigningSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// wireLocalJSON gives the stack an EventBridge endpoint and a Slack signing secret when
// local.json lacks them, exactly as the local stack is to provide them itself.
func (f *fixture) wireLocalJSON(t *testing.T, cfg *config.Config) {
	path := filepath.Join(f.dir, "local.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["eventsEndpoint"] == nil || doc["eventsEndpoint"] == "" {
		lb := localbus.New(f.st.Publisher.PublishJSON, localbus.WithAccount(cfg.Pipeline.Account),
			localbus.WithRegion(cfg.Pipeline.Region), localbus.WithBus(cfg.Pipeline.EventBus))
		if err := lb.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lb.Close() })
		doc["eventsEndpoint"] = lb.URL()
	}
	if doc["slackSigningSecret"] == nil || doc["slackSigningSecret"] == "" {
		doc["slackSigningSecret"] = testSigningSecret
	}
	out, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) signingSecret(t *testing.T) []byte {
	var info localInfo
	raw, _ := os.ReadFile(filepath.Join(f.dir, "local.json"))
	if err := json.Unmarshal(raw, &info); err != nil {
		t.Fatal(err)
	}
	return []byte(info.SlackSigningSecret)
}

func (f *fixture) settle(t *testing.T) {
	t.Helper()
	if err := f.st.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// push writes a small random image to dev tagged with a commit SHA and waits for regflow.
func (f *fixture) push(t *testing.T, sha string) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(f.st.Info().Environments["dev"].Registry+"/"+repo+":"+sha, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(context.Background())); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	return digestOf(t, img)
}

func digestOf(t *testing.T, img v1.Image) string {
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// scan delivers dev's scan result, which opens (or blocks) staging's request.
func (f *fixture) scan(t *testing.T, digest string, findings ...localecr.Finding) regflow.ApprovalRequest {
	t.Helper()
	if err := f.st.ECR["dev"].InjectScan(repo, digest, findings...); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	return f.request(t, "staging", digest)
}

func (f *fixture) request(t *testing.T, env, digest string) regflow.ApprovalRequest {
	t.Helper()
	r, err := f.st.Store.GetRequest(context.Background(), regflow.RequestID(env, repo, digest))
	if err != nil {
		t.Fatalf("%s request for %s: %v", env, regflow.ShortDigest(digest), err)
	}
	return r
}

// approve records approvals in the store without announcing them (no promotion follows).
func (f *fixture) approve(t *testing.T, r regflow.ApprovalRequest, users ...string) regflow.ApprovalRequest {
	t.Helper()
	var err error
	for _, u := range users {
		if r, err = r.Approve(u, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.st.Store.UpdateRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// promote approves and promotes through the stack's promoter.
func (f *fixture) promote(t *testing.T, r regflow.ApprovalRequest, users ...string) {
	t.Helper()
	r = f.approve(t, r, users...)
	res, err := f.st.Promoter.Promote(context.Background(), r.ID)
	if err != nil || res.Outcome != "promoted" {
		t.Fatalf("promote %s: %+v %v", r.ID, res, err)
	}
	f.settle(t)
}

func (f *fixture) events(detailType string) []event.Envelope {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []event.Envelope
	for _, e := range f.seen {
		if e.DetailType == detailType {
			out = append(out, e)
		}
	}
	return out
}

// cli runs regflow against the fixture's stack, returning stdout and stderr apart.
func (f *fixture) cli(args ...string) (string, string, error) {
	return cliWith(f.dir, f.config, args...)
}

func cliIn(dir string, args ...string) (string, string, error) {
	return cliWith(dir, "../../regflow.yaml", args...)
}

func cliWith(dir, config string, args ...string) (string, string, error) {
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"--local", "--state-dir", dir, "--config", config}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func (f *fixture) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := f.cli(args...)
	if err != nil {
		t.Fatalf("regflow %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (f *fixture) okJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := f.ok(t, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("regflow %s --json printed no JSON (%v):\n%s", strings.Join(args, " "), err, out)
	}
}

func contains(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

const (
	shaA = "aaaaaaaaaa1111111111aaaaaaaaaa1111111111"
	shaB = "bbbbbbbbbb2222222222bbbbbbbbbb2222222222"
	shaC = "cccccccccc3333333333cccccccccc3333333333"
	shaD = "dddddddddd4444444444dddddddddd4444444444"
)

// TestOperatorCommands drives every command against a local stack: two releases reach
// staging, one image is blocked, verifications open prod, clicks and a promoter run
// through `invoke`, and rollbacks move pointers.
func TestOperatorCommands(t *testing.T) {
	f := startStack(t)
	t.Setenv("USER", "tester")
	ctx := context.Background()

	digA := f.push(t, shaA)
	f.promote(t, f.scan(t, digA), "U0ALICE")
	digB := f.push(t, shaB)
	f.promote(t, f.scan(t, digB), "U0BOB")
	digC := f.push(t, shaC)
	if r := f.scan(t, digC, localecr.Finding{Name: "CVE-2026-0001", Severity: "CRITICAL"}); r.Status != regflow.StatusBlocked {
		t.Fatalf("C in staging is %s, want blocked", r.Status)
	}
	// Promotion to staging scanned each digest there; prod needs a verification first.
	for _, d := range []string{digA, digB} {
		if r := f.request(t, "prod", d); r.Status != regflow.StatusWaiting {
			t.Fatalf("prod request for %s is %s, want waiting", regflow.ShortDigest(d), r.Status)
		}
	}

	t.Run("status", func(t *testing.T) {
		out := f.ok(t, "status")
		contains(t, out, "ENV", "staging", repo, regflow.ShortDigest(digB), shaB, "U0BOB", regflow.ShortDigest(digA))
		var rels []regflow.Release
		f.okJSON(t, &rels, "status", repo)
		if len(rels) != 1 || rels[0].Env != "staging" || rels[0].Digest != digB || rels[0].Tag != shaB || rels[0].By != "U0BOB" ||
			len(rels[0].Previous) != 1 || rels[0].Previous[0] != digA {
			t.Fatalf("status --json: %+v", rels)
		}
		contains(t, f.ok(t, "status", repo), "prod", "not released")
		f.okJSON(t, &rels, "status", "no/such-repo")
		if len(rels) != 0 {
			t.Fatalf("unknown repository: %+v", rels)
		}
	})

	t.Run("approvals before verification", func(t *testing.T) {
		contains(t, f.ok(t, "approvals"), "No pending approval requests.")
		var reqs []regflow.ApprovalRequest
		f.okJSON(t, &reqs, "approvals", "--all")
		got := map[string]string{}
		for _, r := range reqs {
			got[r.Env+"/"+r.Digest] = r.Status
		}
		want := map[string]string{"prod/" + digA: regflow.StatusWaiting, "prod/" + digB: regflow.StatusWaiting, "staging/" + digC: regflow.StatusBlocked}
		if len(got) != len(want) {
			t.Fatalf("approvals --all: %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("approvals --all: %s is %q, want %q", k, got[k], v)
			}
		}
		f.okJSON(t, &reqs, "approvals", "--all", "--env", "staging")
		if len(reqs) != 1 || reqs[0].Digest != digC {
			t.Fatalf("approvals --all --env staging: %+v", reqs)
		}
		contains(t, f.ok(t, "approvals", "--all"), "STATUS", "REASON", "blocked", "waiting", "CRITICAL")
	})

	t.Run("verify", func(t *testing.T) {
		out := f.ok(t, "verify", "staging", repo+"@"+digB, "--passed", "--url", "https://ci.example.com/runs/42", "--as", "ci@example.com")
		contains(t, out, "passed in staging", "ci@example.com", "prod: approval request "+regflow.RequestID("prod", repo, digB)+" is pending")
		// --as signs the report; it names no requester (approvals.requesters maps verified identities).
		if r := f.request(t, "prod", digB); r.Status != regflow.StatusPending || r.RequestedBy != "" {
			t.Fatalf("prod request after the pass: %s requested by %q", r.Status, r.RequestedBy)
		}
		// The default identity against the local stack is $USER@local; a failure blocks prod.
		var v verified
		f.okJSON(t, &v, "verify", "staging", repo+"@"+digA, "--failed")
		if v.Verification.By != "tester@local" || v.Verification.Passed || v.Result.Next != "prod" || v.Result.Status != regflow.StatusBlocked {
			t.Fatalf("verify --failed --json: %+v", v)
		}
		got, err := f.st.Store.GetVerification(ctx, "staging", repo, digA)
		if err != nil || got.Passed || got.By != "tester@local" {
			t.Fatalf("stored verification %+v %v", got, err)
		}
		// Verifying a digest the environment does not run says so; one that never reached it by
		// promotion opens nothing (custody).
		_, errOut, err := f.cli("verify", "staging", repo+"@"+digC, "--failed")
		if err != nil || !strings.Contains(errOut, "note: staging runs "+repo+"@"+regflow.ShortDigest(digB)) {
			t.Fatalf("verify of a digest staging does not run: %v\n%s", err, errOut)
		}
	})

	t.Run("approvals", func(t *testing.T) {
		out := f.ok(t, "approvals")
		contains(t, out, "ID", "APPROVALS", "EXPIRES", regflow.RequestID("prod", repo, digB), "prod", shaB, regflow.ShortDigest(digB), "0/2", "(in 7")
		var reqs []regflow.ApprovalRequest
		f.okJSON(t, &reqs, "approvals", "--env", "prod")
		if len(reqs) != 1 || reqs[0].Digest != digB || reqs[0].Required != 2 || reqs[0].Status != regflow.StatusPending {
			t.Fatalf("approvals --env prod --json: %+v", reqs)
		}
		contains(t, f.ok(t, "approvals", "--env", "staging"), "No pending approval requests for staging.")
	})

	t.Run("invoke approvals", func(t *testing.T) {
		id := regflow.RequestID("prod", repo, digB)
		steps := []struct {
			user    string
			status  int
			outcome approvals.Kind
		}{
			{"U0ALICE", http.StatusOK, approvals.KindVoted},
			{"U0ALICE", http.StatusOK, approvals.KindRefused}, // one person, one vote
			{"U0MALLORY", http.StatusOK, approvals.KindRefused},
			{"U0BOB", http.StatusOK, approvals.KindApproved},
		}
		for i, s := range steps {
			file := writeJSON(t, apiGatewayClick(t, f.signingSecret(t), s.user, id, i))
			out := f.ok(t, "invoke", "approvals", "--event", file)
			var resp events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal([]byte(out), &resp); err != nil {
				t.Fatalf("invoke approvals printed %s: %v", out, err)
			}
			if resp.StatusCode != s.status || resp.Headers[approvals.HeaderOutcome] != string(s.outcome) {
				t.Fatalf("click %d by %s: %d %q, want %d %q\n%s", i, s.user, resp.StatusCode, resp.Headers[approvals.HeaderOutcome], s.status, s.outcome, resp.Body)
			}
		}
		// The approval went out through the local EventBridge endpoint; the stack's promoter copied B to prod.
		f.settle(t)
		if n := len(f.events(event.TypePromotionApproved)); n != 1 {
			t.Fatalf("%d Promotion Approved events on the stack's bus, want 1", n)
		}
		var rels []regflow.Release
		f.okJSON(t, &rels, "status", repo)
		if len(rels) != 2 || rels[1].Env != "prod" || rels[1].Digest != digB || rels[1].By != "U0ALICE,U0BOB" {
			t.Fatalf("after approval: %+v", rels)
		}
		// A stale signature is refused, as in AWS.
		stale := apiGatewayClick(t, f.signingSecret(t), "U0CAROL", id, 9)
		stale.Headers["x-slack-request-timestamp"] = "1500000000"
		out := f.ok(t, "invoke", "approvals", "--event", writeJSON(t, stale))
		if !strings.Contains(out, `"statusCode": 401`) {
			t.Fatalf("stale signature: %s", out)
		}
	})

	var digD string
	t.Run("invoke promoter", func(t *testing.T) {
		digD = f.push(t, shaD)
		r := f.approve(t, f.scan(t, digD), "U0CAROL")
		ev, err := event.Message{Detail: event.PromotionDecision{
			RequestID: r.ID, Env: "staging", Repository: repo, Digest: digD, Decision: regflow.StatusApproved, DecidedBy: "U0CAROL", At: time.Now()},
			Key: r.ID + "#approved", At: time.Now()}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		file := writeJSON(t, json.RawMessage(ev))
		var res promoter.Result
		f.okJSON(t, &res, "invoke", "promoter", "--event", file)
		if res.Outcome != "promoted" || res.Copy.Digest.String() != digD {
			t.Fatalf("invoke promoter: %+v", res)
		}
		rel, err := f.st.Store.GetRelease(ctx, "staging", repo)
		if err != nil || rel.Digest != digD || rel.Previous[0] != digB {
			t.Fatalf("staging after invoke: %+v %v", rel, err)
		}
		f.settle(t)
		// Redelivery does nothing. (A result without a copy carries a zero digest that
		// does not decode into promoter.Result, so read it as plain JSON.)
		var again map[string]any
		f.okJSON(t, &again, "invoke", "promoter", "--event", file)
		if again["outcome"] != "already-promoted" {
			t.Fatalf("second invoke: %+v", again)
		}
	})

	t.Run("invoke scangate and tagguard", func(t *testing.T) {
		verification := map[string]any{"version": "0", "id": "5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f", "detail-type": event.TypeVerificationResult,
			"source": "acme.deploy", "account": "222222222222", "time": time.Now().UTC().Format(time.RFC3339), "region": "us-east-1", "resources": []string{},
			"detail": map[string]any{"env": "staging", "repository": repo, "digest": digD, "passed": false, "reportedBy": "deploy-pipeline"}}
		var res scangate.Result
		f.okJSON(t, &res, "invoke", "scangate", "--event", writeJSON(t, verification))
		if res.Env != "staging" || res.Next != "prod" {
			t.Fatalf("invoke scangate: %+v", res)
		}
		if v, err := f.st.Store.GetVerification(ctx, "staging", repo, digD); err != nil || v.By != "deploy-pipeline (account 222222222222)" {
			t.Fatalf("verification from the event: %+v %v", v, err)
		}
		push := map[string]any{"version": "0", "id": "6e7b1c1a-5d1e-4d3c-9a7e-0c2d3f4a5b61", "detail-type": "ECR Image Action", "source": "aws.ecr",
			"account": "111111111111", "time": time.Now().UTC().Format(time.RFC3339), "region": "us-east-1", "resources": []string{},
			"detail": map[string]any{"result": "SUCCESS", "repository-name": repo, "image-digest": digA, "action-type": "PUSH", "image-tag": shaA}}
		out, errOut, err := f.cli("invoke", "tagguard", "--event", writeJSON(t, push))
		if err != nil || !json.Valid([]byte(out)) || !strings.Contains(errOut, "tagguard finished in") {
			t.Fatalf("invoke tagguard: %v\n%s\n%s", err, out, errOut)
		}
		contains(t, out, `"recorded": true`)
	})

	t.Run("history", func(t *testing.T) {
		var h imageHistory
		f.okJSON(t, &h, "history", repo+"@"+digB)
		if h.Image == nil || h.Image.Commit != shaB {
			t.Fatalf("history image: %+v", h.Image)
		}
		actions := map[string]bool{}
		for i, e := range h.Audit {
			actions[e.Action] = true
			if i > 0 && e.Time.Before(h.Audit[i-1].Time) {
				t.Fatalf("entry %d (%s) is older than the one before: history must be oldest first", i, e.Action)
			}
		}
		for _, a := range []string{event.ActionImageRecorded, "verification.passed", "image.promoted", event.ActionApprovalVoted, event.ActionApprovalApproved, event.ActionApprovalRefused} {
			if !actions[a] {
				t.Errorf("history lacks %s: %v", a, actions)
			}
		}
		if h.Audit[0].Action != event.ActionImageRecorded {
			t.Errorf("first entry is %s, want the push record", h.Audit[0].Action)
		}
		out := f.ok(t, "history", repo+"@"+digB)
		contains(t, out, repo+"@"+digB, "commit "+shaB, "TIME (UTC)", "image.recorded", "verification.passed", "ci@example.com", "url=https://ci.example.com/runs/42")
		if strings.Index(out, "image.recorded") > strings.Index(out, "verification.passed") {
			t.Errorf("table is not oldest first:\n%s", out)
		}
	})

	t.Run("rollback", func(t *testing.T) {
		before := len(f.events(event.TypeReleaseRolledBack))
		out, errOut, err := f.cli("rollback", "staging", repo)
		if err != nil {
			t.Fatalf("rollback: %v\n%s", err, errOut)
		}
		contains(t, out, "staging "+repo+": "+regflow.ShortDigest(digD)+" → "+regflow.ShortDigest(digB), "by tester@local", "nothing copied")
		contains(t, errOut, "rolling staging "+repo+" back to the previous release")
		var rb rolledBack
		f.okJSON(t, &rb, "rollback", "staging", repo, "--to", digA, "--as", "oncall@example.com")
		if rb.From != digB || rb.To != digA || rb.By != "oncall@example.com" || rb.Tag != shaA {
			t.Fatalf("rollback --json: %+v", rb)
		}
		rel, err := f.st.Store.GetRelease(ctx, "staging", repo)
		if err != nil || rel.Digest != digA {
			t.Fatalf("staging after rollbacks: %+v %v", rel, err)
		}
		// Each rollback reached the stack's bus through the local EventBridge endpoint.
		f.settle(t)
		got := f.events(event.TypeReleaseRolledBack)
		if len(got) != before+2 {
			t.Fatalf("%d Release Rolled Back events, want %d", len(got), before+2)
		}
		var d event.ReleaseRolledBack
		if err := json.Unmarshal(got[len(got)-1].Detail, &d); err != nil || d.To != digA || d.By != "oncall@example.com" {
			t.Fatalf("last rollback event: %+v %v", d, err)
		}
		if e := got[len(got)-1]; e.AccountID != "111111111111" || e.Region != "us-east-1" {
			t.Fatalf("event account %s region %s", e.AccountID, e.Region)
		}
		contains(t, f.ok(t, "history", repo+"@"+digA), "release.rolled-back", "oncall@example.com")
	})

	t.Run("errors", func(t *testing.T) {
		ref := repo + "@" + digA
		tests := []struct {
			name string
			args []string
			want []string
		}{
			{"passed and failed", []string{"verify", "staging", ref, "--passed", "--failed"}, []string{"passed", "failed", "none of the others"}},
			{"neither passed nor failed", []string{"verify", "staging", ref}, []string{"passed", "failed", "required"}},
			{"unknown env in verify", []string{"verify", "qa", ref, "--passed"}, []string{`unknown environment "qa"`, "dev, staging, prod"}},
			{"unknown env in approvals", []string{"approvals", "--env", "qa"}, []string{`unknown environment "qa"`}},
			{"unknown env in rollback", []string{"rollback", "qa", repo}, []string{`unknown environment "qa"`}},
			{"short digest", []string{"history", repo + "@sha256:abc"}, []string{"bad digest", "64"}},
			{"no digest", []string{"history", repo}, []string{"bad image reference", "<repository>@sha256:"}},
			{"uppercase digest", []string{"verify", "staging", repo + "@sha256:" + strings.ToUpper(digA[7:]), "--passed"}, []string{"bad digest"}},
			{"bad --to", []string{"rollback", "staging", repo, "--to", "latest"}, []string{"--to", "bad digest"}},
			{"bad --url", []string{"verify", "staging", ref, "--passed", "--url", "ci/runs/1"}, []string{"bad --url"}},
			{"unknown digest", []string{"history", repo + "@sha256:" + strings.Repeat("0", 64)}, []string{"no record", "regflow status"}},
			{"verify unknown digest", []string{"verify", "staging", repo + "@sha256:" + strings.Repeat("0", 64), "--passed"}, []string{"no record"}},
			{"rollback without previous", []string{"rollback", "prod", repo}, []string{"no previous release"}},
			{"rollback of nothing", []string{"rollback", "prod", "no/such-repo"}, []string{"has no release of no/such-repo"}},
			{"rollback to a digest not there", []string{"rollback", "prod", repo, "--to", digC}, []string{"must already be in prod's registry"}},
			{"unknown function", []string{"invoke", "nosuch", "--event", "x.json"}, []string{`unknown function "nosuch"`, "tagguard, scangate, approvals, promoter, sweeper, sweepworker"}},
			{"invoke without event", []string{"invoke", "tagguard"}, []string{"event", "not set"}},
			{"invoke event not JSON", []string{"invoke", "tagguard", "--event", writeFile(t, "nope")}, []string{"is not JSON"}},
			{"invoke missing file", []string{"invoke", "tagguard", "--event", "/nonexistent/event.json"}, []string{"read event", "no such file"}},
			{"invoke approvals on a non-HTTP event", []string{"invoke", "approvals", "--event", writeFile(t, `{"detail-type":"x"}`)}, []string{"API Gateway HTTP API"}},
			{"invoke scangate on garbage", []string{"invoke", "scangate", "--event", writeFile(t, `{"source":"aws.ecr"}`)}, []string{"scangate failed"}},
			{"too many args", []string{"status", repo, "other"}, []string{"accepts at most 1 arg"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				out, _, err := f.cli(tt.args...)
				if err == nil {
					t.Fatalf("regflow %s succeeded:\n%s", strings.Join(tt.args, " "), out)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
			})
		}
	})
}

// TestLocalStackMissing: every command against a state dir without local.json says
// to start `regflow local`.
func TestLocalStackMissing(t *testing.T) {
	dir := t.TempDir()
	digest := "sha256:" + strings.Repeat("a", 64)
	for _, args := range [][]string{
		{"status"}, {"history", repo + "@" + digest}, {"approvals"}, {"verify", "staging", repo + "@" + digest, "--passed"},
		{"rollback", "prod", repo}, {"invoke", "tagguard", "--event", writeFile(t, "{}")},
	} {
		_, _, err := cliIn(dir, args...)
		if err == nil || !strings.Contains(err.Error(), "start it with `regflow local`") || !strings.Contains(err.Error(), filepath.Join(dir, "local.json")) {
			t.Errorf("regflow %s without a local stack: %v", args[0], err)
		}
	}
}

// TestStaleLocalStack: a local.json left behind by a stopped stack gives a hint, not just
// "connection refused"; one from another config is refused up front.
func TestStaleLocalStack(t *testing.T) {
	f := startStack(t)
	digA := f.push(t, shaA)
	f.promote(t, f.scan(t, digA), "U0ALICE")
	digB := f.push(t, shaB)
	f.promote(t, f.scan(t, digB), "U0ALICE")

	raw, err := os.ReadFile(filepath.Join(f.dir, "local.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	stale := t.TempDir()
	// Same store, but registries nobody listens on.
	for _, e := range doc["environments"].(map[string]any) {
		e.(map[string]any)["ecrEndpoint"] = "http://127.0.0.1:1"
	}
	write := func(doc map[string]any) {
		b, _ := json.Marshal(doc)
		if err := os.WriteFile(filepath.Join(stale, "local.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(doc)
	_, _, err = cliIn(stale, "rollback", "staging", repo)
	if err == nil || !strings.Contains(err.Error(), "is `regflow local` still running?") {
		t.Fatalf("rollback against a stopped stack: %v", err)
	}
	// Reads need only the store, so they still work.
	if out, _, err := cliIn(stale, "status"); err != nil || !strings.Contains(out, regflow.ShortDigest(digB)) {
		t.Fatalf("status from the store of a stopped stack: %v\n%s", err, out)
	}
	delete(doc["environments"].(map[string]any), "prod")
	write(doc)
	if _, _, err := cliIn(stale, "status"); err == nil || !strings.Contains(err.Error(), "start `regflow local` with the same --config") {
		t.Fatalf("local.json of another config: %v", err)
	}
	if err := os.WriteFile(filepath.Join(stale, "local.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cliIn(stale, "status"); err == nil || !strings.Contains(err.Error(), "is not the local stack's description") {
		t.Fatalf("corrupt local.json: %v", err)
	}
}

// apiGatewayClick is an API Gateway HTTP API (payload 2.0) request carrying a signed Slack click.
func apiGatewayClick(t *testing.T, secret []byte, user, requestID string, n int) events.APIGatewayV2HTTPRequest {
	t.Helper()
	return apiGatewayClickFrom(t, secret, "T0TEAM", user, requestID, "https://hooks.slack.com/actions/T0TEAM/1/abc", n)
}

// apiGatewayClickFrom is apiGatewayClick from workspace team, replying to responseURL.
func apiGatewayClickFrom(t *testing.T, secret []byte, team, user, requestID, responseURL string, n int) events.APIGatewayV2HTTPRequest {
	t.Helper()
	payload, err := json.Marshal(map[string]any{
		"type":         "block_actions",
		"team":         map[string]any{"id": team, "domain": "example"},
		"user":         map[string]any{"id": user, "username": strings.ToLower(user), "team_id": team},
		"api_app_id":   "A0APP",
		"container":    map[string]any{"type": "message", "message_ts": "1700000000.000001", "channel_id": "C0PROD"},
		"channel":      map[string]any{"id": "C0PROD", "name": "prod-approvals"},
		"trigger_id":   "1.2.3",
		"response_url": responseURL,
		"actions": []map[string]any{{"action_id": slackmsg.ActionApprove, "block_id": "regflow_decision", "value": requestID, "type": "button",
			"action_ts": fmt.Sprintf("%d.%06d", time.Now().Unix(), n),
			"text":      map[string]any{"type": "plain_text", "text": "Approve"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(url.Values{"payload": {string(payload)}}.Encode())
	h := http.Header{}
	slacksig.Sign(h, secret, time.Now(), body)
	headers := map[string]string{"content-type": "application/x-www-form-urlencoded", "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
	for k := range h {
		headers[strings.ToLower(k)] = h.Get(k)
	}
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST " + approvals.Path, RawPath: approvals.Path, Headers: headers,
		Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "POST " + approvals.Path, Stage: "$default", DomainName: "abc123.execute-api.us-east-1.amazonaws.com",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodPost, Path: approvals.Path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.1"},
		},
	}
}

func writeJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, string(b))
}

func writeFile(t *testing.T, s string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "event-*.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
