package sweep_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/store/dynamo"
	"github.com/regflow/regflow/shared/sweep"
	"github.com/regflow/regflow/shared/sweep/sweepsqs"
)

// TestFanOut runs the scheduled planner into moto's SQS, then feeds every received
// message twice, from four concurrent workers, to the worker's Lambda handler,
// with the run's counters in DynamoDB Local: the counts add up exactly, the run
// finishes once, one summary reaches Slack, and a redelivered schedule event does
// nothing.
func TestFanOut(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server and DynamoDB Local")
	}
	ctx := context.Background()
	moto := testenv.MotoServer(t)
	db := dynamodb.NewFromConfig(testenv.AWSConfig(testenv.DynamoDBLocal(t)), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	if err := dynamo.CreateTable(ctx, db, "fanout"); err != nil {
		t.Fatal(err)
	}
	st := dynamo.New(db, "fanout")
	sl := slacklocal.Start(nil)
	defer sl.Stop()

	sq := sqs.NewFromConfig(testenv.AWSConfig(moto.Endpoint))
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("regflow-sweep")})
	if err != nil {
		t.Fatal(err)
	}

	// Two registries, ten managed repositories each (20 expired + 10 young images), one unmanaged.
	targets := []sweep.Target{{Name: "dev", Account: "111111111111", Region: "us-east-1"}, {Name: "prod", Account: "333333333333", Region: "us-east-1"}}
	regs := map[string]sweep.Registry{}
	for _, tg := range targets {
		srv := sweeptest.StartECR(t, localecr.Options{Account: tg.Account, Clock: localecr.FixedClock(now)})
		for r := range 10 {
			var seeds []localecr.SeedImage
			for i := range 30 {
				pushed := now.Add(-100 * day)
				if i >= 20 {
					pushed = now.Add(-day)
				}
				seeds = append(seeds, localecr.SeedImage{Manifest: sweeptest.Plain(fmt.Sprintf("%s/%d/%d", tg.Name, r, i)), PushedAt: pushed, SizeBytes: 1 << 20})
			}
			sweeptest.Seed(t, srv, fmt.Sprintf("r%02d", r), seeds...)
		}
		sweeptest.Seed(t, srv, "unmanaged/x", localecr.SeedImage{Manifest: sweeptest.Plain("u"), PushedAt: now.Add(-300 * day)})
		regs[tg.Key()] = ecr.SweepRegistry(ecr.New(sweeptest.Client(srv), ""))
	}
	registries := func(_ context.Context, tg sweep.Target) (sweep.Registry, error) { return regs[tg.Key()], nil }
	sweeper := &sweep.Sweeper{Retention: retentionConfig(), Repositories: []string{"r*"}, Audit: st, Cache: st, Protection: st, Environments: []string{"dev", "prod"}}
	var finished []*sweep.Report
	var mu sync.Mutex
	finisher := &sweep.Finisher{Store: st, Notifier: slackbot.New(slackbot.Options{Token: func(context.Context) (string, error) { return "xoxb-test", nil }, APIURL: sl.APIURL(), AlertChannel: "C0ALERTS"}),
		Now: time.Now, OnFinish: func(r *sweep.Report) { mu.Lock(); finished = append(finished, r); mu.Unlock() }}
	planner := &sweep.Planner{Targets: targets, Sweeper: sweeper, Registries: registries, Store: st,
		Queue: &sweepsqs.Queue{API: sq, URL: aws.ToString(q.QueueUrl)}, Finisher: finisher, BatchSize: 3, Now: time.Now}
	worker := &sweep.Worker{Sweeper: sweeper, Registries: registries, Protection: st, Store: st, Finisher: finisher}
	handler := sweepsqs.Handler(worker)

	run, err := sweep.RunFromEvent([]byte(`{"detail-type":"Scheduled Event","time":"2026-11-27T03:00:00Z","detail":{}}`), false, now)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := planner.Plan(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Batches != 8 || plan.Repositories != 20 || plan.Finished {
		t.Fatalf("plan = %+v, want 8 batches of 20 repositories", plan)
	}

	var records []events.SQSMessage
	for empty := 0; empty < 2; {
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			empty++
		}
		for _, m := range out.Messages {
			records = append(records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), Body: aws.ToString(m.Body),
				Attributes: map[string]string{"ApproximateReceiveCount": "1"}})
		}
	}
	if len(records) != 8 {
		t.Fatalf("received %d messages, want 8", len(records))
	}
	// Every message twice (at-least-once delivery), in random order, four workers at once.
	deliveries := append(append([]events.SQSMessage{}, records...), records...)
	rand.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	// A delivery that finds its batch busy fails and is delivered again, as SQS would.
	busy := 0
	for round := 0; len(deliveries) > 0; round++ {
		if round > 5 {
			t.Fatalf("%d deliveries still failing", len(deliveries))
		}
		work := make(chan events.SQSMessage)
		var (
			wg    sync.WaitGroup
			retry []events.SQSMessage
		)
		for range 4 {
			wg.Go(func() {
				for m := range work {
					resp, err := handler(ctx, events.SQSEvent{Records: []events.SQSMessage{m}})
					if err != nil {
						t.Error(err)
					}
					if len(resp.BatchItemFailures) > 0 {
						mu.Lock()
						retry = append(retry, m)
						busy++
						mu.Unlock()
					}
				}
			})
		}
		for _, m := range deliveries {
			work <- m
		}
		close(work)
		wg.Wait()
		deliveries = retry
	}
	t.Logf("%d deliveries found their batch busy and were delivered again", busy)

	sr, err := st.GetSweepRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !sr.Finished() || sr.Done() != 8 {
		t.Fatalf("run %+v not finished", sr)
	}
	if c := sr.SweepCounts; c.Repositories != 20 || c.Images != 600 || c.Selected != 400 || c.Deleted != 400 || c.Kept != 200 || c.BytesReclaimed != 400<<20 || c.FailedRepositories != 0 {
		t.Fatalf("counters %+v: want 20 repositories, 600 images, 400 deleted", c)
	}
	msgs := sl.Messages()
	if len(msgs) != 1 || msgs[0].Channel != "C0ALERTS" || !strings.Contains(msgs[0].Text, "Deleted 400 of 600 images in 20 repositories (dev, prod)") {
		t.Fatalf("Slack got %+v, want one summary", msgs)
	}
	if len(finished) != 1 {
		t.Fatalf("%d finishers", len(finished))
	}
	rep, err := sweep.LoadReport(ctx, st, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	sel, out := rep.Totals()
	if len(rep.Registries) != 2 || sel.Images != 600 || out.Removed != 400 || len(rep.Registries[0].Report.Decisions) != 300 {
		t.Fatalf("stored report: %d registries, %d images, %d removed", len(rep.Registries), sel.Images, out.Removed)
	}
	for _, tg := range targets {
		for r := range 10 {
			imgs, err := regs[tg.Key()].ListImages(ctx, fmt.Sprintf("r%02d", r))
			if err != nil || len(imgs) != 10 {
				t.Fatalf("%s r%02d: %d images left, %v", tg.Name, r, len(imgs), err)
			}
		}
		if imgs, _ := regs[tg.Key()].ListImages(ctx, "unmanaged/x"); len(imgs) != 1 {
			t.Fatalf("unmanaged repository of %s was swept", tg.Name)
		}
	}

	// The schedule event again: already planned, nothing sent, no second summary.
	again, err := planner.Plan(ctx, run)
	if err != nil || !again.AlreadyPlanned {
		t.Fatalf("replanned: %+v, %v", again, err)
	}
	out2, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil || len(out2.Messages) != 0 {
		t.Fatalf("a redelivered schedule sent %d messages (%v)", len(out2.Messages), err)
	}
	if n := len(sl.Messages()); n != 1 {
		t.Fatalf("%d Slack messages after a redelivered schedule", n)
	}
}

