package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/regflow/regflow/shared/local/localbus"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/route"
)

// sample is one EventBridge-shaped payload, sent as if from one account.
type sample struct {
	name    string
	account string // empty: the payload as published (it may not be JSON at all)
	raw     []byte // what the local bus receives
	entry   *ebtypes.PutEventsRequestEntry
}

// TestRoutingAgreement feeds every EventBridge-shaped sample under events/ and every
// eventbridge-* sample in ../shared/testdata/real/, as published and re-sent from each
// configured account and a foreign one, through both sides and requires the same
// functions to be chosen. The AWS side is the EventPattern of each AWS::Events::Rule on
// the regflow bus in the synthesized pipeline template, evaluated by moto's EventBridge
// (rules put with PutRule, one SQS queue per rule, events put with PutEvents from that
// account). moto has no TestEventPattern (it raises NotImplementedError), and PutEvents
// stamps the caller's account, so each account gets its own copy of the rules. The local
// side is a local bus subscribed from route.Table.
func TestRoutingAgreement(t *testing.T) {
	s := synth(t, repoConfig(t))
	moto := testenv.MotoServer(t)
	ctx := context.Background()

	// The AWS side's rules, straight from the template.
	pt := s.templates[namePrefix+"-pipeline"]
	busID, _ := pt.byProp(t, "AWS::Events::EventBus", "Name", s.cfg.Pipeline.EventBus)
	fnByID := map[string]string{}
	for id, r := range pt.resources("AWS::Lambda::Function") {
		fnByID[id] = strings.TrimPrefix(fmt.Sprint(props(r)["FunctionName"]), namePrefix+"-")
	}
	type awsRule struct{ name, fn, pattern string }
	var rules []awsRule
	for _, r := range pt.resources("AWS::Events::Rule") {
		p := props(r)
		if logicalID(p["EventBusName"]) != busID || p["EventPattern"] == nil {
			continue
		}
		pattern, err := json.Marshal(p["EventPattern"])
		if err != nil {
			t.Fatal(err)
		}
		tg := p["Targets"].([]any)[0].(map[string]any)
		fn := fnByID[logicalID(tg["Arn"])]
		if fn == "" {
			t.Fatalf("rule %v targets %v, not a function", p["Name"], tg["Arn"])
		}
		rules = append(rules, awsRule{name: fmt.Sprint(p["Name"]), fn: fn, pattern: string(pattern)})
	}
	if len(rules) != len(route.Functions(route.Table(s.cfg))) {
		t.Fatalf("the template has %d rules on the regflow bus, the routing table %d", len(rules), len(route.Functions(route.Table(s.cfg))))
	}

	// Every rule in every stack is the table's, rendered: no pattern is written by hand.
	byName := map[string]route.Route{}
	for _, r := range route.Table(s.cfg) {
		byName[namePrefix+"-"+r.Name] = r
	}
	for stack, tp := range s.templates {
		for _, r := range tp.resources("AWS::Events::Rule") {
			p := props(r)
			want, ok := byName[fmt.Sprint(p["Name"])]
			switch {
			case !ok:
				t.Errorf("%s: rule %v is not in the routing table", stack, p["Name"])
			case want.Pattern == nil:
				if p["ScheduleExpression"] != want.Schedule || p["EventPattern"] != nil {
					t.Errorf("%s: rule %v is not the table's schedule %q", stack, p["Name"], want.Schedule)
				}
			default:
				wantJSON, err := want.Pattern.JSON()
				if err != nil {
					t.Fatal(err)
				}
				// Both are maps marshalled by encoding/json: sorted keys, compact.
				if gotJSON, _ := json.Marshal(p["EventPattern"]); string(gotJSON) != string(wantJSON) {
					t.Errorf("%s: rule %v pattern %s, the table says %s", stack, p["Name"], gotJSON, wantJSON)
				}
			}
		}
	}

	// The local side.
	local := localbus.NewBus(slog.New(slog.DiscardHandler), nil)
	var localGot []string
	handlers := map[string]localbus.Handler{}
	for _, fn := range []string{route.Tagguard, route.Scangate, route.Promoter} {
		handlers[fn] = func(context.Context, []byte) error { localGot = append(localGot, fn); return nil }
	}
	if err := local.SubscribeRoutes(route.Table(s.cfg), handlers); err != nil {
		t.Fatal(err)
	}

	accounts := []string{"999999999999"} // an account regflow does not know
	for _, env := range s.cfg.PromotionPath {
		if a := s.cfg.Environments[env].Account; !slices.Contains(accounts, a) {
			accounts = append(accounts, a)
		}
	}
	samples := loadSamples(t, accounts)
	for _, sm := range samples {
		if sm.entry != nil && !slices.Contains(accounts, sm.account) {
			accounts = append(accounts, sm.account)
		}
	}

	// One bus, the rules and a queue per rule in every account moto will see events from.
	type side struct {
		events *eventbridge.Client
		sqs    *sqs.Client
		queues map[string]string // rule name -> queue URL
	}
	sides := map[string]*side{}
	for _, account := range accounts {
		cfg := motoAccount(ctx, t, moto.Endpoint, account)
		sd := &side{events: eventbridge.NewFromConfig(cfg), sqs: sqs.NewFromConfig(cfg), queues: map[string]string{}}
		if _, err := sd.events.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(s.cfg.Pipeline.EventBus)}); err != nil {
			t.Fatalf("create bus in %s: %v", account, err)
		}
		for i, r := range rules {
			q, err := sd.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("rule-%d", i))})
			if err != nil {
				t.Fatal(err)
			}
			sd.queues[r.name] = *q.QueueUrl
			if _, err := sd.events.PutRule(ctx, &eventbridge.PutRuleInput{
				Name: aws.String(r.name), EventBusName: aws.String(s.cfg.Pipeline.EventBus), EventPattern: aws.String(r.pattern),
			}); err != nil {
				t.Fatalf("put rule %s (%s): %v", r.name, r.pattern, err)
			}
			if _, err := sd.events.PutTargets(ctx, &eventbridge.PutTargetsInput{
				Rule: aws.String(r.name), EventBusName: aws.String(s.cfg.Pipeline.EventBus),
				Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(fmt.Sprintf("arn:aws:sqs:us-east-1:%s:rule-%d", account, i))}},
			}); err != nil {
				t.Fatal(err)
			}
		}
		sides[account] = sd
	}

	perFn := map[string]int{}
	for _, sm := range samples {
		localGot = nil
		_ = local.Publish(ctx, sm.raw) // an error is a payload that routes nowhere
		want := append([]string(nil), localGot...)

		var got []string
		if sm.entry != nil {
			sd := sides[sm.account]
			sm.entry.EventBusName = aws.String(s.cfg.Pipeline.EventBus)
			out, err := sd.events.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{*sm.entry}})
			if err != nil {
				t.Fatalf("%s: put events: %v", sm.name, err)
			}
			if out.FailedEntryCount == 0 {
				for _, r := range rules {
					msgs, err := sd.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(sd.queues[r.name]), MaxNumberOfMessages: 10})
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range msgs.Messages {
						got = append(got, r.fn)
						if _, err := sd.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(sd.queues[r.name]), ReceiptHandle: m.ReceiptHandle}); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s from %q: AWS rules chose %v, the local bus %v", sm.name, sm.account, got, want)
		}
		for _, fn := range got {
			perFn[fn]++
		}
		if len(got) == 0 {
			perFn["(none)"]++
		}
	}
	t.Logf("%d events fed to both sides (%d payloads not JSON as published; the rest from %d accounts); chosen: %v",
		len(samples), countRaw(samples), len(accounts), perFn)
	for _, fn := range []string{route.Tagguard, route.Scangate, route.Promoter} {
		if perFn[fn] == 0 {
			t.Errorf("no sample reached %s: the agreement proves nothing for it", fn)
		}
	}
}

