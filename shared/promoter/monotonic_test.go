package promoter_test

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/slackmsg"
)

// approveAt stores an approved request decided at decided, with its Slack message posted.
func approveAt(t *testing.T, st *localstack.Stack, env, repo string, digest v1.Hash, tag string, decided time.Time) regflow.ApprovalRequest {
	t.Helper()
	ctx := context.Background()
	r := regflow.ApprovalRequest{ID: regflow.RequestID(env, repo, digest.String()), Env: env, Repository: repo, Digest: digest.String(), Tag: tag,
		Status: regflow.StatusApproved, Required: 1, Approvals: []regflow.Vote{{User: "U0BOB", At: decided}}, DecidedBy: "U0BOB", DecidedAt: decided,
		CreatedAt: decided.Add(-time.Minute), ExpiresAt: decided.Add(time.Hour)}
	bot := slackbot.New(slackbot.Options{Token: func(context.Context) (string, error) { return "xoxb-local", nil }, APIURL: st.Slack.APIURL()})
	ch, ts, err := bot.Post(ctx, st.Config.Environments[env].SlackChannel, r, slackmsg.Context{})
	if err != nil {
		t.Fatal(err)
	}
	r.SlackChannel, r.SlackTS = ch, ts
	if _, err := st.Store.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	return r
}

func slackMessage(st *localstack.Stack, r regflow.ApprovalRequest) slacklocal.Message {
	for _, m := range st.Slack.Messages() {
		if m.Channel == r.SlackChannel && m.TS == r.SlackTS {
			return m
		}
	}
	return slacklocal.Message{}
}

// TestOlderApprovalFinishingLaterIsSuperseded: two approvals of staging finish out of order;
// the pointer keeps the newer one, the older is recorded as superseded (audit, event, Slack)
// with its copy left in place, and only an explicit rollback moves the pointer back.
func TestOlderApprovalFinishingLaterIsSuperseded(t *testing.T) {
	st, ev := start(t)
	ctx := context.Background()
	now := st.Clock.Now()
	olderDigest, _ := pushSigned(t, st, "dev", "shop/web", sha1, 11)
	newerDigest, _ := pushSigned(t, st, "dev", "shop/web", sha2, 12)
	older := approveAt(t, st, "staging", "shop/web", olderDigest, sha1, now.Add(-10*time.Minute))
	newer := approveAt(t, st, "staging", "shop/web", newerDigest, sha2, now.Add(-5*time.Minute))

	if res, err := st.Promoter.Promote(ctx, newer.ID); err != nil || res.Outcome != "promoted" {
		t.Fatalf("newer promotion: %+v, %v", res, err)
	}
	// The older approval's copy was slow: it finishes now, twice (a redelivery).
	for i := range 2 {
		res, err := st.Promoter.Promote(ctx, older.ID)
		if err != nil || !strings.Contains(res.Outcome, "superseded") {
			t.Fatalf("older promotion #%d: %+v, %v; want superseded", i+1, res, err)
		}
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	rel, err := st.Store.GetRelease(ctx, "staging", "shop/web")
	if err != nil || rel.Digest != newerDigest.String() {
		t.Fatalf("staging runs %s (%v), want the newer approval's %s: the pointer must not move backwards", rel.Digest, err, newerDigest)
	}
	if got, _ := st.Store.GetRequest(ctx, older.ID); got.Status != "superseded" {
		t.Fatalf("older request is %q, want superseded", got.Status)
	}
	if _, err := remote.Head(repoRef(t, st, "staging", "shop/web").Tag(sha1)); err != nil {
		t.Fatalf("the superseded copy must be left in place: %v", err)
	}
	if n := ev.count(event.TypeImagePromoted); n != 1 {
		t.Fatalf("%d Image Promoted events, want 1 (the newer only)", n)
	}
	if n := ev.count(event.TypePromotionSuperseded); n != 1 {
		t.Fatalf("%d Promotion Superseded events, want 1", n)
	}
	trail, _ := st.Store.Audit(ctx, older.Ref())
	superseded := 0
	for _, e := range trail {
		switch e.Action {
		case "promotion.superseded":
			superseded++
		case event.ActionImagePromoted:
			t.Fatalf("the older approval must not be audited as promoted: %+v", e)
		}
	}
	if superseded != 1 {
		t.Fatalf("%d superseded audit entries, want 1: %+v", superseded, trail)
	}
	if m := slackMessage(st, older); m.Updates == 0 || !strings.Contains(strings.ToLower(m.Text+blocksText(m)), "superseded") {
		t.Fatalf("the older approval's message must say it was superseded: %+v", m)
	}

	// Only an explicit rollback moves the pointer back, to the copy left in place.
	moved, err := st.Promoter.Rollback(ctx, "staging", "shop/web", olderDigest.String(), "U0CAROL")
	if err != nil || moved.Digest != olderDigest.String() {
		t.Fatalf("rollback to the superseded digest: %+v, %v", moved, err)
	}
	// And the older approval redelivered after the rollback still does not count as newer.
	if res, err := st.Promoter.Promote(ctx, older.ID); err != nil || !strings.Contains(res.Outcome, "superseded") {
		t.Fatalf("redelivery after rollback: %+v, %v", res, err)
	}
}

func blocksText(m slacklocal.Message) string {
	b, _ := m.Blocks.MarshalJSON()
	return string(b)
}
