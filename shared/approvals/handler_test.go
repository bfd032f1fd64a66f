package approvals_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/bus"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
)

const clicks = 200

// fire sends n signed clicks at once; who(i) and action(i) choose each click's user and button.
func fire(t *testing.T, s *stack, id string, n int, who func(i int) string, action func(i int) string) []answer {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: 30 * time.Second}
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = click(t, s.srv.URL, who(i), action(i), id, fmt.Sprintf("1700000100.%06d", i), s.hooks.URL+"/actions/T1/1/x")
	}
	out := make([]answer, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range reqs {
		done.Go(func() {
			start.Wait()
			out[i] = send(t, c, reqs[i])
		})
	}
	start.Done()
	done.Wait()
	return out
}

func tally(as []answer) map[approvals.Kind]int {
	n := map[approvals.Kind]int{}
	for _, a := range as {
		if a.status != http.StatusOK {
			n[approvals.Kind(fmt.Sprintf("HTTP %d", a.status))]++
			continue
		}
		n[a.outcome]++
	}
	return n
}

// TestConcurrentClicksDecideOnce fires 200 correctly signed clicks at one request on
// DynamoDB Local. Distinct users prove that only one of many allowed people wins; one
// user clicking 200 times proves a person cannot count twice toward N approvers.
func TestConcurrentClicksDecideOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("needs DynamoDB Local")
	}
	all := users(clicks)
	same := func(int) string { return "U0001" }
	distinct := func(i int) string { return all[i] }
	approve := func(int) string { return slackmsg.ActionApprove }
	tests := []struct {
		name      string
		required  int
		who       func(int) string
		action    func(int) string
		want      map[approvals.Kind]int
		status    string
		approvals int
		audit     map[string]int
	}{
		{"200 distinct approvers, 1 required", 1, distinct, approve,
			map[approvals.Kind]int{approvals.KindApproved: 1, approvals.KindRefused: clicks - 1},
			regflow.StatusApproved, 1, map[string]int{event.ActionApprovalApproved: 1, event.ActionApprovalRefused: clicks - 1}},
		{"one approver 200 times, 1 required", 1, same, approve,
			map[approvals.Kind]int{approvals.KindApproved: 1, approvals.KindRefused: clicks - 1},
			regflow.StatusApproved, 1, map[string]int{event.ActionApprovalApproved: 1, event.ActionApprovalRefused: clicks - 1}},
		{"200 distinct approvers, 2 required", 2, distinct, approve,
			map[approvals.Kind]int{approvals.KindVoted: 1, approvals.KindApproved: 1, approvals.KindRefused: clicks - 2},
			regflow.StatusApproved, 2, map[string]int{event.ActionApprovalVoted: 1, event.ActionApprovalApproved: 1, event.ActionApprovalRefused: clicks - 2}},
		{"one approver 200 times, 2 required: still pending", 2, same, approve,
			map[approvals.Kind]int{approvals.KindVoted: 1, approvals.KindRefused: clicks - 1},
			regflow.StatusPending, 1, map[string]int{event.ActionApprovalVoted: 1, event.ActionApprovalRefused: clicks - 1}},
		{"100 approve, 100 reject, 1 required", 1, distinct, func(i int) string {
			if i%2 == 0 {
				return slackmsg.ActionApprove
			}
			return slackmsg.ActionReject
		}, nil, "", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _, _ := dynamoTable(t)
			s := newStack(t, cfg(t, config.Approvers{Users: all, Required: tt.required}), st, nil)
			r := seed(t, st, s.sl, tt.required, time.Now().Add(time.Hour))

			answers := fire(t, s, r.ID, clicks, tt.who, tt.action)
			got, err := st.GetRequest(context.Background(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			kinds := tally(answers)
			if tt.want != nil {
				if fmt.Sprint(kinds) != fmt.Sprint(tt.want) {
					t.Fatalf("outcomes %v, want %v", kinds, tt.want)
				}
			} else if kinds[approvals.KindApproved]+kinds[approvals.KindRejected] != 1 || kinds[approvals.KindRefused] != clicks-1 {
				t.Fatalf("outcomes %v, want exactly one decision", kinds)
			}
			if tt.status != "" && got.Status != tt.status {
				t.Fatalf("status %s, want %s", got.Status, tt.status)
			}
			if tt.approvals >= 0 && len(got.Approvals) != tt.approvals {
				t.Fatalf("%d approvals stored, want %d: %+v", len(got.Approvals), tt.approvals, got.Approvals)
			}
			voters := map[string]bool{}
			for _, v := range got.Approvals {
				if voters[v.User] {
					t.Fatalf("%s counted twice: %+v", v.User, got.Approvals)
				}
				voters[v.User] = true
			}

			// Exactly one event for a decided request, none for a pending one, matching the stored decision.
			ds := s.pub.decisions(t)
			switch got.Status {
			case regflow.StatusApproved, regflow.StatusRejected:
				if len(ds) != 1 {
					t.Fatalf("%d decision events, want 1", len(ds))
				}
				d := ds[0]
				if d.RequestID != r.ID || d.Decision != got.Status || d.DecidedBy != got.DecidedBy || d.Digest != digest || d.Env != "prod" {
					t.Fatalf("event %+v does not match the stored decision %+v", d, got)
				}
				if got.Status == regflow.StatusApproved && len(d.Approvers) != len(got.Approvals) {
					t.Fatalf("event approvers %v, stored %+v", d.Approvers, got.Approvals)
				}
				if m := s.message(t, r.SlackTS); m.Updates != 1 || hasButtons(m) {
					t.Fatalf("Slack message: %d updates, buttons %v; want one update without buttons", m.Updates, hasButtons(m))
				}
			default:
				if len(ds) != 0 {
					t.Fatalf("%d events for a pending request", len(ds))
				}
				if m := s.message(t, r.SlackTS); m.Updates != 0 || !hasButtons(m) {
					t.Fatalf("pending request's message changed: %d updates", m.Updates)
				}
			}
			if tt.audit != nil {
				if a := auditCount(t, st, r.Ref()); fmt.Sprint(a) != fmt.Sprint(tt.audit) {
					t.Fatalf("audit %v, want %v", a, tt.audit)
				}
			}
			// Every click got its reply through response_url; late clicks are told who decided and when.
			replies := s.hooks.all()
			if len(replies) != clicks {
				t.Fatalf("%d replies through response_url, want %d", len(replies), clicks)
			}
			late := 0
			for _, rep := range replies {
				if rep.ResponseType != "ephemeral" || rep.ReplaceOriginal {
					t.Fatalf("reply %+v must be ephemeral and leave the message", rep)
				}
				if strings.HasPrefix(rep.Text, "Already ") {
					late++
					if !strings.Contains(rep.Text, "<@"+got.DecidedBy+">") || !strings.Contains(rep.Text, got.DecidedAt.UTC().Format("2006-01-02 15:04:05")) {
						t.Fatalf("late reply %q does not say who decided and when", rep.Text)
					}
				}
			}
			if got.Status != regflow.StatusPending && late == 0 {
				t.Fatal("no late click was told who decided")
			}
			slices.SortFunc(answers, func(a, b answer) int { return int(a.took - b.took) })
			t.Logf("ack latency over loopback: p50 %s, max %s", answers[len(answers)/2].took.Round(time.Millisecond), answers[len(answers)-1].took.Round(time.Millisecond))
		})
	}
}

