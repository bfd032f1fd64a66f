package sweep_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/store/dynamo"
	"github.com/regflow/regflow/shared/sweep"
	"github.com/regflow/regflow/shared/sweep/sweepsqs"
)

// TestFanOutDeadlineAndDeadLetters runs the fan-out over moto's SQS (with a
// dead-letter queue after one receive) and DynamoDB Local: a worker invoked with
// 2.6 s left stops in time and puts the rest of its batch back on the queue; the
// other batch's worker is killed, and SQS moves its message to the dead-letter queue. The run stays open until the next day's planner closes it:
// exactly one summary and one "Retention Sweep Completed", marked partial, naming
// the dead batch's repositories.
func TestFanOutDeadlineAndDeadLetters(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server and DynamoDB Local")
	}
	ctx := context.Background()
	moto := testenv.MotoServer(t)
	db := dynamodb.NewFromConfig(testenv.AWSConfig(testenv.DynamoDBLocal(t)), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	if err := dynamo.CreateTable(ctx, db, "deadline"); err != nil {
		t.Fatal(err)
	}
	st := dynamo.New(db, "deadline")
	sq := sqs.NewFromConfig(testenv.AWSConfig(moto.Endpoint))
	dlq, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("regflow-sweep-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	redrive, _ := json.Marshal(map[string]string{"deadLetterTargetArn": attrs.Attributes["QueueArn"], "maxReceiveCount": "1"})
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("regflow-sweep"), Attributes: map[string]string{"RedrivePolicy": string(redrive)}})
	if err != nil {
		t.Fatal(err)
	}

	srv := sweeptest.StartECR(t, localecr.Options{Clock: localecr.FixedClock(now)})
	for r := range 8 {
		for i := range 3 {
			sweeptest.Seed(t, srv, fmt.Sprintf("r%02d", r), localecr.SeedImage{Manifest: sweeptest.Plain(fmt.Sprint(r, "/", i)), PushedAt: now.Add(-200 * day)})
		}
	}
	srv.SetFault("DescribeImages", localecr.Fault{Latency: 700 * time.Millisecond})
	reg := ecr.SweepRegistry(ecr.New(sweeptest.Client(srv), ""))
	registries := func(context.Context, sweep.Target) (sweep.Registry, error) { return reg, nil }

	var (
		mu      sync.Mutex
		clockAt = now
		posted  []string
		evs     [][]byte
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return clockAt }
	queue := &sweepsqs.Queue{API: sq, URL: aws.ToString(q.QueueUrl)}
	sweeper := &sweep.Sweeper{Retention: retentionConfig(), Audit: st, Cache: st, Protection: st, Environments: []string{"prod"}, Concurrency: 1}
	finisher := &sweep.Finisher{Store: st, Now: clock,
		Notifier:  notifierFunc(func(s string) { mu.Lock(); posted = append(posted, s); mu.Unlock() }),
		Publisher: publisherFunc(func(ev []byte) { mu.Lock(); evs = append(evs, ev); mu.Unlock() })}
	worker := &sweep.Worker{Sweeper: sweeper, Registries: registries, Protection: st, Store: st, Finisher: finisher, Queue: queue, Now: clock}
	planner := &sweep.Planner{Targets: []sweep.Target{target}, Sweeper: sweeper, Registries: registries, Store: st, Queue: queue,
		Finisher: finisher, BatchSize: 4, Now: clock}
	handler := sweepsqs.Handler(worker)

	receive := func(url *string, visibility int32) []sqstypes.Message {
		t.Helper()
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: visibility,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}
	// handle runs the Lambda handler on one message with timeout left, and deletes the
	// message when it succeeded, as the Lambda SQS integration does.
	handle := func(m sqstypes.Message, timeout time.Duration) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		dl, _ := c.Deadline()
		resp, err := handler(c, events.SQSEvent{Records: []events.SQSMessage{{MessageId: aws.ToString(m.MessageId), Body: aws.ToString(m.Body),
			Attributes: map[string]string{"ApproximateReceiveCount": m.Attributes["ApproximateReceiveCount"]}}}})
		if err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("handler: %+v, %v", resp, err)
		}
		if time.Now().After(dl) {
			t.Fatalf("the handler returned %s past its deadline", time.Since(dl))
		}
		if _, err := sq.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}

	run := sweep.Run{ID: "day-1", Now: now}
	if _, err := planner.Plan(ctx, run); err != nil {
		t.Fatal(err)
	}
	msgs := receive(q.QueueUrl, 30)
	if len(msgs) != 2 {
		t.Fatalf("received %d batches, want 2", len(msgs))
	}
	var short, doomed sqstypes.Message
	for _, m := range msgs {
		if strings.Contains(aws.ToString(m.Body), `"r00"`) {
			short = m
		} else {
			doomed = m
		}
	}
	// 2.6 s left: the handler starts (MinTimeLeft is 2 s), the worker keeps a fifth to
	// record, and two repositories of 700 ms fit in the rest.
	handle(short, 2600*time.Millisecond)
	// The doomed batch's worker died on its receive; once visible again, the next
	// receive finds it over the redrive policy's count and moves it to the DLQ.
	if _, err := sq.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: q.QueueUrl, ReceiptHandle: doomed.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	var rest []sqstypes.Message
	for _, m := range receive(q.QueueUrl, 30) {
		if strings.Contains(aws.ToString(m.Body), `"r00`) || strings.Contains(aws.ToString(m.Body), `"r01`) ||
			strings.Contains(aws.ToString(m.Body), `"r02`) || strings.Contains(aws.ToString(m.Body), `"r03`) {
			rest = append(rest, m)
		}
	}
	if len(rest) != 1 || !strings.Contains(aws.ToString(rest[0].Body), "#00000+1") {
		t.Fatalf("continuations on the queue: %d, want the rest of the short batch", len(rest))
	}
	if dead := receive(dlq.QueueUrl, 30); len(dead) != 1 || aws.ToString(dead[0].Body) != aws.ToString(doomed.Body) {
		t.Fatalf("dead-letter queue holds %d messages, want the doomed batch", len(dead))
	}
	handle(rest[0], time.Minute)
	sr, err := st.GetSweepRun(ctx, run.ID)
	if err != nil || sr.Finished() || sr.Repositories != 4 {
		t.Fatalf("run %+v (%v): want 4 repositories swept and the doomed batch open", sr, err)
	}
	if len(posted) != 0 {
		t.Fatalf("posted %q before the run ended", posted)
	}

	mu.Lock()
	clockAt = now.Add(24 * time.Hour)
	mu.Unlock()
	if _, err := planner.Plan(ctx, sweep.Run{ID: "day-2", Now: now.Add(24 * time.Hour), DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if sr, err = st.GetSweepRun(ctx, run.ID); err != nil || !sr.Finished() || sr.FailedRepositories != 4 {
		t.Fatalf("day-1 after day-2's planner: %+v, %v", sr, err)
	}
	if len(posted) != 1 || !strings.Contains(posted[0], "Deleted 12 of 12 images in 4 repositories") || !strings.Contains(posted[0], "partial: 4 repositories could not be swept (dev/r04") {
		t.Fatalf("summaries %q: want one, partial, naming the dead batch's repositories", posted)
	}
	if len(evs) != 1 {
		t.Fatalf("%d Retention Sweep Completed events, want 1", len(evs))
	}
	ev, err := event.Parse(evs[0])
	var done event.RetentionSweepCompleted
	if err != nil || json.Unmarshal(ev.Detail, &done) != nil || !done.Partial || len(done.NotSwept) != 4 || done.RunID != run.ID {
		t.Fatalf("event %+v, %v: want day-1 partial with 4 repositories not swept", done, err)
	}
	// The next planner again: nothing more is posted.
	if _, err := planner.Plan(ctx, sweep.Run{ID: "day-2", Now: now.Add(24 * time.Hour), DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if len(posted) != 1 || len(evs) != 1 {
		t.Fatalf("a second close posted again: %d summaries, %d events", len(posted), len(evs))
	}
}