func countRaw(samples []sample) int {
	n := 0
	for _, s := range samples {
		if s.account == "" {
			n++
		}
	}
	return n
}

// loadSamples reads the EventBridge-shaped samples: each as published, and re-sent from
// every account given (the account field is what the rules check).
func loadSamples(t *testing.T, accounts []string) []sample {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "events", "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	real, err := filepath.Glob(filepath.Join(testenv.RealTestdata(t), "eventbridge-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(real) == 0 {
		t.Fatal("no eventbridge-* samples in the published payloads folder")
	}
	var out []sample
	for _, f := range append(files, real...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name, err := filepath.Rel(root, f)
		if err != nil || strings.HasPrefix(name, "..") {
			name = "real/" + filepath.Base(f)
		}
		var fields map[string]json.RawMessage
		if json.Unmarshal(b, &fields) != nil {
			// Invalid as published: EventBridge would never carry it, the local bus refuses it.
			out = append(out, sample{name: name, raw: b})
			continue
		}
		if fields["detail-type"] == nil {
			continue // not EventBridge-shaped (API Gateway requests, SQS batches)
		}
		var orig string
		_ = json.Unmarshal(fields["account"], &orig)
		from := slices.Clone(accounts)
		if orig != "" && !slices.Contains(from, orig) {
			from = append(from, orig)
		}
		for _, account := range from {
			fields["account"], _ = json.Marshal(account)
			raw, err := json.Marshal(fields)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sample{name: name, account: account, raw: raw, entry: entryOf(fields)})
		}
	}
	return out
}

// entryOf is the PutEvents entry that makes EventBridge emit this event.
func entryOf(fields map[string]json.RawMessage) *ebtypes.PutEventsRequestEntry {
	var source, detailType string
	_ = json.Unmarshal(fields["source"], &source)
	_ = json.Unmarshal(fields["detail-type"], &detailType)
	detail := "{}"
	if d := fields["detail"]; d != nil {
		detail = string(d)
	}
	e := &ebtypes.PutEventsRequestEntry{Detail: aws.String(detail)}
	if source != "" {
		e.Source = aws.String(source)
	}
	if detailType != "" {
		e.DetailType = aws.String(detailType)
	}
	return e
}

// motoAccount returns an SDK config acting in account: moto attributes the calls of an
// assumed role's credentials to that role's account.
func motoAccount(ctx context.Context, t *testing.T, endpoint, account string) aws.Config {
	t.Helper()
	base := testenv.AWSConfig(endpoint)
	out, err := sts.NewFromConfig(base).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::" + account + ":role/routing"), RoleSessionName: aws.String("routing"),
	})
	if err != nil {
		t.Fatalf("assume a role in %s: %v", account, err)
	}
	c := out.Credentials
	base.Credentials = credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
	return base
}
