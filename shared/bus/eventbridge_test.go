package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/bus"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func decisionEvent(t *testing.T, id string) (event.Message, event.PromotionDecision) {
	t.Helper()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := event.PromotionDecision{RequestID: id, Env: "prod", Repository: "team/api", Digest: "sha256:" + strings.Repeat("b", 64),
		Decision: regflow.StatusApproved, DecidedBy: "U1", Approvers: []string{"U1"}, At: at}
	return event.Message{Detail: d, Key: id + "#approved", At: at}, d
}

// TestEventBridgeOnMoto publishes through moto's EventBridge to a rule whose target is an
// SQS queue, and reads what a target would receive.
func TestEventBridgeOnMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	ctx := context.Background()
	moto := testenv.MotoServer(t)
	cfg := testenv.AWSConfig(moto.Endpoint)
	eb := eventbridge.NewFromConfig(cfg)
	q := sqs.NewFromConfig(cfg)

	const busName = "regflow-test"
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(busName)}); err != nil {
		t.Fatal(err)
	}
	queue, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("approved")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	pattern := `{"source":["regflow"],"detail-type":["Promotion Approved"]}`
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("promoter"), EventBusName: aws.String(busName), EventPattern: aws.String(pattern)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("promoter"), EventBusName: aws.String(busName),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(attrs.Attributes["QueueArn"])}}}); err != nil {
		t.Fatal(err)
	}

	pub := bus.NewEventBridge(eb, busName)
	ev, want := decisionEvent(t, "req-moto")
	if err := pub.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	// A rejection does not match the promoter's rule.
	rej := event.Message{Detail: event.PromotionDecision{RequestID: "req-moto", Decision: regflow.StatusRejected}, Key: "req-moto#rejected", At: time.Now()}
	if err := pub.Publish(ctx, rej); err != nil {
		t.Fatal(err)
	}

	msgs, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs.Messages) != 1 {
		t.Fatalf("the promoter's queue got %d messages, want the one approval", len(msgs.Messages))
	}
	got, err := event.Parse([]byte(aws.ToString(msgs.Messages[0].Body)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != event.SourceRegflow || got.DetailType != event.TypePromotionApproved {
		t.Fatalf("target got %s / %s", got.Source, got.DetailType)
	}
	var d event.PromotionDecision
	if err := json.Unmarshal(got.Detail, &d); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Fatalf("detail the target received (-want +got):\n%s", diff)
	}
	if !got.Time.Equal(want.At) {
		t.Fatalf("event time %s, want the decision's %s", got.Time, want.At)
	}

	// A bus that does not exist fails the entry (or the call); either way the publisher says so.
	err = bus.NewEventBridge(eb, "no-such-bus").Publish(ctx, ev)
	if err == nil || !strings.Contains(err.Error(), "no-such-bus") {
		t.Fatalf("publish to a missing bus: %v", err)
	}
	t.Logf("missing bus: %v", err)
}

// scripted answers PutEvents with canned entry results: a pure unit test of the
// FailedEntryCount handling, which moto cannot be made to produce.
type scripted struct {
	results [][2]string // error code, message; "" code = success
	calls   int
	seen    []ebtypes.PutEventsRequestEntry
}

func (s *scripted) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	s.seen = append(s.seen, in.Entries...)
	r := s.results[min(s.calls, len(s.results)-1)]
	s.calls++
	if r[0] == "" {
		return &eventbridge.PutEventsOutput{Entries: []ebtypes.PutEventsResultEntry{{EventId: aws.String("e")}}}, nil
	}
	if r[0] == "call-error" {
		return nil, errors.New(r[1])
	}
	return &eventbridge.PutEventsOutput{FailedEntryCount: 1, Entries: []ebtypes.PutEventsResultEntry{{ErrorCode: aws.String(r[0]), ErrorMessage: aws.String(r[1])}}}, nil
}

func TestFailedEntries(t *testing.T) {
	ev, _ := decisionEvent(t, "req-x")
	tests := []struct {
		name      string
		results   [][2]string
		wantErr   string
		wantCalls int
	}{
		{"accepted", [][2]string{{"", ""}}, "", 1},
		{"throttled then accepted", [][2]string{{"ThrottlingException", "slow down"}, {"", ""}}, "", 2},
		{"internal failure then accepted", [][2]string{{"InternalFailure", "x"}, {"InternalFailure", "x"}, {"", ""}}, "", 3},
		{"throttled throughout", [][2]string{{"ThrottlingException", "slow down"}}, "ThrottlingException", 3},
		{"validation is not retried", [][2]string{{"ValidationException", "detail too large"}}, "detail too large", 1},
		{"access denied is not retried", [][2]string{{"AccessDeniedException", "no"}}, "AccessDeniedException", 1},
		{"call error", [][2]string{{"call-error", "connection refused"}}, "connection refused", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &scripted{results: tt.results}
			err := bus.NewEventBridge(api, "regflow").Publish(context.Background(), ev)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Publish = %v, want error containing %q", err, tt.wantErr)
			}
			if api.calls != tt.wantCalls {
				t.Fatalf("%d PutEvents calls, want %d", api.calls, tt.wantCalls)
			}
			e := api.seen[0]
			if aws.ToString(e.EventBusName) != "regflow" || aws.ToString(e.Source) != "regflow" || aws.ToString(e.DetailType) != event.TypePromotionApproved {
				t.Fatalf("entry %+v", e)
			}
			var d event.PromotionDecision
			if err := json.Unmarshal([]byte(aws.ToString(e.Detail)), &d); err != nil || d.RequestID != "req-x" {
				t.Fatalf("entry detail %s: %v", aws.ToString(e.Detail), err)
			}
		})
	}
}

func TestMalformedEventNeverReachesEventBridge(t *testing.T) {
	api := &scripted{results: [][2]string{{"", ""}}}
	for name, m := range map[string]event.Message{
		"no detail":            {Key: "k", At: time.Now()},
		"no detail-type":       {Detail: raw{}, Key: "k"},
		"detail not an object": {Detail: raw{dt: "x", json: `"s"`}, Key: "k"},
		"detail not JSON":      {Detail: raw{dt: "x", json: `nope`}, Key: "k"},
	} {
		if err := bus.NewEventBridge(api, "regflow").Publish(context.Background(), m); err == nil {
			t.Fatalf("published %s", name)
		}
	}
	if api.calls != 0 {
		t.Fatalf("%d calls for malformed events", api.calls)
	}
}

// raw is a detail of any detail-type and JSON, valid or not.
type raw struct{ dt, json string }

func (r raw) DetailType() string           { return r.dt }
func (r raw) MarshalJSON() ([]byte, error) { return []byte(r.json), nil }
