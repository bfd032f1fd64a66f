package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/metrics"
)

// TestExampleConfig synthesizes the repository's regflow.yaml (pipeline and dev in
// 111111111111, staging in 222222222222, prod in 333333333333) and checks every resource
// the issue names, with its key properties.
func TestExampleConfig(t *testing.T) {
	s := synth(t, repoConfig(t))
	if got := len(s.templates); got != 3 {
		t.Fatalf("want 3 stacks (pipeline, staging, prod), got %d: %v", got, slices.Sorted(maps.Keys(s.templates)))
	}
	pipe := s.stacks.Pipeline
	pt := s.templates["regflow-pipeline"]
	tmpl := assertions.Template_FromStack(pipe, nil)

	t.Run("functions", func(t *testing.T) {
		want := map[string]struct {
			memory, timeout float64
			async           bool
		}{
			fnTagguard: {256, 30, true}, fnScangate: {256, 60, true}, fnApprovals: {256, 10, false},
			fnPromoter: {1024, 900, true}, fnSweeper: {256, 300, true}, fnSweepworker: {512, 600, false},
		}
		assertNoPanic(t, "function count", func() { tmpl.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(len(want))) })
		for fn, w := range want {
			assertNoPanic(t, fn, func() {
				tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
					"FunctionName":  functionName(fn),
					"Runtime":       "provided.al2023",
					"Architectures": []string{"arm64"},
					"Handler":       "bootstrap",
					"MemorySize":    w.memory,
					"Timeout":       w.timeout,
					"LoggingConfig": assertions.Match_ObjectLike(&map[string]any{"LogFormat": "JSON"}),
					"Environment": map[string]any{"Variables": assertions.Match_ObjectLike(&map[string]any{
						config.EnvInline: assertions.Match_AnyValue(),
					})},
					"Role": assertions.Match_AnyValue(),
				})
			})
			id, fnRes := pt.byProp(t, "AWS::Lambda::Function", "FunctionName", functionName(fn))
			p := props(fnRes)

			// The inline config is the validated config, and parses back to it.
			inline := p["Environment"].(map[string]any)["Variables"].(map[string]any)[config.EnvInline].(string)
			back, err := config.Parse([]byte(inline))
			if err != nil {
				t.Errorf("%s: %s does not parse: %v", fn, config.EnvInline, err)
			} else if d := cmp.Diff(s.cfg, back); d != "" {
				t.Errorf("%s: inline config differs from regflow.yaml (-file +inline):\n%s", fn, d)
			}

			// Logs go to a dedicated group kept 30 days.
			lg := logicalID(p["LoggingConfig"].(map[string]any)["LogGroup"])
			if r := pt.resources("AWS::Logs::LogGroup")[lg]; r == nil || props(r)["RetentionInDays"] != float64(30) {
				t.Errorf("%s: log group %s should keep logs 30 days, got %v", fn, lg, r)
			}
			// The execution role is the fixed-name role target accounts trust.
			role := pt.resources("AWS::IAM::Role")[logicalID(p["Role"])]
			if got := props(role)["RoleName"]; got != functionRoleName(fn) {
				t.Errorf("%s: role name %v, want %s", fn, got, functionRoleName(fn))
			}

			// Event-invoked functions retry, then park the event in their failure queue.
			var cfgs []string
			for cid, r := range pt.resources("AWS::Lambda::EventInvokeConfig") {
				if logicalID(props(r)["FunctionName"]) == id {
					cfgs = append(cfgs, cid)
					dest := props(r)["DestinationConfig"].(map[string]any)["OnFailure"].(map[string]any)["Destination"]
					if _, ok := pt.resources("AWS::SQS::Queue")[logicalID(dest)]; !ok {
						t.Errorf("%s: on-failure destination %v is not a queue of this stack", fn, dest)
					}
					if props(r)["MaximumRetryAttempts"] != float64(2) {
						t.Errorf("%s: retries %v, want 2", fn, props(r)["MaximumRetryAttempts"])
					}
				}
			}
			if w.async != (len(cfgs) == 1) {
				t.Errorf("%s: async=%v but found %d EventInvokeConfig", fn, w.async, len(cfgs))
			}
		}
	})

	t.Run("event rules", func(t *testing.T) {
		bus := func() string {
			id, _ := pt.byProp(t, "AWS::Events::EventBus", "Name", "regflow")
			return id
		}()
		cases := []struct {
			name, fn string
			onBus    bool
			pattern  map[string]any
		}{
			{"regflow-tagguard-push", fnTagguard, true, map[string]any{
				"source": []any{"aws.ecr"}, "detail-type": []any{"ECR Image Action"}, "account": []any{"111111111111"},
				"detail": map[string]any{"action-type": []any{"PUSH"}, "result": []any{"SUCCESS"}},
			}},
			{"regflow-scangate-ecr-scan", fnScangate, true, map[string]any{
				"source": []any{"aws.ecr"}, "detail-type": []any{"ECR Image Scan"},
				"account": []any{"111111111111", "222222222222", "333333333333"},
				"detail":  map[string]any{"scan-status": []any{"COMPLETE"}},
			}},
			{"regflow-scangate-inspector-scan", fnScangate, true, map[string]any{
				"source": []any{"aws.inspector2"}, "detail-type": []any{"Inspector2 Scan"},
				"account": []any{"111111111111", "222222222222", "333333333333"},
			}},
			{"regflow-promoter-approved", fnPromoter, true, map[string]any{
				"source": []any{"regflow"}, "detail-type": []any{"Promotion Approved", "Rollback Requested"}, "account": []any{"111111111111"},
			}},
			{"regflow-scangate-verification", fnScangate, true, map[string]any{
				"detail-type": []any{"Verification Result"}, "account": []any{"111111111111", "222222222222", "333333333333"},
			}},
			{"regflow-promoter-ecs-deployment", fnPromoter, true, map[string]any{
				"source": []any{"aws.ecs"}, "detail-type": []any{"ECS Deployment State Change"},
				"account": []any{"222222222222", "333333333333"},
				"detail":  map[string]any{"eventName": []any{"SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_DEPLOYMENT_FAILED"}},
			}},
		}
		for _, c := range cases {
			_, r := pt.byProp(t, "AWS::Events::Rule", "Name", c.name)
			p := props(r)
			if d := cmp.Diff(c.pattern, p["EventPattern"]); d != "" {
				t.Errorf("%s pattern (-want +got):\n%s", c.name, d)
			}
			if got := logicalID(p["EventBusName"]); c.onBus && got != bus {
				t.Errorf("%s: on bus %q, want the regflow bus %s", c.name, got, bus)
			}
			checkLambdaTarget(t, pt, c.name, p, c.fn)
		}

		_, r := pt.byProp(t, "AWS::Events::Rule", "Name", "regflow-sweep-schedule")
		if got := props(r)["ScheduleExpression"]; got != s.cfg.Retention.Schedule {
			t.Errorf("schedule %v, want retention.schedule %q", got, s.cfg.Retention.Schedule)
		}
		checkLambdaTarget(t, pt, "sweep schedule", props(r), fnSweeper)

		// The pipeline account's own registry events reach the regflow bus through a
		// forwarding rule on its default bus.
		_, fwd := pt.byProp(t, "AWS::Events::Rule", "Name", "regflow-forward-registry-events")
		fp := props(fwd)
		if fp["EventBusName"] != nil {
			t.Errorf("forwarding rule must be on the default bus, got %v", fp["EventBusName"])
		}
		want := map[string]any{
			"source":      []any{"aws.ecr", "aws.inspector2", "aws.ecs"},
			"detail-type": []any{"ECR Image Action", "ECR Image Scan", "Inspector2 Scan", "ECS Deployment State Change"},
		}
		if d := cmp.Diff(want, fp["EventPattern"]); d != "" {
			t.Errorf("forwarding pattern (-want +got):\n%s", d)
		}
		tg := fp["Targets"].([]any)[0].(map[string]any)
		if logicalID(tg["Arn"]) != bus || tg["RoleArn"] == nil || tg["DeadLetterConfig"] == nil {
			t.Errorf("forwarding target should be the regflow bus with a role and a DLQ: %v", tg)
		}
	})

	t.Run("event bus policy", func(t *testing.T) {
		assertNoPanic(t, "bus policy", func() {
			tmpl.HasResourceProperties(jsii.String("AWS::Events::EventBusPolicy"), map[string]any{
				"Statement": map[string]any{
					"Effect": "Allow",
					"Action": "events:PutEvents",
					"Principal": map[string]any{"AWS": []any{
						map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":iam::222222222222:root"}}},
						map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":iam::333333333333:root"}}},
					}},
					"Condition": map[string]any{"ForAllValues:StringEquals": map[string]any{
						"events:source": []string{"aws.ecr", "aws.inspector2", "aws.ecs"},
					}},
					"Resource": assertions.Match_AnyValue(),
					"Sid":      assertions.Match_AnyValue(),
				},
			})
		})
	})

	t.Run("slack api", func(t *testing.T) {
		assertNoPanic(t, "route", func() {
			tmpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Route"), map[string]any{
				"RouteKey": "POST /slack/interactions",
			})
		})
		assertNoPanic(t, "one route only", func() { tmpl.ResourceCountIs(jsii.String("AWS::ApiGatewayV2::Route"), jsii.Number(1)) })
		assertNoPanic(t, "stage throttling and access logs", func() {
			tmpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Stage"), map[string]any{
				"StageName":  "$default",
				"AutoDeploy": true,
				"DefaultRouteSettings": map[string]any{
					"ThrottlingRateLimit":  slackRate,
					"ThrottlingBurstLimit": slackBurst,
				},
				"AccessLogSettings": assertions.Match_ObjectLike(&map[string]any{"DestinationArn": assertions.Match_AnyValue()}),
			})
		})
		_, integ := pt.byProp(t, "AWS::ApiGatewayV2::Integration", "PayloadFormatVersion", "2.0")
		approvals, _ := pt.byProp(t, "AWS::Lambda::Function", "FunctionName", functionName(fnApprovals))
		if logicalID(props(integ)["IntegrationUri"]) != approvals {
			t.Errorf("integration targets %v, want the approvals function", props(integ)["IntegrationUri"])
		}
	})

	t.Run("table", func(t *testing.T) {
		assertNoPanic(t, "table", func() {
			tmpl.HasResource(jsii.String("AWS::DynamoDB::Table"), map[string]any{
				"DeletionPolicy":      "Retain",
				"UpdateReplacePolicy": "Retain",
				"Properties": assertions.Match_ObjectLike(&map[string]any{
					"TableName":   "regflow",
					"BillingMode": "PAY_PER_REQUEST",
					"KeySchema": []any{
						map[string]any{"AttributeName": "PK", "KeyType": "HASH"},
						map[string]any{"AttributeName": "SK", "KeyType": "RANGE"},
					},
					"GlobalSecondaryIndexes": []any{map[string]any{
						"IndexName": "GSI1",
						"KeySchema": []any{
							map[string]any{"AttributeName": "GSI1PK", "KeyType": "HASH"},
							map[string]any{"AttributeName": "GSI1SK", "KeyType": "RANGE"},
						},
						"Projection": map[string]any{"ProjectionType": "ALL"},
					}},
					"AttributeDefinitions": assertions.Match_ArrayWith(&[]any{
						map[string]any{"AttributeName": "PK", "AttributeType": "S"},
						map[string]any{"AttributeName": "SK", "AttributeType": "S"},
						map[string]any{"AttributeName": "GSI1PK", "AttributeType": "S"},
						map[string]any{"AttributeName": "GSI1SK", "AttributeType": "S"},
					}),
					"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
					"TimeToLiveSpecification":          map[string]any{"AttributeName": "ttl", "Enabled": true},
					"SSESpecification":                 map[string]any{"SSEEnabled": true},
				}),
			})
		})
	})

	t.Run("slack secret", func(t *testing.T) {
		secret, _ := pt.byProp(t, "AWS::SecretsManager::Secret", "Name", "regflow/slack")
		// Exactly the functions that talk to Slack may read it.
		var readers []string
		for _, st := range allowStatements(pt) {
			if contains(st.actions, "secretsmanager:GetSecretValue") {
				for _, r := range st.resources {
					if strings.Contains(r, secret) {
						readers = append(readers, st.principal)
					}
				}
			}
		}
		var want []string
		for _, fn := range secretReaders() {
			id, _ := pt.byProp(t, "AWS::IAM::Role", "RoleName", functionRoleName(fn))
			want = append(want, id)
		}
		if d := cmp.Diff(strs(toAny(want)), strs(toAny(readers))); d != "" {
			t.Errorf("roles allowed to read the Slack secret (-want +got):\n%s", d)
		}
		for _, fn := range functionNames() {
			id, _ := pt.byProp(t, "AWS::IAM::Role", "RoleName", functionRoleName(fn))
			puts := len(statementsWith(pt, id, "events:PutEvents")) > 0
			// The functions that publish regflow events, and no others.
			if want := fn != fnScangate; puts != want {
				t.Errorf("%s may put events on the bus: %v, want %v", fn, puts, want)
			}
		}
		_, pol := pt.byProp(t, "AWS::SecretsManager::ResourcePolicy", "SecretId", map[string]any{"Ref": secret})
		deny := props(pol)["ResourcePolicy"].(map[string]any)["Statement"].([]any)[0].(map[string]any)
		got := strs(deny["Condition"].(map[string]any)["StringNotEquals"].(map[string]any)["aws:PrincipalArn"])
		var wantARNs []string
		for _, fn := range secretReaders() {
			wantARNs = append(wantARNs, s.plan.fnRoleARN(fn))
		}
		if deny["Effect"] != "Deny" || cmp.Diff(strs(toAny(wantARNs)), got) != "" {
			t.Errorf("secret resource policy should deny GetSecretValue to all but %v, got %v", wantARNs, deny)
		}
	})

	t.Run("sweep fan-out", func(t *testing.T) {
		qid, q := pt.byProp(t, "AWS::SQS::Queue", "QueueName", "regflow-sweep")
		qp := props(q)
		if qp["VisibilityTimeout"] != float64(3600) {
			t.Errorf("sweep queue visibility %v, want 6 x the worker's 600 s", qp["VisibilityTimeout"])
		}
		dlq, _ := pt.byProp(t, "AWS::SQS::Queue", "QueueName", "regflow-sweep-dlq")
		rp := qp["RedrivePolicy"].(map[string]any)
		if logicalID(rp["deadLetterTargetArn"]) != dlq || rp["maxReceiveCount"] != float64(3) {
			t.Errorf("sweep queue redrive %v, want 3 receives then %s", rp, dlq)
		}
		worker, _ := pt.byProp(t, "AWS::Lambda::Function", "FunctionName", functionName(fnSweepworker))
		_, esm := pt.byProp(t, "AWS::Lambda::EventSourceMapping", "BatchSize", 1)
		ep := props(esm)
		if logicalID(ep["EventSourceArn"]) != qid || logicalID(ep["FunctionName"]) != worker {
			t.Errorf("event source mapping %v should connect the sweep queue to the worker", ep)
		}
		if got := ep["ScalingConfig"].(map[string]any)["MaximumConcurrency"]; got != float64(sweepMaxConcurrency) {
			t.Errorf("worker max concurrency %v, want %d", got, sweepMaxConcurrency)
		}
		_, sweeper := pt.byProp(t, "AWS::Lambda::Function", "FunctionName", functionName(fnSweeper))
		vars := props(sweeper)["Environment"].(map[string]any)["Variables"].(map[string]any)
		if logicalID(vars[EnvSweepQueueURL]) != qid || vars[EnvSweeperRole] != SweeperRoleName {
			t.Errorf("sweeper environment %v should name the sweep queue and the sweeper role", vars)
		}
	})

	t.Run("alarms", func(t *testing.T) {
		type key struct{ metric, dim string }
		have := map[key]bool{}
		for _, r := range pt.resources("AWS::CloudWatch::Alarm") {
			p := props(r)
			ds, _ := p["Dimensions"].([]any)
			if len(ds) == 0 {
				have[key{p["MetricName"].(string) + "@" + fmt.Sprint(p["Namespace"]), ""}] = true
			}
			for _, d := range ds {
				have[key{p["MetricName"].(string), logicalID(d.(map[string]any)["Value"])}] = true
			}
		}
		for _, fn := range functionNames() {
			id, _ := pt.byProp(t, "AWS::Lambda::Function", "FunctionName", functionName(fn))
			for _, m := range []string{"Errors", "Throttles"} {
				if !have[key{m, id}] {
					t.Errorf("no %s alarm for %s", m, fn)
				}
			}
		}
		for _, q := range []string{"regflow-sweep-dlq", "regflow-forward-failures", "regflow-tagguard-failures",
			"regflow-scangate-failures", "regflow-promoter-failures", "regflow-sweeper-failures"} {
			id, _ := pt.byProp(t, "AWS::SQS::Queue", "QueueName", q)
			if !have[key{"ApproximateNumberOfMessagesVisible", id}] {
				t.Errorf("no depth alarm for dead-letter queue %s", q)
			}
		}
		// The EMF metrics: account-wide alarms (no dimension) on the outcomes operators must hear of.
		for _, m := range []string{metrics.PromotionFailures, metrics.SweepPartialRuns} {
			if !have[key{m + "@" + metrics.Namespace, ""}] {
				t.Errorf("no alarm on %s/%s", metrics.Namespace, m)
			}
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		boards := pt.resources("AWS::CloudWatch::Dashboard")
		if len(boards) != 1 {
			t.Fatalf("%d dashboards, want 1", len(boards))
		}
		var body []byte
		for _, b := range boards {
			body, _ = json.Marshal(props(b)["DashboardBody"])
		}
		for _, m := range []string{metrics.Promotions, metrics.PromotionDuration, metrics.PromotionBytes, metrics.PromotionFailures,
			metrics.ApprovalAnswer, metrics.TagViolations, metrics.GateBlocks, metrics.SweepDeleted, metrics.SweepKept,
			metrics.SweepRefused, metrics.SweepBytes, metrics.SweepPartialRuns} {
			if !strings.Contains(string(body), `\"`+m+`\"`) {
				t.Errorf("the dashboard does not show %s", m)
			}
		}
	})

	t.Run("target stacks", func(t *testing.T) {
		for env, extID := range map[string]string{"staging": "regflow-staging", "prod": "regflow-prod"} {
			st := s.stacks.Targets[env]
			tt := s.templates["regflow-"+env]
			acct := s.cfg.Environments[env].Account
			if *st.Account() != acct {
				t.Errorf("%s stack deploys to %s, want %s", env, *st.Account(), acct)
			}
			tm := assertions.Template_FromStack(st, nil)
			assertNoPanic(t, env+" promotion role trust", func() {
				tm.HasResourceProperties(jsii.String("AWS::IAM::Role"), map[string]any{
					"RoleName": "regflow-promotion",
					"Path":     "/",
					"AssumeRolePolicyDocument": map[string]any{
						"Version": "2012-10-17",
						"Statement": []any{map[string]any{
							"Action":    "sts:AssumeRole",
							"Effect":    "Allow",
							"Principal": map[string]any{"AWS": "arn:aws:iam::111111111111:role/regflow-fn-promoter"},
							"Condition": map[string]any{"StringEquals": map[string]any{"sts:ExternalId": extID}},
						}},
					},
				})
			})
			role, _ := tt.byProp(t, "AWS::IAM::Role", "RoleName", "regflow-promotion")
			repos := "arn:aws:ecr:us-east-1:" + acct + ":repository/*"
			grants := grantsOf(tt, role)
			wantActions := append(promotionActions(), "ecr:CreateRepository", "ecr:TagResource")
			if d := cmp.Diff(strs(toAny(wantActions)), grants[repos]); d != "" {
				t.Errorf("%s promotion role actions on %s (-want +got):\n%s", env, repos, d)
			}
			if got := grants["*"]; cmp.Diff([]string{"ecr:GetAuthorizationToken"}, got) != "" {
				t.Errorf("%s promotion role may only call GetAuthorizationToken on *, got %v", env, got)
			}
			create := statementsWith(tt, role, "ecr:CreateRepository")
			if len(create) != 1 || fmt.Sprint(create[0]["Condition"]) != fmt.Sprint(map[string]any{
				"StringEquals": map[string]any{"aws:RequestTag/" + ManagedTagKey: ManagedTagValue}}) {
				t.Errorf("%s CreateRepository should require the %s=%s tag: %v", env, ManagedTagKey, ManagedTagValue, create)
			}

			assertNoPanic(t, env+" sweeper role", func() {
				tm.HasResourceProperties(jsii.String("AWS::IAM::Role"), map[string]any{
					"RoleName": SweeperRoleName,
					"AssumeRolePolicyDocument": assertions.Match_ObjectLike(&map[string]any{
						"Statement": []any{
							map[string]any{"Action": "sts:AssumeRole", "Effect": "Allow",
								"Principal": map[string]any{"AWS": "arn:aws:iam::111111111111:role/regflow-fn-sweeper"}},
							map[string]any{"Action": "sts:AssumeRole", "Effect": "Allow",
								"Principal": map[string]any{"AWS": "arn:aws:iam::111111111111:role/regflow-fn-sweepworker"}},
						},
					}),
				})
			})
			sweeper, _ := tt.byProp(t, "AWS::IAM::Role", "RoleName", SweeperRoleName)
			if d := cmp.Diff(strs(toAny(sweeperActions())), grantsOf(tt, sweeper)[repos]); d != "" {
				t.Errorf("%s sweeper role actions (-want +got):\n%s", env, d)
			}

			assertNoPanic(t, env+" reader role", func() {
				tm.HasResourceProperties(jsii.String("AWS::IAM::Role"), map[string]any{
					"RoleName": ReaderRoleName,
					"AssumeRolePolicyDocument": assertions.Match_ObjectLike(&map[string]any{
						"Statement": []any{
							map[string]any{"Action": "sts:AssumeRole", "Effect": "Allow",
								"Principal": map[string]any{"AWS": "arn:aws:iam::111111111111:role/regflow-fn-scangate"}},
						},
					}),
				})
			})
			reader, _ := tt.byProp(t, "AWS::IAM::Role", "RoleName", ReaderRoleName)
			if d := cmp.Diff(strs(toAny(scanReadActions())), grantsOf(tt, reader)[repos]); d != "" {
				t.Errorf("%s reader role actions (-want +got):\n%s", env, d)
			}

			_, fwd := tt.byProp(t, "AWS::Events::Rule", "Name", "regflow-forward-registry-events")
			tg := props(fwd)["Targets"].([]any)[0].(map[string]any)
			if tg["Arn"] != "arn:aws:events:us-east-1:111111111111:event-bus/regflow" || tg["RoleArn"] == nil || tg["DeadLetterConfig"] == nil {
				t.Errorf("%s forwarding target %v: want the pipeline bus, a role and a DLQ", env, tg)
			}
			eventsRole := tt.resources("AWS::IAM::Role")[logicalID(tg["RoleArn"])]
			if d := cmp.Diff(map[string]any{"Service": "events.amazonaws.com"},
				props(eventsRole)["AssumeRolePolicyDocument"].(map[string]any)["Statement"].([]any)[0].(map[string]any)["Principal"]); d != "" {
				t.Errorf("%s forwarding role must be assumed by EventBridge: %s", env, d)
			}
			if got := grantsOf(tt, logicalID(tg["RoleArn"]))["arn:aws:events:us-east-1:111111111111:event-bus/regflow"]; cmp.Diff([]string{"events:PutEvents"}, got) != "" {
				t.Errorf("%s forwarding role should only PutEvents on the pipeline bus, got %v", env, got)
			}
		}
	})

	t.Run("cdk-nag", func(t *testing.T) {
		for _, st := range s.stacks.All() {
			checkNag(t, st)
		}
	})

	t.Run("synth errors", func(t *testing.T) {
		if errs := synthErrors(s.asm.Synth(nil)); len(errs) > 0 {
			t.Errorf("synthesis reported errors:\n%s", strings.Join(errs, "\n"))
		}
	})

	t.Run("least privilege", func(t *testing.T) {
		for name, tp := range s.templates {
			for _, v := range policyViolations(tp, s.plan) {
				t.Errorf("%s: %s", name, v)
			}
		}
	})
}

