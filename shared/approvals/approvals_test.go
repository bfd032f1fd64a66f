package approvals_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
)

// messages records updates; fail makes the next calls fail.
type messages struct {
	mu      sync.Mutex
	updates []regflow.ApprovalRequest
	ctxs    []slackmsg.Context
	fail    int
}

func (m *messages) Update(_ context.Context, r regflow.ApprovalRequest, c slackmsg.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail > 0 {
		m.fail--
		return errors.New("slack: ratelimited")
	}
	m.updates = append(m.updates, r)
	m.ctxs = append(m.ctxs, c)
	return nil
}

type groups map[string][]string

func (g groups) Members(_ context.Context, group string) ([]string, error) {
	m, ok := g[group]
	if !ok {
		return nil, errors.New("no_such_subteam")
	}
	return m, nil
}

type rollback struct{ calls []string }

func (r *rollback) Rollback(_ context.Context, req regflow.ApprovalRequest, user string) (string, error) {
	r.calls = append(r.calls, req.ID+" by "+user)
	return "Rolled back.", nil
}

func decide(t *testing.T, svc *approvals.Service, user, action, id string, ts string) approvals.Outcome {
	t.Helper()
	out, err := svc.Decide(context.Background(), approvals.Click{User: user, Action: action, RequestID: id, ActionTS: ts})
	if err != nil {
		t.Fatalf("%s %s: %v", user, action, err)
	}
	return out
}

// TestPublishFailureIsRetriedByTheNextClick: the decision stands when the bus is down, the
// message keeps its buttons, and the next click publishes exactly once and updates it.
func TestPublishFailureIsRetriedByTheNextClick(t *testing.T) {
	st := embeddedStore(t)
	pub := &recorder{failures: 1}
	msgs := &messages{}
	svc := &approvals.Service{Config: cfg(t, config.Approvers{Users: []string{"UALICE", "UBOB"}, Required: 1}), Store: st, Publisher: pub, Messages: msgs, Log: quiet()}
	r := seed(t, st, nil, 1, time.Now().Add(time.Hour))

	_, err := svc.Decide(context.Background(), approvals.Click{User: "UALICE", Action: slackmsg.ActionApprove, RequestID: r.ID, ActionTS: "1700000000.000001"})
	if err == nil || !strings.Contains(err.Error(), "bus unavailable") {
		t.Fatalf("first click: %v, want the publish error", err)
	}
	got, _ := st.GetRequest(context.Background(), r.ID)
	if got.Status != regflow.StatusApproved || got.DecidedBy != "UALICE" {
		t.Fatalf("the decision must stand: %+v", got)
	}
	if len(pub.decisions(t)) != 0 || len(msgs.updates) != 0 {
		t.Fatal("nothing may be published or updated yet")
	}

	out := decide(t, svc, "UBOB", slackmsg.ActionApprove, r.ID, "1700000000.000002")
	if out.Kind != approvals.KindRefused || !out.Published || !out.MessageUpdated || !strings.Contains(out.Text, "Already approved by <@UALICE>") {
		t.Fatalf("retry click: %+v", out)
	}
	for i := range 3 {
		out = decide(t, svc, "UBOB", slackmsg.ActionApprove, r.ID, "1700000000.00001"+string(rune('0'+i)))
		if out.Published || out.MessageUpdated {
			t.Fatalf("later click redid the effects: %+v", out)
		}
	}
	ds := pub.decisions(t)
	if len(ds) != 1 || ds[0].DecidedBy != "UALICE" || ds[0].Decision != regflow.StatusApproved {
		t.Fatalf("events %+v, want one approval by UALICE", ds)
	}
	if len(msgs.updates) != 1 || msgs.updates[0].Status != regflow.StatusApproved {
		t.Fatalf("message updates %+v", msgs.updates)
	}
	if a := auditCount(t, st, r.Ref()); a[event.ActionApprovalApproved] != 1 || a[event.ActionApprovalRefused] != 4 {
		t.Fatalf("audit %v", a)
	}
	// Settle (for a scheduled re-drive) finds nothing left to do.
	if o, err := svc.Settle(context.Background(), r.ID); err != nil || o.Published || o.MessageUpdated {
		t.Fatalf("Settle after success: %+v %v", o, err)
	}
}

