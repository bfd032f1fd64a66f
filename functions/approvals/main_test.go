package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slack-go/slack"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/slacksig"
	"github.com/regflow/regflow/shared/store/dynamo"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "approvals", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleSecret signed the events/approvals samples (README there).
const sampleSecret = "regflow-sample-signing-secret"

// resign returns a sample event with its payload's response_url pointed at hooks and a
// signature made now, as Slack would send the same click today.
func resign(t *testing.T, event []byte, hooks string, base64Body bool) []byte {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(event, &ev); err != nil {
		t.Fatal(err)
	}
	body, err := base64.StdEncoding.DecodeString(ev.Body)
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(form.Get("payload")), &p); err != nil {
		t.Fatal(err)
	}
	p["response_url"] = hooks + "/actions/T0REGFLOW/1700000000/sample"
	pb, _ := json.Marshal(p)
	body = []byte(url.Values{"payload": {string(pb)}}.Encode())
	h := http.Header{}
	slacksig.Sign(h, []byte(sampleSecret), time.Now(), body)
	ev.Headers["x-slack-request-timestamp"] = h.Get(slacksig.HeaderTimestamp)
	ev.Headers["x-slack-signature"] = h.Get(slacksig.HeaderSignature)
	ev.Headers["content-length"] = strconv.Itoa(len(body))
	ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	if !base64Body {
		ev.Body, ev.IsBase64Encoded = string(body), false
	}
	out, _ := json.Marshal(ev)
	return out
}

