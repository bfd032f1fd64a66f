package scangate_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localbus"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/regflow"
)

const sha = "1111111111222222222233333333334444444444"

type recorder struct {
	mu     sync.Mutex
	events [][]byte
}

func (r *recorder) last() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[len(r.events)-1]
}

func start(t *testing.T) (*localstack.Stack, *recorder) {
	t.Helper()
	return startWith(t, nil)
}

// startWith starts the local stack on the repository's config as change leaves it.
func startWith(t *testing.T, change func(*config.Config)) (*localstack.Stack, *recorder) {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "..", "regflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(cfg)
	}
	st, err := localstack.Start(context.Background(), localstack.Options{Config: cfg, Dir: t.TempDir(),
		Clock: localecr.FixedClock(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	rec := &recorder{}
	st.Bus.Subscribe(localbus.Rule{Name: "recorder", DetailTypes: []string{"ECR Image Scan"}}, func(_ context.Context, e []byte) error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.events = append(rec.events, e)
		return nil
	})
	return st, rec
}

func push(t *testing.T, st *localstack.Stack, env, repo, tag string) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(st.Info().Environments[env].Registry+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	if err := st.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// pushPromoted pushes into a later environment and moves its release pointer, as the
// promoter does: only a digest that reached an environment by promotion moves on.
func pushPromoted(t *testing.T, st *localstack.Stack, env, repo, tag string) string {
	t.Helper()
	digest := push(t, st, env, repo, tag)
	if err := st.Store.PutRelease(context.Background(), regflow.Release{Env: env, Repository: repo, Digest: digest, Tag: tag, By: "regflow/promoter", At: st.Clock.Now(), Version: 1}); err != nil {
		t.Fatal(err)
	}
	return digest
}

func high(id string) localecr.Finding {
	return localecr.Finding{Name: id, Severity: "HIGH", Attributes: []localecr.Attribute{{Key: "package_name", Value: "openssl"}}}
}

func messages(st *localstack.Stack, channel string) []slacklocal.Message {
	var out []slacklocal.Message
	for _, m := range st.Slack.Messages() {
		if m.Channel == channel {
			out = append(out, m)
		}
	}
	return out
}

func TestScanOpensStagingApprovalOnce(t *testing.T) {
	st, rec := start(t)
	ctx := context.Background()
	digest := push(t, st, "dev", "shop/web", sha)
	// Two HIGH findings: staging caps only CRITICAL, so its gate passes.
	if err := st.ECR["dev"].InjectScan("shop/web", digest, high("CVE-2024-1"), high("CVE-2024-2"), localecr.Finding{Name: "CVE-2024-3", Severity: "MEDIUM"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	id := regflow.RequestID("staging", "shop/web", digest)
	req, err := st.Store.GetRequest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if req.Status != regflow.StatusPending || req.Tag != sha || req.Findings["HIGH"] != 2 || req.SlackTS == "" || req.Required != 1 {
		t.Fatalf("request = %+v", req)
	}
	if sc, err := st.Store.GetScan(ctx, "dev", "shop/web", digest); err != nil || sc.Counts["MEDIUM"] != 1 {
		t.Fatalf("scan record = %+v, %v", sc, err)
	}
	msgs := messages(st, "C0STAGING")
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "HIGH 2") {
		t.Fatalf("staging messages = %+v", msgs)
	}
	// The same event delivered again changes nothing and posts nothing.
	res, err := st.Gate.Invoke(ctx, rec.last())
	if err != nil || res.Status != regflow.StatusPending {
		t.Fatalf("redelivery: %+v, %v", res, err)
	}
	if n := len(messages(st, "C0STAGING")); n != 1 {
		t.Fatalf("%d approval messages after a redelivery, want 1", n)
	}
	again, _ := st.Store.GetRequest(ctx, id)
	if again.Version != req.Version {
		t.Fatalf("redelivery wrote the request (version %d → %d)", req.Version, again.Version)
	}
}

func TestCriticalBlocksWithAlertNamingFindings(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	digest := push(t, st, "dev", "shop/api", sha)
	if err := st.ECR["dev"].InjectScan("shop/api", digest, localecr.Finding{Name: "CVE-2024-9999", Severity: "CRITICAL", Attributes: []localecr.Attribute{{Key: "package_name", Value: "glibc"}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	req, err := st.Store.GetRequest(ctx, regflow.RequestID("staging", "shop/api", digest))
	if err != nil || req.Status != regflow.StatusBlocked || !strings.Contains(req.Reason, "CRITICAL 1 > 0") {
		t.Fatalf("request = %+v, %v", req, err)
	}
	alerts := messages(st, "C0ALERTS")
	if len(alerts) != 1 || !strings.Contains(alerts[0].Text, "Blocked for staging") {
		t.Fatalf("alerts = %+v", alerts)
	}
	var found bool
	for _, b := range alerts[0].Blocks.BlockSet {
		if strings.Contains(toJSON(b), "CVE-2024-9999 (CRITICAL, glibc)") {
			found = true
		}
	}
	if !found {
		t.Fatal("the alert must name the blocking finding")
	}
	if n := len(messages(st, "C0STAGING")); n != 0 {
		t.Fatal("a blocked image gets no approval message")
	}
}

func TestProdWaitsForVerificationThenOpens(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	digest := pushPromoted(t, st, "staging", "shop/web", sha)
	// Allow-listed HIGH only: prod's HIGH 0 gate passes after the allow-list.
	if err := st.ECR["staging"].InjectScan("shop/web", digest, high("CVE-2023-0000")); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	id := regflow.RequestID("prod", "shop/web", digest)
	req, err := st.Store.GetRequest(ctx, id)
	if err != nil || req.Status != regflow.StatusWaiting || req.Required != 2 {
		t.Fatalf("before verification: %+v, %v", req, err)
	}
	if n := len(messages(st, "C0PROD")); n != 0 {
		t.Fatal("no approval message before verification")
	}
	v := regflow.Verification{Env: "staging", Repository: "shop/web", Digest: digest, Passed: true, URL: "https://ci.example/run/42", By: "U0ALICE", Requester: "U0ALICE", At: st.Clock.Now()}
	for range 2 {
		res, err := st.Gate.Verify(ctx, v)
		if err != nil || res.Status != regflow.StatusPending {
			t.Fatalf("verify: %+v, %v", res, err)
		}
	}
	req, _ = st.Store.GetRequest(ctx, id)
	if req.RequestedBy != "U0ALICE" || req.SlackTS == "" {
		t.Fatalf("after verification: %+v", req)
	}
	msgs := messages(st, "C0PROD")
	if len(msgs) != 1 || !strings.Contains(toJSON(msgs[0].Blocks), "ci.example/run/42") {
		t.Fatalf("prod messages = %+v", msgs)
	}
	trail, _ := st.Store.Audit(ctx, "shop/web@"+digest)
	var verified int
	for _, e := range trail {
		if e.Action == "verification.passed" && e.Actor == "U0ALICE" {
			verified++
		}
	}
	if verified != 1 {
		t.Fatalf("want one audited verification by U0ALICE, trail = %+v", trail)
	}
}

func TestFailedVerificationBlocks(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	digest := pushPromoted(t, st, "staging", "shop/web", sha)
	if err := st.ECR["staging"].InjectScan("shop/web", digest); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := st.Gate.Verify(ctx, regflow.Verification{Env: "staging", Repository: "shop/web", Digest: digest, Passed: false, By: "ci", At: st.Clock.Now()})
	if err != nil || res.Status != regflow.StatusBlocked {
		t.Fatalf("failed verification: %+v, %v", res, err)
	}
	if _, err := st.Gate.Verify(ctx, regflow.Verification{Env: "qa", Repository: "x", Digest: digest, By: "ci"}); err == nil {
		t.Fatal("an unknown environment must be refused")
	}
}

func TestVerificationEvent(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	digest := pushPromoted(t, st, "staging", "shop/web", sha)
	ev := func(detail string) []byte {
		return []byte(`{"version":"0","id":"v1","detail-type":"Verification Result","source":"acme.deploy","account":"222222222222","time":"2026-11-27T09:30:00Z","region":"us-east-1","resources":[],"detail":` + detail + `}`)
	}
	for _, bad := range []string{`{}`, `{"env":"staging","repository":"shop/web","digest":"` + digest + `","reportedBy":"ci"}`, `"x"`, `{"env":"staging","repository":"shop/web","digest":"latest","passed":true,"reportedBy":"ci"}`} {
		if _, err := st.Gate.Invoke(ctx, ev(bad)); err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("detail %s: got %v, want a malformed-event error", bad, err)
		}
	}
	res, err := st.Gate.Invoke(ctx, ev(`{"env":"staging","repository":"shop/web","digest":"`+digest+`","passed":true,"url":"https://ci/1","reportedBy":"deploy-bot"}`))
	if err != nil || res.Env != "staging" {
		t.Fatalf("valid verification event: %+v, %v", res, err)
	}
	v, err := st.Store.GetVerification(ctx, "staging", "shop/web", digest)
	if err != nil || !v.Passed || v.By != "deploy-bot (account 222222222222)" {
		t.Fatalf("recorded %+v, %v", v, err)
	}
}

// TestPlatformScansGateTheIndex: ECR scans each platform image of an index, never the index;
// the gate waits for every platform and then opens one request for the index digest.
func TestPlatformScansGateTheIndex(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	idx, err := ocitest.RandomIndex(7, 2, 1, 512)
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := name.NewRepository(st.Info().Environments["dev"].Registry+"/shop/multi", name.Insecure)
	if err := remote.WriteIndex(repo.Tag(sha), idx); err != nil {
		t.Fatal(err)
	}
	desc, _ := partial.Descriptor(idx)
	sig := ocitest.Signature(7, *desc)
	sigDesc, err := sig.Push(ctx, repo, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	id := regflow.RequestID("staging", "shop/multi", desc.Digest.String())

	// A signature is not an image to promote: recorded, nothing gated.
	if err := st.ECR["dev"].InjectScan("shop/multi", sigDesc.Digest.String()); err != nil {
		t.Fatal(err)
	}
	if err := st.ECR["dev"].InjectScan("shop/multi", im.Manifests[0].Digest.String(), high("CVE-2024-1")); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Store.GetRequest(ctx, id); err == nil {
		t.Fatal("one platform of two scanned: no request yet")
	}
	if err := st.ECR["dev"].InjectScan("shop/multi", im.Manifests[1].Digest.String(), high("CVE-2024-2"), localecr.Finding{Name: "CVE-2024-3", Severity: "MEDIUM"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	req, err := st.Store.GetRequest(ctx, id)
	if err != nil {
		t.Fatalf("both platforms scanned: the index's request should exist: %v", err)
	}
	if req.Digest != desc.Digest.String() || req.Tag != sha || req.Findings["HIGH"] != 2 || req.Findings["MEDIUM"] != 1 || req.Status != regflow.StatusPending {
		t.Fatalf("request = %+v", req)
	}
	for _, m := range im.Manifests {
		if _, err := st.Store.GetRequest(ctx, regflow.RequestID("staging", "shop/multi", m.Digest.String())); err == nil {
			t.Fatal("platform images get no requests of their own")
		}
	}
	if n := len(messages(st, "C0STAGING")); n != 1 {
		t.Fatalf("%d approval messages, want 1 for the index", n)
	}
}

// TestVerificationThroughTheBus: only an environment's own account reports on it, and the
// requester it names cannot approve the next environment.
func TestVerificationThroughTheBus(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	digest := pushPromoted(t, st, "staging", "shop/web", sha)
	if err := st.ECR["staging"].InjectScan("shop/web", digest); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	ev := func(account string) []byte {
		return []byte(`{"version":"0","id":"v-` + account + `","detail-type":"Verification Result","source":"acme.deploy","account":"` + account +
			`","time":"2026-11-27T09:30:00Z","region":"us-east-1","resources":[],"detail":{"env":"staging","repository":"shop/web","digest":"` + digest +
			`","passed":true,"reportedBy":"deploy-bot","requester":"U0ALICE"}}`)
	}
	if _, err := st.Gate.Invoke(ctx, ev("333333333333")); err == nil || !strings.Contains(err.Error(), "only staging's account 222222222222") {
		t.Fatalf("prod's account reporting on staging: %v", err)
	}
	id := regflow.RequestID("prod", "shop/web", digest)
	if req, _ := st.Store.GetRequest(ctx, id); req.Status != regflow.StatusWaiting {
		t.Fatalf("a refused report must change nothing: %s", req.Status)
	}
	if _, err := st.Gate.Invoke(ctx, ev("222222222222")); err != nil {
		t.Fatal(err)
	}
	req, _ := st.Store.GetRequest(ctx, id)
	if req.Status != regflow.StatusPending || req.RequestedBy != "U0ALICE" {
		t.Fatalf("request = %+v", req)
	}
	res, err := st.Click(ctx, "U0ALICE", "regflow_approve", id)
	if err != nil || res.Outcome != "refused" || !strings.Contains(res.Text, "requested this promotion") {
		t.Fatalf("the requester's click: %+v, %v", res, err)
	}
}

// TestExpiredRequestReopens: a request nobody approved in time expires at the next click; a
// later scan opens it again with a fresh window and a message of its own.
func TestExpiredRequestReopens(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	digest := push(t, st, "dev", "shop/web", sha)
	if err := st.ECR["dev"].InjectScan("shop/web", digest); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	id := regflow.RequestID("staging", "shop/web", digest)
	st.Clock.Advance(73 * time.Hour)
	if res, err := st.Click(ctx, "U0BOB", "regflow_approve", id); err != nil || res.Outcome != "expired" {
		t.Fatalf("late click: %+v, %v", res, err)
	}
	if err := st.ECR["dev"].InjectScan("shop/web", digest); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	req, _ := st.Store.GetRequest(ctx, id)
	if req.Status != regflow.StatusPending || !req.ExpiresAt.After(st.Clock.Now()) || len(req.Approvals) != 0 {
		t.Fatalf("reopened request = %+v", req)
	}
	if n := len(messages(st, "C0STAGING")); n != 2 {
		t.Fatalf("%d approval messages, want the first and the reopened one", n)
	}
	if res, err := st.Click(ctx, "U0BOB", "regflow_approve", id); err != nil || res.Outcome != "approved" {
		t.Fatalf("approval after reopening: %+v, %v", res, err)
	}
}

// TestCustody: a scan in a later environment opens the next request only for a digest that
// came by promotion; anything else is audited and alerted once, however often it is scanned.
func TestCustody(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, st *localstack.Stack, digest string)
		opens bool
	}{
		{"pushed directly", func(*testing.T, *localstack.Stack, string) {}, false},
		{"current release", func(t *testing.T, st *localstack.Stack, d string) {
			mustRelease(t, st, regflow.Release{Env: "staging", Repository: "shop/web", Digest: d, Version: 1})
		}, true},
		{"previous release", func(t *testing.T, st *localstack.Stack, d string) {
			mustRelease(t, st, regflow.Release{Env: "staging", Repository: "shop/web", Digest: "sha256:other", Previous: []string{d}, Version: 1})
		}, true},
		{"approved request, pointer not moved yet", func(t *testing.T, st *localstack.Stack, d string) {
			mustRequest(t, st, d, regflow.StatusApproved)
		}, true},
		{"promoted request", func(t *testing.T, st *localstack.Stack, d string) { mustRequest(t, st, d, regflow.StatusPromoted) }, true},
		{"rejected request", func(t *testing.T, st *localstack.Stack, d string) { mustRequest(t, st, d, regflow.StatusRejected) }, false},
		{"pending request", func(t *testing.T, st *localstack.Stack, d string) { mustRequest(t, st, d, regflow.StatusPending) }, false},
		{"another digest runs there", func(t *testing.T, st *localstack.Stack, _ string) {
			mustRelease(t, st, regflow.Release{Env: "staging", Repository: "shop/web", Digest: "sha256:other", Version: 1})
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := start(t)
			ctx := context.Background()
			digest := push(t, st, "staging", "shop/web", sha)
			tt.setup(t, st, digest)
			for range 2 { // a rescan, or a redelivery, changes nothing
				if err := st.ECR["staging"].InjectScan("shop/web", digest); err != nil {
					t.Fatal(err)
				}
				if err := st.Settle(ctx); err != nil {
					t.Fatal(err)
				}
			}
			_, err := st.Store.GetRequest(ctx, regflow.RequestID("prod", "shop/web", digest))
			if opened := err == nil; opened != tt.opens {
				t.Fatalf("prod request opened = %v (%v), want %v", opened, err, tt.opens)
			}
			var alerts int
			for _, m := range messages(st, "C0ALERTS") {
				if strings.Contains(m.Text, "pushed directly into staging") {
					alerts++
				}
			}
			if want := map[bool]int{true: 0, false: 1}[tt.opens]; alerts != want {
				t.Fatalf("%d custody alerts, want %d", alerts, want)
			}
		})
	}
}

func mustRelease(t *testing.T, st *localstack.Stack, r regflow.Release) {
	t.Helper()
	if err := st.Store.PutRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func mustRequest(t *testing.T, st *localstack.Stack, digest, status string) {
	t.Helper()
	if _, err := st.Store.CreateRequest(context.Background(), regflow.ApprovalRequest{
		ID: regflow.RequestID("staging", "shop/web", digest), Env: "staging", Repository: "shop/web", Digest: digest, Status: status, Version: 1,
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRequesterComesFromATrustedSource: the requester who may not approve is taken only from
// the environment's own deployment pipeline (a Verification Result sent from its account, which
// EventBridge attests), never from a free field: not from a report the pipeline account sends
// (any principal there may send one), nor from who the reporter says they are.
func TestRequesterComesFromATrustedSource(t *testing.T) {
	report := func(account, source string) func(*testing.T, *localstack.Stack, string) error {
		return func(t *testing.T, st *localstack.Stack, digest string) error {
			_, err := st.Gate.Invoke(context.Background(), []byte(`{"version":"0","id":"v-`+account+`","detail-type":"Verification Result","source":"`+source+`","account":"`+account+
				`","time":"2026-11-27T09:30:00Z","region":"us-east-1","resources":[],"detail":{"env":"staging","repository":"shop/web","digest":"`+digest+
				`","passed":true,"reportedBy":"U0BOB","requester":"U0ALICE"}}`))
			return err
		}
	}
	// Only a named reporter may report on staging from the pipeline account (bus rights).
	reporters := []string{"arn:aws:iam::111111111111:role/deploy-staging"}
	tests := []struct {
		name      string
		reporters []string
		report    func(*testing.T, *localstack.Stack, string) error
		want      string
	}{
		{"staging's own pipeline names the requester", nil, report("222222222222", "acme.deploy"), "U0ALICE"},
		{"a report from the pipeline account names nobody", reporters, report("111111111111", event.VerificationSource("staging")), ""},
		{"the reporter's own word is no requester", nil, func(t *testing.T, st *localstack.Stack, digest string) error {
			_, err := st.Gate.Verify(context.Background(), regflow.Verification{Env: "staging", Repository: "shop/web", Digest: digest, Passed: true, By: "U0ALICE", At: st.Clock.Now()})
			return err
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := startWith(t, func(cfg *config.Config) {
				e := cfg.Environments["staging"]
				e.VerificationReporters = tt.reporters
				cfg.Environments["staging"] = e
			})
			ctx := context.Background()
			digest := pushPromoted(t, st, "staging", "shop/web", sha)
			if err := st.ECR["staging"].InjectScan("shop/web", digest); err != nil {
				t.Fatal(err)
			}
			if err := st.Settle(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tt.report(t, st, digest); err != nil {
				t.Fatal(err)
			}
			req, err := st.Store.GetRequest(ctx, regflow.RequestID("prod", "shop/web", digest))
			if err != nil || req.Status != regflow.StatusPending {
				t.Fatalf("prod request: %+v, %v", req, err)
			}
			if req.RequestedBy != tt.want {
				t.Fatalf("requested by %q, want %q", req.RequestedBy, tt.want)
			}
		})
	}
}

// TestVerificationSenders: a "Verification Result" for an environment counts only from that
// environment's own account, or from the pipeline account under the environment's source
// when the config names reporters for it (the bus policy lets only them send that source).
func TestVerificationSenders(t *testing.T) {
	ctx := context.Background()
	ev := func(account, source, env, digest string) []byte {
		return []byte(`{"version":"0","id":"v-` + account + source + `","detail-type":"Verification Result","source":"` + source + `","account":"` + account +
			`","time":"2026-11-27T09:30:00Z","region":"us-east-1","resources":[],"detail":{"env":"` + env + `","repository":"shop/web","digest":"` + digest +
			`","passed":true,"reportedBy":"deploy-bot"}}`)
	}
	reporter := "arn:aws:iam::111111111111:role/deploy-staging"
	cases := []struct {
		name      string
		reporters []string
		account   string
		source    string
		env       string
		accepted  bool
	}{
		{"staging's own account", nil, "222222222222", "acme.deploy", "staging", true},
		{"another environment's account", nil, "333333333333", "acme.deploy", "staging", false},
		{"any principal of the pipeline account", nil, "111111111111", "acme.deploy", "staging", false},
		{"the pipeline account under staging's source, no reporters named", nil, "111111111111", event.VerificationSource("staging"), "staging", false},
		{"a named reporter", []string{reporter}, "111111111111", event.VerificationSource("staging"), "staging", true},
		{"the pipeline account under another source", []string{reporter}, "111111111111", "acme.deploy", "staging", false},
		{"the pipeline account under prod's source", []string{reporter}, "111111111111", event.VerificationSource("prod"), "staging", false},
		{"staging's own account with reporters named", []string{reporter}, "222222222222", "acme.deploy", "staging", true},
		{"dev in the pipeline account, no reporters named", nil, "111111111111", "acme.deploy", "dev", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := config.Load(filepath.Join("..", "..", "regflow.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			e := cfg.Environments["staging"]
			e.VerificationReporters = c.reporters
			cfg.Environments["staging"] = e
			st, err := localstack.Start(ctx, localstack.Options{Config: cfg, Dir: t.TempDir(),
				Clock: localecr.FixedClock(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(st.Close)
			digest := push(t, st, c.env, "shop/web", sha)
			_, err = st.Gate.Invoke(ctx, ev(c.account, c.source, c.env, digest))
			if c.accepted && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.accepted {
				if err == nil || !strings.Contains(err.Error(), "refused") {
					t.Fatalf("accepted (err %v), want it refused", err)
				}
				if _, gerr := st.Store.GetVerification(ctx, c.env, "shop/web", digest); gerr == nil {
					t.Fatal("a refused report was recorded")
				}
			}
		})
	}
}