func TestSettleRedrivesAFailedPublish(t *testing.T) {
	st := embeddedStore(t)
	pub := &recorder{failures: 1}
	svc := &approvals.Service{Config: cfg(t, config.Approvers{Users: []string{"UALICE"}, Required: 1}), Store: st, Publisher: pub, Log: quiet()}
	r := seed(t, st, nil, 1, time.Now().Add(time.Hour))
	if _, err := svc.Decide(context.Background(), approvals.Click{User: "UALICE", Action: slackmsg.ActionReject, RequestID: r.ID}); err == nil {
		t.Fatal("want the publish error")
	}
	out, err := svc.Settle(context.Background(), r.ID)
	if err != nil || !out.Published {
		t.Fatalf("Settle: %+v %v", out, err)
	}
	if ds := pub.decisions(t); len(ds) != 1 || ds[0].Decision != regflow.StatusRejected {
		t.Fatalf("events %+v", ds)
	}
}

// TestMessageFailureKeepsTheDecision: Slack failing the update changes nothing about the
// decision or its event.
func TestMessageFailureKeepsTheDecision(t *testing.T) {
	st := embeddedStore(t)
	pub := &recorder{}
	msgs := &messages{fail: 1}
	svc := &approvals.Service{Config: cfg(t, config.Approvers{Users: []string{"UALICE"}, Required: 1}), Store: st, Publisher: pub, Messages: msgs, Log: quiet()}
	r := seed(t, st, nil, 1, time.Now().Add(time.Hour))
	out := decide(t, svc, "UALICE", slackmsg.ActionApprove, r.ID, "1")
	if out.Kind != approvals.KindApproved || !out.Published || out.MessageUpdated {
		t.Fatalf("%+v", out)
	}
	if len(pub.decisions(t)) != 1 {
		t.Fatal("the event must go out")
	}
}

func TestAuthorization(t *testing.T) {
	c := cfg(t, config.Approvers{Users: []string{"UALICE"}, Groups: []string{"SRELEASE"}, Required: 1})
	tests := []struct {
		name   string
		groups approvals.Groups
		user   string
		want   approvals.Kind
		reason error
		err    bool
	}{
		{"listed user", groups{}, "UALICE", approvals.KindApproved, nil, false},
		{"group member", groups{"SRELEASE": {"UDAN", "UERIN"}}, "UERIN", approvals.KindApproved, nil, false},
		{"neither", groups{"SRELEASE": {"UDAN"}}, "UMALLORY", approvals.KindRefused, regflow.ErrNotAuthorized, false},
		{"requester in the group", groups{"SRELEASE": {requester}}, requester, approvals.KindRefused, regflow.ErrSelfApproval, false},
		{"group lookup fails", groups{}, "UERIN", "", nil, true},
		{"no group port wired", nil, "UERIN", "", nil, true},
		{"empty user id", groups{"SRELEASE": {""}}, "", approvals.KindRefused, regflow.ErrNotAuthorized, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := embeddedStore(t)
			pub := &recorder{}
			svc := &approvals.Service{Config: c, Store: st, Publisher: pub, Groups: tt.groups, Log: quiet()}
			r := seed(t, st, nil, 1, time.Now().Add(time.Hour))
			out, err := svc.Decide(context.Background(), approvals.Click{User: tt.user, Action: slackmsg.ActionApprove, RequestID: r.ID, ActionTS: "1700000000.5"})
			if (err != nil) != tt.err {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				got, _ := st.GetRequest(context.Background(), r.ID)
				if got.Version != 1 || len(auditCount(t, st, r.Ref())) != 0 {
					t.Fatal("a failed authorization check wrote")
				}
				return
			}
			if out.Kind != tt.want || !errors.Is(out.Reason, tt.reason) || (tt.reason == nil) != (out.Reason == nil) {
				t.Fatalf("outcome %s reason %v, want %s %v", out.Kind, out.Reason, tt.want, tt.reason)
			}
			if tt.want == approvals.KindRefused {
				trail, _ := st.Audit(context.Background(), r.Ref())
				if len(trail) != 1 || trail[0].Action != event.ActionApprovalRefused || trail[0].Actor != tt.user ||
					trail[0].Reason != tt.reason.Error() || !trail[0].Time.Equal(time.Unix(1700000000, 500000000)) {
					t.Fatalf("refusal entry %+v", trail)
				}
			}
		})
	}
}

