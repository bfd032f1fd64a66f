package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/store/dynamo"
	"github.com/regflow/regflow/shared/sweep"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestUnderLambdaRIE runs the real bootstrap under the Runtime Interface Emulator
// with events/sweeper/schedule.json: it lists the local ECR's repositories and
// sends them to moto's SQS in batches of 25, once however often the event comes.
func TestUnderLambdaRIE(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and needs the emulators")
	}
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "sweeper", "schedule.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := sweeptest.StartECR(t, localecr.Options{Account: "111111111111"})
	for i := range 60 {
		sweeptest.Seed(t, srv, fmt.Sprintf("team/r%02d", i), localecr.SeedImage{Manifest: sweeptest.Plain(fmt.Sprint(i))})
	}
	sweeptest.Seed(t, srv, "outside/x", localecr.SeedImage{Manifest: sweeptest.Plain("x")})

	moto := testenv.MotoServer(t)
	ddbURL := testenv.DynamoDBLocal(t)
	sq := sqs.NewFromConfig(testenv.AWSConfig(moto.Endpoint))
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("regflow-sweep")})
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(testenv.AWSConfig(ddbURL), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	if err := dynamo.CreateTable(ctx, db, "regflow-sweeper-rie"); err != nil {
		t.Fatal(err)
	}
	cfg := `{"pipeline":{"account":"111111111111","table":"regflow-sweeper-rie"},"promotionPath":["dev"],` +
		`"environments":{"dev":{"account":"111111111111"}},"repositories":["team/*"]}`
	rie := testenv.LambdaRIE(t, testenv.BuildBootstrap(t, "."), []string{
		"REGFLOW_CONFIG_INLINE=" + cfg,
		"REGFLOW_SWEEP_QUEUE_URL=" + aws.ToString(q.QueueUrl),
		"REGFLOW_SWEEPER_ROLE=regflow-sweeper",
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_ECR=" + srv.URL(),
		"AWS_ENDPOINT_URL_SQS=" + moto.Endpoint,
		"AWS_ENDPOINT_URL_EVENTBRIDGE=" + moto.Endpoint,
		// What runs in the account (in-use protection): moto's ECS and Lambda, empty.
		"AWS_ENDPOINT_URL_ECS=" + moto.Endpoint, "AWS_ENDPOINT_URL_LAMBDA=" + moto.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB=" + ddbURL,
	})
	var plans []sweep.Plan
	for range 2 {
		body, err := rie.Invoke(ctx, raw)
		if err != nil {
			t.Fatalf("invoke: %v\n%s", err, rie.Log())
		}
		var p sweep.Plan
		if err := json.Unmarshal(body, &p); err != nil || p.Run.ID == "" {
			t.Fatalf("response %s: %v\n%s", body, err, rie.Log())
		}
		plans = append(plans, p)
	}
	want := sweep.Run{ID: "sweep-20261127T030000Z", Now: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)}
	if p := plans[0]; p.Run != want || p.Batches != 3 || p.Repositories != 60 || p.AlreadyPlanned {
		t.Fatalf("first plan %+v", p)
	}
	if p := plans[1]; !p.AlreadyPlanned || p.Batches != 3 {
		t.Fatalf("second plan %+v: want already planned", p)
	}
	repos := 0
	for {
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			msg, err := sweep.ParseMessage([]byte(aws.ToString(m.Body)))
			if err != nil || msg.Run != want {
				t.Fatalf("message %s: %v", aws.ToString(m.Body), err)
			}
			repos += len(msg.Repositories)
		}
	}
	if repos != 60 {
		t.Fatalf("queued %d repositories, want 60 (the one outside team/* left out, none twice)", repos)
	}
	if n := srv.Requests("DescribeRepositories"); n != 1 {
		t.Errorf("DescribeRepositories calls = %d, want 1 (the second event is already planned)", n)
	}
}