// TestUnderLambdaRIE runs the real bootstrap under the Runtime Interface Emulator with the
// events/approvals samples (API Gateway HTTP API payload 2.0, base64 form body), against
// moto (Secrets Manager, EventBridge → SQS), DynamoDB Local and the Slack stand-in.
func TestUnderLambdaRIE(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and needs the emulators")
	}
	ctx := context.Background()
	moto := testenv.MotoServer(t)
	ddbURL := testenv.DynamoDBLocal(t)
	sl := slacklocal.Start(nil)
	defer sl.Stop()
	var mu sync.Mutex
	var replies []slack.WebhookMessage
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m slack.WebhookMessage
		_ = json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		replies = append(replies, m)
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	defer hooks.Close()

	awsCfg := testenv.AWSConfig(moto.Endpoint)
	testenv.SlackSecrets(t, awsCfg, sampleSecret, "xoxb-rie")
	queue := busToQueue(t, ctx, awsCfg, "regflow")

	db := dynamodb.NewFromConfig(testenv.AWSConfig(ddbURL), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	const table = "regflow-approvals-rie"
	if err := dynamo.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	st := dynamo.New(db, table)

	// The request the samples click on, as the scan gate opens it, with its message posted.
	const repo, digest, tag = "demo/app", "sha256:7c7cc26684ee2764744fa61f4d41b53f45c0e726cef1cbc12c0acadcb0449942", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
	r := regflow.ApprovalRequest{ID: regflow.RequestID("prod", repo, digest), Env: "prod", Repository: repo, Digest: digest, Tag: tag, Commit: tag,
		Status: regflow.StatusPending, RequestedBy: "regflow/scangate", Required: 1, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	ch, ts, err := slackbot.New(slackbot.Options{Token: func(context.Context) (string, error) { return "xoxb-rie", nil }, APIURL: sl.APIURL()}).Post(ctx, "C0PROD", r, slackmsg.Context{})
	if err != nil {
		t.Fatal(err)
	}
	r.SlackChannel, r.SlackTS = ch, ts
	if ok, err := st.CreateRequest(ctx, r); err != nil || !ok {
		t.Fatalf("seed request: %v %v", ok, err)
	}

	cfg := `{"pipeline":{"account":"111111111111","table":"` + table + `"},"promotionPath":["staging","prod"],` +
		`"environments":{"staging":{"account":"111111111111"},"prod":{"account":"333333333333","slackChannel":"C0PROD",` +
		`"promotionRole":"arn:aws:iam::333333333333:role/regflow-promotion","externalId":"regflow-prod",` +
		`"approvers":{"users":["U0ALICE","U0BOB","U0CAROL"],"required":1}}}}`
	bootstrap := testenv.BuildBootstrap(t, ".")
	if fi, err := os.Stat(bootstrap); err == nil {
		t.Logf("bootstrap (host arch) size: %.1f MiB", float64(fi.Size())/(1<<20))
	}
	rie := testenv.LambdaRIE(t, bootstrap, []string{
		"REGFLOW_CONFIG_INLINE=" + cfg,
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + moto.Endpoint,
		"AWS_ENDPOINT_URL_EVENTBRIDGE=" + moto.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB=" + ddbURL,
		"REGFLOW_SLACK_API_URL=" + sl.APIURL(),
		awsapp.EnvResponseURLPrefixes + "=" + hooks.URL + "/actions/",
	})
	invoke := func(event []byte) (events.APIGatewayV2HTTPResponse, approvals.Reply) {
		t.Helper()
		body, err := rie.Invoke(ctx, event)
		if err != nil {
			t.Fatalf("invoke: %v\n%s", err, rie.Log())
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(body, &resp); err != nil || resp.StatusCode == 0 {
			t.Fatalf("response %s: %v\n%s", body, err, rie.Log())
		}
		var rep approvals.Reply
		if err := json.Unmarshal([]byte(resp.Body), &rep); err != nil {
			t.Fatalf("reply %q: %v", resp.Body, err)
		}
		return resp, rep
	}

	// The sample as stored was signed long ago: refused as stale, nothing written.
	resp, _ := invoke(sample(t, "approve-click.json"))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("stale sample: HTTP %d %s", resp.StatusCode, resp.Body)
	}
	if got, _ := st.GetRequest(ctx, r.ID); got.Version != 1 {
		t.Fatal("a stale click wrote")
	}

	// The same click signed now approves: one event on the bus, the message loses its buttons.
	resp, rep := invoke(resign(t, sample(t, "approve-click.json"), hooks.URL, true))
	if resp.StatusCode != http.StatusOK || resp.Headers[approvals.HeaderOutcome] != string(approvals.KindApproved) || !strings.Contains(rep.Text, "Approved `demo/app:") {
		t.Fatalf("approve: HTTP %d %v %q\n%s", resp.StatusCode, resp.Headers, rep.Text, rie.Log())
	}
	got, err := st.GetRequest(ctx, r.ID)
	if err != nil || got.Status != regflow.StatusApproved || got.DecidedBy != "U0ALICE" {
		t.Fatalf("stored request %+v %v", got, err)
	}
	msgs := receive(t, ctx, awsCfg, queue)
	if len(msgs) != 1 || msgs[0].DetailType != event.TypePromotionApproved {
		t.Fatalf("bus delivered %d events, want one Promotion Approved: %+v", len(msgs), msgs)
	}
	var d event.PromotionDecision
	if err := json.Unmarshal(msgs[0].Detail, &d); err != nil || d.RequestID != r.ID || d.Digest != digest || d.DecidedBy != "U0ALICE" {
		t.Fatalf("event detail %+v %v", d, err)
	}
	if m := sl.Messages()[0]; m.Updates != 1 || !strings.Contains(m.Text, "[approved]") {
		t.Fatalf("Slack message %+v", m)
	}

	// A later Reject (raw, not base64, body this time) is told who decided; no second event.
	resp, rep = invoke(resign(t, sample(t, "reject-click.json"), hooks.URL, false))
	if resp.StatusCode != http.StatusOK || resp.Headers[approvals.HeaderOutcome] != string(approvals.KindRefused) || !strings.Contains(rep.Text, "Already approved by <@U0ALICE>") {
		t.Fatalf("late reject: HTTP %d %q", resp.StatusCode, rep.Text)
	}
	if n := len(receive(t, ctx, awsCfg, queue)); n != 0 {
		t.Fatalf("%d more events after a late click", n)
	}
	// Every answer's latency is recorded (what Slack's 3 s limit is measured against).
	if n := strings.Count(rie.Log(), `"ApprovalAnswerLatency":`); n < 3 {
		t.Fatalf("%d EMF documents with the answer latency, want one per answered click:\n%s", n, rie.Log())
	}
	mu.Lock()
	if len(replies) != 2 || !strings.HasPrefix(replies[1].Text, "Already approved") || replies[1].ResponseType != "ephemeral" {
		t.Fatalf("response_url replies %+v", replies)
	}
	mu.Unlock()
	trail, err := st.Audit(ctx, r.Ref())
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, e := range trail {
		actions[e.Action] = e.Actor
	}
	if len(trail) != 2 || actions[event.ActionApprovalApproved] != "U0ALICE" || actions[event.ActionApprovalRefused] != "U0ALICE" {
		t.Fatalf("audit %+v: want the approval and the late click's refusal, both by U0ALICE", trail)
	}
	t.Logf("RIE init duration: %s", rie.InitDuration())
}

// busToQueue creates the bus and routes every regflow event on it to a fresh SQS queue.
func busToQueue(t *testing.T, ctx context.Context, cfg aws.Config, busName string) string {
	t.Helper()
	eb, q := eventbridge.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(busName)}); err != nil {
		t.Fatal(err)
	}
	queue, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("regflow-events")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("all-regflow"), EventBusName: aws.String(busName), EventPattern: aws.String(`{"source":["regflow"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("all-regflow"), EventBusName: aws.String(busName),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(attrs.Attributes["QueueArn"])}}}); err != nil {
		t.Fatal(err)
	}
	return aws.ToString(queue.QueueUrl)
}

func receive(t *testing.T, ctx context.Context, cfg aws.Config, queue string) []event.Envelope {
	t.Helper()
	q := sqs.NewFromConfig(cfg)
	var out []event.Envelope
	for {
		msgs, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs.Messages) == 0 {
			return out
		}
		for _, m := range msgs.Messages {
			ev, err := event.Parse([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("queue message %s: %v", aws.ToString(m.Body), err)
			}
			out = append(out, ev)
			if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queue), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSamplesMatchTheirSchemas: the bus samples decode strictly into the event and detail
// types, and the click samples carry a valid signature (made with sampleSecret at their
// timestamp) over a body the parser accepts.
func TestSamplesMatchTheirSchemas(t *testing.T) {
	for _, tc := range []struct{ file, dt, decision string }{
		{"promotion-approved.json", event.TypePromotionApproved, regflow.StatusApproved},
		{"promotion-rejected.json", event.TypePromotionRejected, regflow.StatusRejected},
	} {
		var ev event.Envelope
		dec := json.NewDecoder(strings.NewReader(string(sample(t, tc.file))))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		var d event.PromotionDecision
		dec = json.NewDecoder(strings.NewReader(string(ev.Detail)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s detail: %v", tc.file, err)
		}
		if ev.Source != event.SourceRegflow || ev.DetailType != tc.dt || d.Decision != tc.decision || d.RequestID == "" || d.DecidedBy == "" {
			t.Fatalf("%s: %+v %+v", tc.file, ev, d)
		}
	}
	for _, tc := range []struct{ file, action string }{{"approve-click.json", slackmsg.ActionApprove}, {"reject-click.json", slackmsg.ActionReject}} {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(sample(t, tc.file), &ev); err != nil {
			t.Fatal(err)
		}
		body, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil || !ev.IsBase64Encoded || ev.RouteKey != "POST "+approvals.Path {
			t.Fatalf("%s: base64 %v, route %q: %v", tc.file, ev.IsBase64Encoded, ev.RouteKey, err)
		}
		h := http.Header{}
		h.Set(slacksig.HeaderSignature, ev.Headers["x-slack-signature"])
		h.Set(slacksig.HeaderTimestamp, ev.Headers["x-slack-request-timestamp"])
		sec, _ := strconv.ParseInt(ev.Headers["x-slack-request-timestamp"], 10, 64)
		v := slacksig.Verifier{Secret: func(context.Context) ([]byte, error) { return []byte(sampleSecret), nil }, Now: func() time.Time { return time.Unix(sec, 0) }}
		if err := v.Verify(context.Background(), h, body); err != nil {
			t.Fatalf("%s signature: %v", tc.file, err)
		}
		c, err := approvals.ParseForm(body)
		if err != nil || c.Action != tc.action || c.User != "U0ALICE" || c.RequestID != regflow.RequestID("prod", "demo/app", "sha256:7c7cc26684ee2764744fa61f4d41b53f45c0e726cef1cbc12c0acadcb0449942") {
			t.Fatalf("%s click %+v %v", tc.file, c, err)
		}
		if ev.Headers["content-length"] != fmt.Sprint(len(body)) {
			t.Fatalf("%s content-length %s, body %d", tc.file, ev.Headers["content-length"], len(body))
		}
	}
}