func TestUnknownRequestAndEnvironment(t *testing.T) {
	st := embeddedStore(t)
	c := cfg(t, config.Approvers{Users: []string{"UALICE"}, Required: 1})
	svc := &approvals.Service{Config: c, Store: st, Publisher: &recorder{}, Log: quiet()}
	out := decide(t, svc, "UALICE", slackmsg.ActionApprove, "req-gone", "1")
	if out.Kind != approvals.KindRefused || !errors.Is(out.Reason, approvals.ErrUnknownRequest) {
		t.Fatalf("%+v", out)
	}
	if a := auditCount(t, st, "request/req-gone"); a[event.ActionApprovalRefused] != 1 {
		t.Fatalf("audit %v", a)
	}
	r := seed(t, st, nil, 1, time.Now().Add(time.Hour))
	delete(c.Environments, "prod")
	out = decide(t, svc, "UALICE", slackmsg.ActionApprove, r.ID, "1")
	if out.Kind != approvals.KindRefused || !errors.Is(out.Reason, approvals.ErrUnknownEnvironment) {
		t.Fatalf("%+v", out)
	}
}

func TestRollbackButton(t *testing.T) {
	st := embeddedStore(t)
	c := cfg(t, config.Approvers{Users: []string{"UALICE"}, Required: 1})
	r := seed(t, st, nil, 1, time.Now().Add(time.Hour))
	svc := &approvals.Service{Config: c, Store: st, Publisher: &recorder{}, Log: quiet()}
	out := decide(t, svc, "UALICE", slackmsg.ActionRollback, r.ID, "1")
	if out.Kind != approvals.KindUnsupported || !strings.Contains(out.Text, "not supported yet") {
		t.Fatalf("without a port: %+v", out)
	}
	out = decide(t, svc, "UMALLORY", slackmsg.ActionRollback, r.ID, "2")
	if out.Kind != approvals.KindRefused || !errors.Is(out.Reason, regflow.ErrNotAuthorized) {
		t.Fatalf("stranger: %+v", out)
	}
	rb := &rollback{}
	svc.Rollback = rb
	out = decide(t, svc, "UALICE", slackmsg.ActionRollback, r.ID, "3")
	if out.Kind != approvals.KindRolledBack || len(rb.calls) != 1 || rb.calls[0] != r.ID+" by UALICE" {
		t.Fatalf("with a port: %+v %v", out, rb.calls)
	}
	if got, _ := st.GetRequest(context.Background(), r.ID); got.Version != 1 {
		t.Fatal("rollback clicks must not touch the approval request")
	}
}