// checkLambdaTarget checks a rule's single target is fn, with a DLQ and retry policy.
func checkLambdaTarget(t *testing.T, tp template, rule string, p map[string]any, fn string) {
	t.Helper()
	targets, _ := p["Targets"].([]any)
	if len(targets) != 1 {
		t.Errorf("%s: want 1 target, got %v", rule, targets)
		return
	}
	tg := targets[0].(map[string]any)
	id, _ := tp.byProp(t, "AWS::Lambda::Function", "FunctionName", functionName(fn))
	if logicalID(tg["Arn"]) != id {
		t.Errorf("%s: target %v, want %s", rule, tg["Arn"], fn)
	}
	if tg["DeadLetterConfig"] == nil || tg["RetryPolicy"] == nil {
		t.Errorf("%s: target needs a DLQ and a retry policy: %v", rule, tg)
	}
}

// checkNag fails on any unsuppressed AwsSolutions error or warning, and on suppressions
// whose rule is not one we decided to suppress or whose reason says too little.
func checkNag(t *testing.T, st awscdk.Stack) {
	t.Helper()
	ann := assertions.Annotations_FromStack(st)
	match := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	for _, find := range []struct {
		level string
		msgs  func() int
	}{
		{"error", func() int { return report(t, st, ann.FindError(jsii.String("*"), match)) }},
		{"warning", func() int { return report(t, st, ann.FindWarning(jsii.String("*"), match)) }},
	} {
		if n := find.msgs(); n > 0 {
			t.Errorf("%s: %d unsuppressed cdk-nag %s(s)", *st.StackName(), n, find.level)
		}
	}
	allowed := map[string]bool{"AwsSolutions-IAM5": true, "AwsSolutions-SQS3": true, "AwsSolutions-SMG4": true, "AwsSolutions-APIG4": true}
	tj := *assertions.Template_FromStack(st, nil).ToJSON()
	b, _ := json.Marshal(tj)
	var tp template
	_ = json.Unmarshal(b, &tp)
	for id, r := range tp.resources("") {
		md, _ := r["Metadata"].(map[string]any)
		nag, _ := md["cdk_nag"].(map[string]any)
		rules, _ := nag["rules_to_suppress"].([]any)
		for _, x := range rules {
			rule := x.(map[string]any)
			rid, _ := rule["id"].(string)
			reason, _ := rule["reason"].(string)
			if !allowed[rid] {
				t.Errorf("%s %s: suppression of %s was not reviewed; fix the finding or add it to the reviewed list", *st.StackName(), id, rid)
			}
			if len(reason) < 80 {
				t.Errorf("%s %s: suppression of %s needs a specific reason, got %q", *st.StackName(), id, rid, reason)
			}
			if rid == "AwsSolutions-IAM5" && rule["applies_to"] == nil {
				t.Errorf("%s %s: IAM5 must be suppressed per finding (applies_to), not wholesale", *st.StackName(), id)
			}
			t.Logf("%s %s: %s %v: %s", *st.StackName(), id, rid, rule["applies_to"], reason)
		}
	}
}

