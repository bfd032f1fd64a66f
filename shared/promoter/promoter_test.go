package promoter_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localbus"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/regflow"
)

type events struct {
	mu  sync.Mutex
	got map[string][]json.RawMessage
}

func (e *events) count(dt string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.got[dt])
}

func start(t *testing.T) (*localstack.Stack, *events) {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "..", "regflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := localstack.Start(context.Background(), localstack.Options{Config: cfg, Dir: t.TempDir(),
		Clock: localecr.FixedClock(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	ev := &events{got: map[string][]json.RawMessage{}}
	st.Bus.Subscribe(localbus.Rule{Name: "recorder", Sources: []string{"regflow"}}, func(_ context.Context, b []byte) error {
		var e struct {
			DT     string          `json:"detail-type"`
			Detail json.RawMessage `json:"detail"`
		}
		_ = json.Unmarshal(b, &e)
		ev.mu.Lock()
		defer ev.mu.Unlock()
		ev.got[e.DT] = append(ev.got[e.DT], e.Detail)
		return nil
	})
	return st, ev
}

func repoRef(t *testing.T, st *localstack.Stack, env, repo string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(st.Info().Environments[env].Registry+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pushSigned pushes a random two-platform index under tag, with a signature and an SBOM referrer.
func pushSigned(t *testing.T, st *localstack.Stack, env, repo, tag string, seed uint64) (v1.Hash, []v1.Hash) {
	t.Helper()
	ctx := context.Background()
	idx, err := ocitest.RandomIndex(seed, 2, 2, 2048)
	if err != nil {
		t.Fatal(err)
	}
	r := repoRef(t, st, env, repo)
	if err := remote.WriteIndex(r.Tag(tag), idx); err != nil {
		t.Fatal(err)
	}
	desc, err := partial.Descriptor(idx)
	if err != nil {
		t.Fatal(err)
	}
	var refs []v1.Hash
	for _, a := range []ocitest.Artifact{ocitest.Signature(seed, *desc), ocitest.SBOM(seed, *desc)} {
		d, err := a.Push(ctx, r, "")
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, d.Digest)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	return desc.Digest, refs
}

func approve(t *testing.T, st *localstack.Stack, env, repo string, digest v1.Hash, tag string) string {
	t.Helper()
	ctx := context.Background()
	r := regflow.ApprovalRequest{ID: regflow.RequestID(env, repo, digest.String()), Env: env, Repository: repo, Digest: digest.String(), Tag: tag,
		Status: regflow.StatusApproved, Required: 1, Approvals: []regflow.Vote{{User: "U0BOB", At: st.Clock.Now()}}, DecidedBy: "U0BOB",
		CreatedAt: st.Clock.Now(), ExpiresAt: st.Clock.Now().Add(time.Hour)}
	if _, err := st.Store.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func publishApproved(t *testing.T, st *localstack.Stack, id string) {
	t.Helper()
	ev := event.Message{Detail: event.PromotionDecision{RequestID: id, Decision: regflow.StatusApproved}, Key: id, At: st.Clock.Now()}
	if err := st.Publisher.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
}

const sha1 = "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd"
const sha2 = "eeeeeeeeeeffffffffff00000000001111111111"

func TestPromoteByDigestAcrossAccounts(t *testing.T) {
	st, ev := start(t)
	ctx := context.Background()
	digest, referrers := pushSigned(t, st, "dev", "shop/web", sha1, 1)
	id := approve(t, st, "staging", "shop/web", digest, sha1)
	publishApproved(t, st, id)

	staging := repoRef(t, st, "staging", "shop/web")
	got, err := remote.Head(staging.Tag(sha1))
	if err != nil {
		t.Fatalf("staging has no %s: %v", sha1, err)
	}
	if got.Digest != digest {
		t.Fatalf("staging digest %s, want the same digest %s", got.Digest, digest)
	}
	idx, err := remote.Index(staging.Digest(digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	for _, child := range im.Manifests {
		if _, err := remote.Head(staging.Digest(child.Digest.String())); err != nil {
			t.Errorf("platform %s missing in staging: %v", child.Platform, err)
		}
	}
	for _, r := range referrers {
		if _, err := remote.Head(staging.Digest(r.String())); err != nil {
			t.Errorf("referrer %s missing in staging: %v", r, err)
		}
	}
	if m, _ := st.Registry("staging").TagMutability(ctx, "shop/web"); m.Mode != regflow.Immutable {
		t.Errorf("staging repository is %s, want IMMUTABLE", m.Mode)
	}
	rel, err := st.Store.GetRelease(ctx, "staging", "shop/web")
	if err != nil || rel.Digest != digest.String() || rel.Tag != sha1 {
		t.Fatalf("staging release = %+v, %v", rel, err)
	}
	req, _ := st.Store.GetRequest(ctx, id)
	if req.Status != regflow.StatusPromoted {
		t.Fatalf("request = %s", req.Status)
	}
	if ev.count(event.TypeImagePromoted) != 1 {
		t.Fatalf("Image Promoted events = %d", ev.count(event.TypeImagePromoted))
	}
	// Staging scans on push; prod's gate opens a request that waits for staging's verification.
	next, err := st.Store.GetRequest(ctx, regflow.RequestID("prod", "shop/web", digest.String()))
	if err != nil || next.Status != regflow.StatusWaiting {
		t.Fatalf("prod request after promotion = %+v, %v", next, err)
	}

	// Redelivery after success: nothing moves, nothing is announced twice.
	res, err := st.Promoter.Promote(ctx, id)
	if err != nil || res.Outcome != "already-promoted" || res.Copy != nil {
		t.Fatalf("redelivery = %+v, %v", res, err)
	}
	publishApproved(t, st, id)
	if ev.count(event.TypeImagePromoted) != 1 {
		t.Fatal("a redelivered approval must not announce again")
	}
	trail, _ := st.Store.Audit(ctx, req.Ref())
	promoted := 0
	for _, e := range trail {
		if e.Action == "image.promoted" {
			promoted++
		}
	}
	if promoted != 1 {
		t.Fatalf("%d promotion audit entries, want 1", promoted)
	}
}

func TestRefusesWhatIsNotApproved(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	digest, _ := pushSigned(t, st, "dev", "shop/web", sha1, 2)
	pending := regflow.ApprovalRequest{ID: regflow.RequestID("staging", "shop/web", digest.String()), Env: "staging", Repository: "shop/web",
		Digest: digest.String(), Tag: sha1, Status: regflow.StatusPending, Required: 1, CreatedAt: st.Clock.Now(), ExpiresAt: st.Clock.Now().Add(time.Hour)}
	if _, err := st.Store.CreateRequest(ctx, pending); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{pending.ID, "req-forged"} {
		res, err := st.Promoter.Promote(ctx, id)
		if err != nil || res.Outcome != "refused" {
			t.Fatalf("%s: %+v, %v", id, res, err)
		}
	}
	if _, err := remote.Head(repoRef(t, st, "staging", "shop/web").Tag(sha1)); err == nil {
		t.Fatal("nothing may reach staging without an approval")
	}
	if _, err := st.Promoter.Invoke(ctx, []byte(`{"detail-type":"Promotion Approved"}`)); !errors.Is(err, errMalformed()) && (err == nil || !strings.Contains(err.Error(), "malformed")) {
		t.Fatalf("malformed event: %v", err)
	}
}

func TestTagConflictOverwritesNothing(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	digest, _ := pushSigned(t, st, "dev", "shop/web", sha1, 3)
	// Someone already pushed something else under the same tag in staging.
	other, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repoRef(t, st, "staging", "shop/web").Tag(sha1), other); err != nil {
		t.Fatal(err)
	}
	otherDigest, _ := other.Digest()
	id := approve(t, st, "staging", "shop/web", digest, sha1)
	res, err := st.Promoter.Promote(ctx, id)
	if err != nil || res.Outcome != "tag-conflict" || !strings.Contains(res.Reason, otherDigest.String()) {
		t.Fatalf("tag conflict: %+v, %v", res, err)
	}
	if got, _ := remote.Head(repoRef(t, st, "staging", "shop/web").Tag(sha1)); got == nil || got.Digest != otherDigest {
		t.Fatal("the existing tag must be left as it was")
	}
	if _, err := st.Store.GetRelease(ctx, "staging", "shop/web"); err == nil {
		t.Fatal("no release pointer may move on a conflict")
	}
	var alerted bool
	for _, m := range st.Slack.Messages() {
		if m.Channel == "C0ALERTS" && strings.Contains(m.Text, "tag conflict") {
			alerted = true
		}
	}
	if !alerted {
		t.Fatal("a tag conflict must alert")
	}
	if req, _ := st.Store.GetRequest(ctx, id); req.Status != regflow.StatusFailed {
		t.Fatalf("request = %s, want failed", req.Status)
	}
}

func TestRollbackIsAPointerChange(t *testing.T) {
	st, ev := start(t)
	ctx := context.Background()
	first, _ := pushSigned(t, st, "dev", "shop/web", sha1, 4)
	publishApproved(t, st, approve(t, st, "staging", "shop/web", first, sha1))
	second, _ := pushSigned(t, st, "dev", "shop/web", sha2, 5)
	publishApproved(t, st, approve(t, st, "staging", "shop/web", second, sha2))
	rel, _ := st.Store.GetRelease(ctx, "staging", "shop/web")
	if rel.Digest != second.String() || len(rel.Previous) != 1 || rel.Previous[0] != first.String() {
		t.Fatalf("before rollback: %+v", rel)
	}
	before := st.ECR["staging"].RequestCounts()
	moved, err := st.Promoter.Rollback(ctx, "staging", "shop/web", "", "U0CAROL")
	if err != nil || moved.Digest != first.String() || moved.Previous[0] != second.String() {
		t.Fatalf("rollback: %+v, %v", moved, err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	after := st.ECR["staging"].RequestCounts()
	for _, op := range []string{localecr.OpBlobUpload, localecr.OpBlobPatch, localecr.OpBlobPut, localecr.OpBlobMount, localecr.OpManifestPut, "PutImage"} {
		if after[op] != before[op] {
			t.Fatalf("a rollback must copy nothing; %s went %d → %d", op, before[op], after[op])
		}
	}
	if ev.count(event.TypeReleaseRolledBack) != 1 {
		t.Fatal("rollback must be announced")
	}
	if _, err := st.Promoter.Rollback(ctx, "staging", "shop/web", "sha256:"+strings.Repeat("0", 64), "U0CAROL"); err == nil {
		t.Fatal("a digest that is not in the registry cannot be rolled back to")
	}
}

// TestRollbackButton: the Roll back button on a promoted message asks the promoter over the
// bus; duplicates and forged requests change nothing.
func TestRollbackButton(t *testing.T) {
	st, ev := start(t)
	ctx := context.Background()
	first, _ := pushSigned(t, st, "dev", "shop/web", sha1, 6)
	publishApproved(t, st, approve(t, st, "staging", "shop/web", first, sha1))
	second, _ := pushSigned(t, st, "dev", "shop/web", sha2, 7)
	secondID := approve(t, st, "staging", "shop/web", second, sha2)
	publishApproved(t, st, secondID)

	// A forged request naming a digest that request never promoted is refused.
	forged, _ := event.Message{Detail: event.RollbackRequested{RequestID: secondID, Env: "staging", Repository: "shop/web", From: first.String(), By: "mallory"},
		Key: "forged", At: st.Clock.Now()}.Encode()
	if res, err := st.Promoter.Invoke(ctx, forged); err != nil || res.Outcome != "refused" {
		t.Fatalf("forged rollback: %+v, %v", res, err)
	}
	res, err := st.Click(ctx, "U0BOB", "regflow_rollback", secondID)
	if err != nil || res.Status != 200 || !strings.Contains(res.Text, "Rolling") {
		t.Fatalf("click: %+v, %v", res, err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	rel, _ := st.Store.GetRelease(ctx, "staging", "shop/web")
	if rel.Digest != first.String() {
		t.Fatalf("staging runs %s after the rollback, want %s", rel.Digest, first)
	}
	res, err = st.Click(ctx, "U0CAROL", "regflow_rollback", secondID)
	if err != nil || !strings.Contains(res.Text, "no longer runs") {
		t.Fatalf("second click: %+v, %v", res, err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if rel, _ := st.Store.GetRelease(ctx, "staging", "shop/web"); rel.Digest != first.String() || ev.count(event.TypeReleaseRolledBack) != 1 {
		t.Fatalf("a second click must change nothing: runs %s, %d rollback events", rel.Digest, ev.count(event.TypeReleaseRolledBack))
	}
	if res, err := st.Click(ctx, "U0MALLORY", "regflow_rollback", secondID); err != nil || res.Outcome != "refused" {
		t.Fatalf("a non-approver's rollback: %+v, %v", res, err)
	}
}