// TestMessageShowsVerification: on an environment that requires verification, the
// updated message carries the previous environment's result.
func TestMessageShowsVerification(t *testing.T) {
	st := embeddedStore(t)
	c := cfg(t, config.Approvers{Users: []string{"UALICE"}, Required: 1})
	prod := c.Environments["prod"]
	prod.RequireVerification = true
	c.Environments["prod"] = prod
	v := regflow.Verification{Env: "staging", Repository: repo, Digest: digest, Passed: true, URL: "https://ci.example/run/1", By: "ci", At: time.Now().UTC().Truncate(time.Second)}
	if err := st.PutVerification(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	msgs := &messages{}
	svc := &approvals.Service{Config: c, Store: st, Publisher: &recorder{}, Messages: msgs, Log: quiet()}
	r := seed(t, st, nil, 1, time.Now().Add(time.Hour))
	decide(t, svc, "UALICE", slackmsg.ActionApprove, r.ID, "1")
	if len(msgs.ctxs) != 1 || msgs.ctxs[0].Verification == nil || msgs.ctxs[0].Verification.URL != v.URL || !strings.Contains(msgs.ctxs[0].Approvers, "<@UALICE>") {
		t.Fatalf("message context %+v", msgs.ctxs)
	}
}

// TestRedeliveredClickWritesOnce: the same click delivered twice (same user, button and
// action_ts) leaves one refusal entry.
func TestRedeliveredClickWritesOnce(t *testing.T) {
	st := embeddedStore(t)
	svc := &approvals.Service{Config: cfg(t, config.Approvers{Users: []string{"UALICE"}, Required: 1}), Store: st, Publisher: &recorder{}, Log: quiet()}
	r := seed(t, st, nil, 1, time.Now().Add(time.Hour))
	for range 3 {
		decide(t, svc, requester, slackmsg.ActionApprove, r.ID, "1700000000.000001")
	}
	if a := auditCount(t, st, r.Ref()); a[event.ActionApprovalRefused] != 1 {
		t.Fatalf("audit %v: want one entry for one click delivered three times", a)
	}
}

func TestExpiryOnEmbeddedStore(t *testing.T) {
	st := embeddedStore(t)
	msgs := &messages{}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	svc := &approvals.Service{Config: cfg(t, config.Approvers{Users: []string{"UALICE"}, Required: 1}), Store: st, Publisher: &recorder{}, Messages: msgs, Log: quiet(),
		Now: func() time.Time { return now }}
	r := seed(t, st, nil, 1, now)
	out := decide(t, svc, "UALICE", slackmsg.ActionReject, r.ID, "1")
	if out.Kind != approvals.KindExpired || out.Request.Status != regflow.StatusExpired {
		t.Fatalf("%+v", out)
	}
	trail, _ := st.Audit(context.Background(), r.Ref())
	var exp *regflow.AuditEntry
	for i := range trail {
		if trail[i].Action == event.ActionApprovalExpired {
			exp = &trail[i]
		}
	}
	if exp == nil || exp.Actor != approvals.Actor || !exp.Time.Equal(now) || exp.Details["noticedBy"] != "UALICE" {
		t.Fatalf("expiry entry %+v", trail)
	}
	if len(msgs.updates) != 1 || msgs.updates[0].Status != regflow.StatusExpired || !strings.Contains(msgs.ctxs[0].Note, "Expired") {
		t.Fatalf("message %+v %+v", msgs.updates, msgs.ctxs)
	}
}

type stuckSlack struct{}

func (stuckSlack) Update(ctx context.Context, _ regflow.ApprovalRequest, _ slackmsg.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func (stuckSlack) Members(ctx context.Context, _ string) ([]string, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestStuckSlackDoesNotHoldTheAnswer: a Slack call that never returns is cut at
// SlackTimeout, so the click is still answered (the decision and event stand).
func TestStuckSlackDoesNotHoldTheAnswer(t *testing.T) {
	st := embeddedStore(t)
	pub := &recorder{}
	svc := &approvals.Service{Config: cfg(t, config.Approvers{Users: []string{"UALICE"}, Groups: []string{"SRELEASE"}, Required: 1}), Store: st, Publisher: pub,
		Messages: stuckSlack{}, Groups: stuckSlack{}, SlackTimeout: 50 * time.Millisecond, Log: quiet()}
	r := seed(t, st, nil, 1, time.Now().Add(time.Hour))
	done := make(chan approvals.Outcome, 1)
	go func() { done <- decide(t, svc, "UALICE", slackmsg.ActionApprove, r.ID, "1") }()
	select {
	case out := <-done:
		if out.Kind != approvals.KindApproved || !out.Published || out.MessageUpdated {
			t.Fatalf("%+v", out)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stuck Slack update held the click")
	}
	// A group lookup that hangs fails the click after the timeout instead of hanging it.
	r2 := seedDigest(t, st, nil, 1, time.Now().Add(time.Hour), "sha256:"+strings.Repeat("cd", 32))
	errc := make(chan error, 1)
	go func() {
		_, err := svc.Decide(context.Background(), approvals.Click{User: "UERIN", Action: slackmsg.ActionApprove, RequestID: r2.ID})
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stuck group lookup held the click")
	}
}