// TestInlineFanOut runs the planner with no queue: batches go straight to a worker
// in process, and a registry that cannot be listed is reported, not fatal.
func TestInlineFanOut(t *testing.T) {
	e := newEstate(t)
	ctx := context.Background()
	var posted []string
	var events [][]byte
	finisher := &sweep.Finisher{Store: e.store, Notifier: notifierFunc(func(s string) { posted = append(posted, s) }), Now: time.Now,
		Publisher: publisherFunc(func(ev []byte) { events = append(events, ev) })}
	registries := func(_ context.Context, tg sweep.Target) (sweep.Registry, error) {
		if tg.Name == "broken" {
			return nil, fmt.Errorf("AccessDenied: cannot assume regflow-sweeper")
		}
		return e.registry(), nil
	}
	worker := &sweep.Worker{Sweeper: e.sweeper(), Registries: registries, Protection: e.store, Store: e.store, Finisher: finisher}
	planner := &sweep.Planner{
		Targets: []sweep.Target{target, {Name: "broken", Account: "999999999999", Region: "us-east-1"}},
		Sweeper: e.sweeper(), Registries: registries, Store: e.store, Queue: &sweep.InlineQueue{Worker: worker, Concurrency: 2},
		Finisher: finisher, Now: time.Now,
	}
	plan, err := planner.Plan(ctx, sweep.Run{ID: "inline", Now: now, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Finished || plan.Batches != 2 {
		t.Fatalf("plan %+v", plan)
	}
	if len(posted) != 1 || !strings.Contains(posted[0], "Dry run: would delete 1607 of") || !strings.Contains(posted[0], "1 repository could not be swept") {
		t.Fatalf("posted %q", posted)
	}
	if len(events) != 1 {
		t.Fatalf("%d Retention Sweep Completed events, want 1", len(events))
	}
	ev, err := event.Parse(events[0])
	var done event.RetentionSweepCompleted
	if err != nil || ev.DetailType != event.TypeRetentionSweepCompleted || json.Unmarshal(ev.Detail, &done) != nil ||
		!done.DryRun || done.Selected != 1607 || done.Removed != 0 || done.FailedRepositories != 1 {
		t.Fatalf("event %s: %+v, %v", ev.DetailType, done, err)
	}
	if len(e.present(t)) != len(e.kept)+len(e.protected)+len(e.deleted) {
		t.Fatal("a dry run deleted")
	}
}

type notifierFunc func(string)

func (f notifierFunc) Notify(_ context.Context, a regflow.Alert) error { f(a.Text); return nil }

type publisherFunc func([]byte)

func (f publisherFunc) Publish(_ context.Context, m event.Message) error {
	ev, err := m.Encode()
	if err != nil {
		return err
	}
	f(ev)
	return nil
}
