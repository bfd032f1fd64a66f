package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/store"
	"github.com/regflow/regflow/shared/store/dynamo"
	"github.com/regflow/regflow/shared/sweep"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "sweeper", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUnderLambdaRIE runs the real bootstrap under the Runtime Interface Emulator
// with events/sweeper/sqs-batch.json, against a local ECR, DynamoDB Local, moto's
// Secrets Manager and a Slack stand-in: the batch is swept, the run completes and
// the summary is posted once, however often the message comes.
func TestUnderLambdaRIE(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and needs the emulators")
	}
	ctx := context.Background()
	var ev struct {
		Records []struct {
			Body string `json:"body"`
		} `json:"Records"`
	}
	raw := sample(t, "sqs-batch.json")
	if err := json.Unmarshal(raw, &ev); err != nil || len(ev.Records) != 1 {
		t.Fatalf("sample: %v", err)
	}
	msg, err := sweep.ParseMessage([]byte(ev.Records[0].Body))
	if err != nil {
		t.Fatal(err)
	}

	srv := sweeptest.StartECR(t, localecr.Options{Account: msg.Target.Account, Clock: localecr.FixedClock(msg.Run.Now)})
	var old []string
	for _, repo := range msg.Repositories {
		for i := range 150 {
			pushed := msg.Run.Now.Add(-100 * 24 * time.Hour)
			if i%3 == 0 {
				pushed = msg.Run.Now.Add(-time.Hour)
			}
			d := sweeptest.Seed(t, srv, repo, localecr.SeedImage{Manifest: sweeptest.Plain(repo + string(rune('a'+i%26)) + strings.Repeat("x", i)), PushedAt: pushed})
			if i%3 != 0 {
				old = append(old, repo+"@"+d[0])
			}
		}
	}
	sweeptest.Seed(t, srv, "outside/glob", localecr.SeedImage{Manifest: sweeptest.Plain("o"), PushedAt: msg.Run.Now.Add(-400 * 24 * time.Hour)})

	moto := testenv.MotoServer(t)
	ddbURL := testenv.DynamoDBLocal(t)
	sl := slacklocal.Start(nil)
	defer sl.Stop()
	testenv.SlackSecrets(t, testenv.AWSConfig(moto.Endpoint), "s3cr3t", "xoxb-rie")
	db := dynamodb.NewFromConfig(testenv.AWSConfig(ddbURL), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	if err := dynamo.CreateTable(ctx, db, "regflow-sweep-rie"); err != nil {
		t.Fatal(err)
	}
	st := dynamo.New(db, "regflow-sweep-rie")
	// The planner created the run with this one batch.
	if _, err := st.CreateSweepRun(ctx, store.SweepRun{ID: msg.Run.ID, Now: msg.Run.Now, StartedAt: msg.Run.Now}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetSweepTotal(ctx, msg.Run.ID, 1); err != nil {
		t.Fatal(err)
	}

	// The regflow bus in moto, with a rule that copies "Retention Sweep Completed" to a queue
	// the test reads.
	eb := eventbridge.NewFromConfig(testenv.AWSConfig(moto.Endpoint))
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("regflow")}); err != nil {
		t.Fatal(err)
	}
	sq := sqs.NewFromConfig(testenv.AWSConfig(moto.Endpoint))
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("sweep-completed")})
	if err != nil {
		t.Fatal(err)
	}
	qa, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("completed"), EventBusName: aws.String("regflow"),
		EventPattern: aws.String(`{"detail-type":["Retention Sweep Completed"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("completed"), EventBusName: aws.String("regflow"),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(qa.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])}}}); err != nil {
		t.Fatal(err)
	}

	cfg := `{"pipeline":{"account":"111111111111","table":"regflow-sweep-rie"},"promotionPath":["dev"],` +
		`"environments":{"dev":{"account":"111111111111"}},"alerts":{"slackChannel":"C0ALERTS"},` +
		`"repositories":["team/*"],"retention":{"maxAge":"90d","untaggedMaxAge":"14d"}}`
	bootstrap := testenv.BuildBootstrap(t, ".")
	rie := testenv.LambdaRIE(t, bootstrap, []string{
		"REGFLOW_CONFIG_INLINE=" + cfg,
		"REGFLOW_SWEEPER_ROLE=regflow-sweeper",
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_ECR=" + srv.URL(),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + moto.Endpoint,
		"AWS_ENDPOINT_URL_EVENTBRIDGE=" + moto.Endpoint,
		// What runs in the account (in-use protection): moto's ECS and Lambda, empty.
		"AWS_ENDPOINT_URL_ECS=" + moto.Endpoint, "AWS_ENDPOINT_URL_LAMBDA=" + moto.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB=" + ddbURL,
		"REGFLOW_SLACK_API_URL=" + sl.APIURL(),
	})
	invoke := func(event []byte) map[string]any {
		t.Helper()
		body, err := rie.Invoke(ctx, event)
		if err != nil {
			t.Fatalf("invoke: %v\n%s", err, rie.Log())
		}
		var out map[string]any
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("response %s: %v", body, err)
		}
		if msg, ok := out["errorMessage"]; ok {
			t.Fatalf("function error: %v\n%s", msg, rie.Log())
		}
		return out
	}

	for i := range 2 {
		out := invoke(raw)
		if f, _ := out["batchItemFailures"].([]any); len(f) != 0 {
			t.Fatalf("delivery %d: failures %v\n%s", i+1, f, rie.Log())
		}
	}
	sr, err := st.GetSweepRun(ctx, msg.Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !sr.Finished() || sr.Deleted != len(old) || sr.Images != 300 || sr.Repositories != 2 {
		t.Fatalf("run after two deliveries: %+v; want %d of 300 deleted in 2 repositories", sr, len(old))
	}
	msgs := sl.Messages()
	if len(msgs) != 1 || msgs[0].Channel != "C0ALERTS" || !strings.Contains(msgs[0].Text, "Deleted 200 of 300 images in 2 repositories (dev)") {
		t.Fatalf("Slack: %+v, want one summary", msgs)
	}
	for _, ref := range old[:3] {
		trail, err := st.Audit(ctx, ref)
		if err != nil || len(trail) != 1 || trail[0].Actor != sweep.Actor {
			t.Fatalf("audit of %s: %+v %v", ref, trail, err)
		}
	}
	// One summary, so one EMF document with the run's figures.
	if n := strings.Count(rie.Log(), `"SweepImagesDeleted":200`); n != 1 {
		t.Fatalf("%d EMF documents with the sweep's deletions, want 1:\n%s", n, rie.Log())
	}
	if n := srv.Requests("BatchDeleteImage"); n != 2 {
		t.Errorf("BatchDeleteImage calls = %d, want 2 (100 old images per repository)", n)
	}
	// A message for a repository outside the config's globs is ignored; a malformed one is dropped.
	hand := strings.Replace(string(raw), `team/app`, `outside/glob`, 1)
	hand = strings.Replace(hand, `00000`, `00001`, 1)
	if out := invoke([]byte(hand)); len(out["batchItemFailures"].([]any)) != 0 {
		t.Fatalf("hand-made message: %v", out)
	}
	if out := invoke([]byte(`{"Records":[{"messageId":"m1","body":"not json"}]}`)); len(out["batchItemFailures"].([]any)) != 0 {
		t.Fatalf("malformed message: %v", out)
	}
	if imgs, err := ecr.New(sweeptest.Client(srv), "").ListImages(ctx, "outside/glob"); err != nil || len(imgs) != 1 {
		t.Fatalf("a repository outside the globs was swept: %d images left, %v", len(imgs), err)
	}
	if n := len(sl.Messages()); n != 1 {
		t.Fatalf("%d Slack messages, want still 1", n)
	}
	got, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	var done struct {
		Detail event.RetentionSweepCompleted `json:"detail"`
	}
	if err != nil || len(got.Messages) != 1 || json.Unmarshal([]byte(aws.ToString(got.Messages[0].Body)), &done) != nil || done.Detail.Removed != 200 {
		t.Fatalf("Retention Sweep Completed events: %d, %v; want exactly one with removed 200: %s", len(got.Messages), err, bodies(got.Messages))
	}
	t.Logf("RIE init duration: %s", rie.InitDuration())
}

func bodies(ms []sqstypes.Message) string {
	var b []string
	for _, m := range ms {
		b = append(b, aws.ToString(m.Body))
	}
	return strings.Join(b, "\n")
}
