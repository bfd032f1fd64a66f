package promoter_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/ocicopy"
	"github.com/regflow/regflow/shared/regflow"
)

// TestLastAttemptEndsFailed: a promotion whose copy keeps failing ends `failed` after the
// configured attempts (Lambda's retries deliver the event again): "Promotion Failed" is
// published, an alert posted and the message updated, once each, and the digest stays
// protected from the sweep only for the configured grace.
func TestLastAttemptEndsFailed(t *testing.T) {
	st, ev := start(t)
	ctx := context.Background()
	digest, _ := pushSigned(t, st, "dev", "shop/web", sha1, 31)
	req := approveAt(t, st, "staging", "shop/web", digest, sha1, st.Clock.Now())
	// Staging's registry refuses every manifest; one try per request keeps the test quick.
	st.ECR["staging"].SetFault(localecr.OpManifestPut, localecr.Fault{ErrorRate: 1})
	st.Promoter.CopyOptions = append(st.Promoter.CopyOptions, ocicopy.WithRetryBackoff(remote.Backoff{Steps: 1}))

	attempts := 3 // regflow.yaml keeps the default: Lambda's first try and its two retries
	for i := 1; i < attempts; i++ {
		if _, err := st.Promoter.Promote(ctx, req.ID); err == nil {
			t.Fatalf("attempt %d: want an error, so Lambda retries", i)
		}
		if got, _ := st.Store.GetRequest(ctx, req.ID); got.Status != regflow.StatusApproved {
			t.Fatalf("after attempt %d the request is %s; it must stay approved for the retry", i, got.Status)
		}
	}
	res, err := st.Promoter.Promote(ctx, req.ID)
	if err != nil || res.Outcome != "failed" {
		t.Fatalf("last attempt: %+v, %v; want outcome failed and no error (nothing left to retry)", res, err)
	}
	// A redelivery after the end changes nothing and announces nothing again.
	if res, err := st.Promoter.Promote(ctx, req.ID); err != nil || !strings.Contains(res.Outcome, "failed") {
		t.Fatalf("redelivery after failure: %+v, %v", res, err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Store.GetRequest(ctx, req.ID)
	if got.Status != regflow.StatusFailed || got.Attempts != attempts {
		t.Fatalf("request is %s after %d attempts, want failed after %d", got.Status, got.Attempts, attempts)
	}
	// Protected from the sweep for the configured grace, then released.
	grace := st.Config.Promotion.FailedGrace.D()
	if !got.ProtectedUntil.Equal(st.Clock.Now().Add(grace)) || !got.Protects(st.Clock.Now().Add(grace-time.Second)) || got.Protects(st.Clock.Now().Add(grace)) {
		t.Fatalf("failed request protected until %s, want now + %s", got.ProtectedUntil, grace)
	}
	if n := ev.count(event.TypePromotionFailed); n != 1 {
		t.Fatalf("%d Promotion Failed events, want 1", n)
	}
	alerts := 0
	for _, m := range st.Slack.Messages() {
		if m.Channel == st.Config.Alerts.SlackChannel && strings.Contains(m.Text+blocksText(m), "failed") {
			alerts++
		}
	}
	if alerts != 1 {
		t.Fatalf("%d failure alerts, want 1", alerts)
	}
	if m := slackMessage(st, req); m.Updates == 0 || !strings.Contains(m.Text, "failed") {
		t.Fatalf("the approval message must say the promotion failed: %+v", m)
	}
	if _, err := st.Store.GetRelease(ctx, "staging", "shop/web"); err == nil {
		t.Fatal("a failed promotion must not move the pointer")
	}
	failed := 0
	for _, e := range audit(t, st, req.Ref()) {
		if e.Action == "promotion.failed" {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d promotion.failed audit entries, want 1", failed)
	}
}

// TestAttemptLeavesTimeToRecord: a copy that would outlive the invocation is cut short of
// its deadline, so the failed attempt is still counted and audited.
func TestAttemptLeavesTimeToRecord(t *testing.T) {
	st, _ := start(t)
	digest, _ := pushSigned(t, st, "dev", "shop/web", sha1, 32)
	req := approveAt(t, st, "staging", "shop/web", digest, sha1, st.Clock.Now())
	st.ECR["staging"].SetFault(localecr.OpManifestPut, localecr.Fault{Latency: 3 * time.Second})
	// go-containerregistry's retry transport retries a cancelled request as "temporary",
	// sleeping between tries; without its retries the cut shows at once.
	st.Promoter.CopyOptions = append(st.Promoter.CopyOptions, ocicopy.WithRetryBackoff(remote.Backoff{Steps: 1}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	began := time.Now()
	_, err := st.Promoter.Promote(ctx, req.ID)
	t.Logf("attempt ended after %s: %v", time.Since(began), err)
	if err == nil {
		t.Fatal("a copy past its deadline must fail the attempt")
	}
	if ctx.Err() != nil {
		t.Fatal("the attempt must end before the invocation's deadline")
	}
	got, _ := st.Store.GetRequest(context.Background(), req.ID)
	recorded := false
	for _, e := range audit(t, st, req.Ref()) {
		recorded = recorded || (e.Action == event.ActionPromotionAttemptFailed && e.Details["attempt"] == "1")
	}
	if got.Attempts != 1 || got.Status != regflow.StatusApproved || !recorded {
		t.Fatalf("after a cut attempt: %d attempts, %s, audited %v; want 1, approved, true", got.Attempts, got.Status, recorded)
	}
}

// TestDuplicateDuringAttemptNeitherCopiesNorCounts: EventBridge may deliver an approval twice
// at once; the second delivery leaves the running try alone and does not use up an attempt.
func TestDuplicateDuringAttemptNeitherCopiesNorCounts(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	digest, _ := pushSigned(t, st, "dev", "shop/web", sha1, 33)
	req := approveAt(t, st, "staging", "shop/web", digest, sha1, st.Clock.Now())
	st.ECR["staging"].SetFault(localecr.OpManifestPut, localecr.Fault{Latency: 300 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		res, err := st.Promoter.Promote(ctx, req.ID)
		if err == nil && res.Outcome != "promoted" {
			err = errors.New("first delivery: " + res.Outcome)
		}
		done <- err
	}()
	for {
		if got, _ := st.Store.GetRequest(ctx, req.ID); got.Attempts == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err := st.Promoter.Promote(ctx, req.ID)
	if err != nil || res.Outcome != "in-progress" || res.Copy != nil {
		t.Fatalf("duplicate during the attempt: %+v, %v", res, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Store.GetRequest(ctx, req.ID); got.Attempts != 1 || got.Status != regflow.StatusPromoted {
		t.Fatalf("after both deliveries: %d attempts, %s; want 1, promoted", got.Attempts, got.Status)
	}
}