// report logs annotations (a list of synthesis messages) and counts them.
func report(t *testing.T, st awscdk.Stack, msgs any) int {
	t.Helper()
	b, err := json.Marshal(msgs)
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		ID    string `json:"id"`
		Entry struct {
			Data any `json:"data"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("annotations: %v", err)
	}
	for _, m := range list {
		t.Logf("%s %s: %v", *st.StackName(), m.ID, m.Entry.Data)
	}
	return len(list)
}

// grantsOf maps each resource to the actions the role's policies allow on it.
func grantsOf(tp template, role string) map[string][]string {
	out := map[string][]string{}
	for _, st := range allowStatements(tp) {
		if st.principal != role {
			continue
		}
		for _, r := range st.resources {
			out[r] = strs(toAny(append(out[r], st.actions...)))
		}
	}
	return out
}

// statementsWith returns the raw statements of role's policies that allow action.
func statementsWith(tp template, role, action string) []map[string]any {
	var out []map[string]any
	for _, st := range allowStatements(tp) {
		if st.principal == role && contains(st.actions, action) {
			out = append(out, st.raw)
		}
	}
	return out
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// TestRoleNamesMatchTheFunctions: the functions assume these roles by name.
func TestRoleNamesMatchTheFunctions(t *testing.T) {
	if ReaderRoleName != awsapp.ReaderRoleName || EnvSweeperRole != awsapp.EnvSweeperRole {
		t.Fatalf("infra and the functions disagree: reader %q vs %q, sweeper env %q vs %q", ReaderRoleName, awsapp.ReaderRoleName, EnvSweeperRole, awsapp.EnvSweeperRole)
	}
}