// TestTwoApproversNeedTwoPeople walks a 2-approver request: the requester is refused, a
// first approver is not enough, the same approver again does not count, a second distinct
// approver closes it, and a click after that is told who decided.
func TestTwoApproversNeedTwoPeople(t *testing.T) {
	if testing.Short() {
		t.Skip("needs DynamoDB Local")
	}
	st, _, _ := dynamoTable(t)
	s := newStack(t, cfg(t, config.Approvers{Users: []string{"UALICE", "UBOB", "UCAROL", requester}, Required: 2}), st, nil)
	r := seed(t, st, s.sl, 2, time.Now().Add(time.Hour))
	c := s.srv.Client()
	steps := []struct {
		who, action string
		want        approvals.Kind
		reply       string
		status      string
		events      int
	}{
		{requester, slackmsg.ActionApprove, approvals.KindRefused, "You requested this promotion", regflow.StatusPending, 0},
		{"UMALLORY", slackmsg.ActionApprove, approvals.KindRefused, "not an approver for *prod*", regflow.StatusPending, 0},
		{"UALICE", slackmsg.ActionApprove, approvals.KindVoted, "(1 of 2); one more approver is needed", regflow.StatusPending, 0},
		{"UALICE", slackmsg.ActionApprove, approvals.KindRefused, "You already approved this", regflow.StatusPending, 0},
		{"UBOB", slackmsg.ActionApprove, approvals.KindApproved, "Approved `team/api:9f86d08", regflow.StatusApproved, 1},
		{"UCAROL", slackmsg.ActionReject, approvals.KindRefused, "Already approved by <@UALICE>, <@UBOB>", regflow.StatusApproved, 1},
	}
	for i, step := range steps {
		a := send(t, c, click(t, s.srv.URL, step.who, step.action, r.ID, fmt.Sprintf("1700000200.%06d", i), ""))
		if a.status != http.StatusOK || a.outcome != step.want || !strings.Contains(a.reply.Text, step.reply) {
			t.Fatalf("step %d (%s %s): HTTP %d %s %q; want %s containing %q", i, step.who, step.action, a.status, a.outcome, a.reply.Text, step.want, step.reply)
		}
		got, err := st.GetRequest(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != step.status || len(s.pub.decisions(t)) != step.events {
			t.Fatalf("step %d: status %s with %d events, want %s and %d", i, got.Status, len(s.pub.decisions(t)), step.status, step.events)
		}
	}
	d := s.pub.decisions(t)[0]
	if !slices.Equal(d.Approvers, []string{"UALICE", "UBOB"}) || d.DecidedBy != "UBOB" {
		t.Fatalf("event %+v", d)
	}
	a := auditCount(t, st, r.Ref())
	if a[event.ActionApprovalVoted] != 1 || a[event.ActionApprovalApproved] != 1 || a[event.ActionApprovalRefused] != 4 {
		t.Fatalf("audit %v: want one vote, one approval, four refusals", a)
	}
}

func TestExpiredRequestAnswersExpired(t *testing.T) {
	if testing.Short() {
		t.Skip("needs DynamoDB Local")
	}
	st, _, _ := dynamoTable(t)
	s := newStack(t, cfg(t, config.Approvers{Users: []string{"UALICE", "UBOB"}, Required: 1}), st, nil)
	r := seed(t, st, s.sl, 1, time.Now().Add(-time.Minute))
	c := s.srv.Client()
	for i, who := range []string{"UALICE", "UBOB"} {
		a := send(t, c, click(t, s.srv.URL, who, slackmsg.ActionApprove, r.ID, fmt.Sprintf("1700000300.%06d", i), ""))
		want := approvals.KindExpired
		if i == 1 {
			want = approvals.KindRefused
		}
		if a.status != http.StatusOK || a.outcome != want || !strings.Contains(a.reply.Text, "expired") {
			t.Fatalf("click %d: HTTP %d %s %q", i, a.status, a.outcome, a.reply.Text)
		}
	}
	got, _ := st.GetRequest(context.Background(), r.ID)
	if got.Status != regflow.StatusExpired {
		t.Fatalf("status %s, want expired", got.Status)
	}
	if n := len(s.pub.decisions(t)); n != 0 {
		t.Fatalf("%d events for an expired request", n)
	}
	m := s.message(t, r.SlackTS)
	if m.Updates != 1 || hasButtons(m) || !strings.Contains(m.Text, "[expired]") {
		t.Fatalf("message after expiry: %d updates, buttons %v, text %q", m.Updates, hasButtons(m), m.Text)
	}
	if a := auditCount(t, st, r.Ref()); a[event.ActionApprovalExpired] != 1 || a[event.ActionApprovalRefused] != 2 {
		t.Fatalf("audit %v: want one expiry and both clicks refused", a)
	}
}

// TestConcurrentClicksThroughEventBridge repeats the 200-approver burst with the real
// EventBridge adapter against moto, whose rule forwards the bus to an SQS queue: the
// queue must hold exactly one Promotion Approved.
func TestConcurrentClicksThroughEventBridge(t *testing.T) {
	if testing.Short() {
		t.Skip("needs DynamoDB Local and moto_server")
	}
	ctx := context.Background()
	moto := testenv.MotoServer(t)
	awsCfg := testenv.AWSConfig(moto.Endpoint)
	eb, q := eventbridge.NewFromConfig(awsCfg), sqs.NewFromConfig(awsCfg)
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("regflow")}); err != nil {
		t.Fatal(err)
	}
	queue, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("promoter")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("promoter"), EventBusName: aws.String("regflow"),
		EventPattern: aws.String(`{"source":["regflow"],"detail-type":["Promotion Approved","Promotion Rejected"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("promoter"), EventBusName: aws.String("regflow"),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(attrs.Attributes["QueueArn"])}}}); err != nil {
		t.Fatal(err)
	}

	st, _, _ := dynamoTable(t)
	all := users(clicks)
	s := newStack(t, cfg(t, config.Approvers{Users: all, Required: 1}), st, nil)
	s.svc.Publisher = bus.NewEventBridge(eb, "regflow")
	r := seed(t, st, s.sl, 1, time.Now().Add(time.Hour))
	kinds := tally(fire(t, s, r.ID, clicks, func(i int) string { return all[i] }, func(int) string { return slackmsg.ActionApprove }))
	if kinds[approvals.KindApproved] != 1 || kinds[approvals.KindRefused] != clicks-1 {
		t.Fatalf("outcomes %v", kinds)
	}
	var got []event.Envelope
	for {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			ev, err := event.Parse([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev)
			if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: queue.QueueUrl, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(got) != 1 || got[0].DetailType != event.TypePromotionApproved {
		t.Fatalf("the promoter's queue got %d events, want one Promotion Approved: %+v", len(got), got)
	}
	var d event.PromotionDecision
	if err := json.Unmarshal(got[0].Detail, &d); err != nil || d.RequestID != r.ID {
		t.Fatalf("detail %s: %v", got[0].Detail, err)
	}
}
