package main

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdadestinations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/store/dynamo"
)

// slackRoute is the route the approvals function serves.
const slackRoute = approvals.Path

// Sizing and limits. Numbers come from what each function does, not from measurement
// in AWS: see infra/README.md.
const (
	logRetention = awslogs.RetentionDays_ONE_MONTH
	// sweepMaxConcurrency caps concurrent sweep workers (2 is the least SQS allows) so
	// DescribeImages/BatchDeleteImage stay under ECR's per-account API rates.
	sweepMaxConcurrency = 2
)

// fnSpec sizes one function.
type fnSpec struct {
	name        string
	description string
	memoryMB    float64
	timeout     time.Duration
	// async functions are invoked by EventBridge: retries and an on-failure queue.
	async bool
}

func specs() map[string]fnSpec {
	return map[string]fnSpec{
		fnTagguard: {fnTagguard, "Enforces the tag policy on ECR pushes and makes repositories tag-immutable",
			256, 30 * time.Second, true},
		fnScangate: {fnScangate, "Applies the next environment's scan gate and opens the Slack approval",
			256, 60 * time.Second, true},
		// Slack drops an interaction unanswered after 3 s; 10 s only bounds a stuck call.
		fnApprovals: {fnApprovals, "Verifies Slack button clicks and records approvals exactly once",
			256, 10 * time.Second, false},
		// Copying multi-platform images with parallel blob streams needs memory (and the
		// network bandwidth Lambda allots with it) and up to Lambda's 15 minutes.
		fnPromoter: {fnPromoter, "Copies approved images by digest into the next environment's registry",
			1024, 15 * time.Minute, true},
		fnSweeper: {fnSweeper, "Lists repositories on schedule and queues them for the sweep workers",
			256, 5 * time.Minute, true},
		fnSweepworker: {fnSweepworker, "Sweeps one batch of repositories under the retention policy",
			512, 10 * time.Minute, false},
	}
}

type pipelineOptions struct {
	assets     string
	alarmTopic string
}

// pipeline holds the constructs the pipeline stack wires together.
type pipeline struct {
	stack    awscdk.Stack
	p        *plan
	opts     pipelineOptions
	table    awsdynamodb.Table
	bus      awsevents.EventBus
	secret   awssecretsmanager.Secret // the bot token
	signing  awssecretsmanager.Secret // the signing secret
	fns      map[string]awslambda.Function
	roles    map[string]awsiam.Role
	failures map[string]awssqs.Queue
	alarms   []awscloudwatch.Alarm
}

func newPipelineStack(app awscdk.App, p *plan, opts pipelineOptions) (awscdk.Stack, error) {
	stack := awscdk.NewStack(app, jsii.String(namePrefix+"-pipeline"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(p.pipeline.Account), Region: jsii.String(p.pipeline.Region)},
		Description: jsii.String("regflow pipeline: functions, table, event bus, Slack API (account " + p.pipeline.Account + ")"),
	})
	// CloudFormation refuses Tags on a dashboard, which CDK would otherwise give it.
	awscdk.Tags_Of(stack).Add(jsii.String(ManagedTagKey), jsii.String(ManagedTagValue), &awscdk.TagProps{
		ExcludeResourceTypes: jsii.Strings("AWS::CloudWatch::Dashboard"),
	})
	b := &pipeline{stack: stack, p: p, opts: opts,
		fns: map[string]awslambda.Function{}, roles: map[string]awsiam.Role{}, failures: map[string]awssqs.Queue{}}

	b.addTable()
	b.addBus()
	b.addSecret()
	sweepQueue := b.addSweepQueue()
	for _, fn := range functionNames() {
		b.addFunction(specs()[fn])
	}
	b.fns[fnSweeper].AddEnvironment(jsii.String(EnvSweepQueueURL), sweepQueue.QueueUrl(), nil)
	for _, fn := range []string{fnSweeper, fnSweepworker} {
		b.fns[fn].AddEnvironment(jsii.String(EnvSweeperRole), jsii.String(SweeperRoleName), nil)
	}
	sweepQueue.GrantSendMessages(b.roles[fnSweeper])
	b.fns[fnSweepworker].AddEventSource(awslambdaeventsources.NewSqsEventSource(sweepQueue, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(1),
		MaxConcurrency:          jsii.Number(sweepMaxConcurrency),
		ReportBatchItemFailures: jsii.Bool(true),
	}))

	b.grantData()
	if err := b.grantRegistries(); err != nil {
		return nil, err
	}
	if err := b.addRules(); err != nil {
		return nil, err
	}
	b.addSlackAPI()
	// An environment at the pipeline location has no stack of its own; its roles live here.
	for _, env := range p.cfg.PromotionPath {
		if p.envLocation(env) == p.pipeline {
			if err := addAccountRoles(stack, p, env); err != nil {
				return nil, err
			}
		}
	}
	b.addDashboard()
	b.addAlarms()

	awscdk.NewCfnOutput(stack, jsii.String("EventBusArn"), &awscdk.CfnOutputProps{Value: b.bus.EventBusArn()})
	awscdk.NewCfnOutput(stack, jsii.String("TableName"), &awscdk.CfnOutputProps{Value: b.table.TableName()})
	awscdk.NewCfnOutput(stack, jsii.String("SlackSecretArn"), &awscdk.CfnOutputProps{
		Value:       b.secret.SecretArn(),
		Description: jsii.String(`put {"botToken":"xoxb-..."} here after the first deploy`),
	})
	awscdk.NewCfnOutput(stack, jsii.String("SlackSigningSecretArn"), &awscdk.CfnOutputProps{
		Value:       b.signing.SecretArn(),
		Description: jsii.String(`put {"signingSecret":"..."} here after the first deploy`),
	})
	return stack, nil
}

// addTable is the single table: items keyed PK/SK, pending approvals by environment on
// GSI1, approval requests expiring through the ttl attribute.
func (b *pipeline) addTable() {
	b.table = awsdynamodb.NewTable(b.stack, jsii.String("Table"), &awsdynamodb.TableProps{
		TableName:    jsii.String(b.p.cfg.Pipeline.Table),
		PartitionKey: &awsdynamodb.Attribute{Name: jsii.String("PK"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:      &awsdynamodb.Attribute{Name: jsii.String("SK"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		Encryption:          awsdynamodb.TableEncryption_AWS_MANAGED,
		TimeToLiveAttribute: jsii.String("ttl"),
		// Release pointers and the audit trail outlive any stack.
		RemovalPolicy:      awscdk.RemovalPolicy_RETAIN,
		DeletionProtection: jsii.Bool(true),
	})
	b.table.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:      jsii.String("GSI1"),
		PartitionKey:   &awsdynamodb.Attribute{Name: jsii.String("GSI1PK"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:        &awsdynamodb.Attribute{Name: jsii.String("GSI1SK"), Type: awsdynamodb.AttributeType_STRING},
		ProjectionType: awsdynamodb.ProjectionType_ALL,
	})
}

// addBus creates the regflow bus. Target accounts may put events on it, but only the
// AWS service sources their forwarding rules send: nobody outside the pipeline account
// can publish a "regflow" event such as Promotion Approved.
func (b *pipeline) addBus() {
	b.bus = awsevents.NewEventBus(b.stack, jsii.String("Bus"), &awsevents.EventBusProps{
		EventBusName: jsii.String(b.p.cfg.Pipeline.EventBus),
	})
	// Identity policies of the pipeline account (CI's, an administrator's) may grant
	// PutEvents broadly; the bus itself refuses source regflow from anyone but regflow's
	// publishing roles, so none of them can send "Promotion Approved" or "Rollback Requested".
	b.bus.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("OnlyRegflowPublishersSendSourceRegflow"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("events:PutEvents"),
		Resources:  &[]*string{b.bus.EventBusArn()},
		Conditions: &map[string]interface{}{
			"ForAnyValue:StringEquals": map[string]interface{}{"events:source": event.SourceRegflow},
			"StringNotEquals":          map[string]interface{}{"aws:PrincipalArn": b.p.publisherARNs()},
		},
	}))
	// An environment's named verification reporters send its results under a source of
	// its own; nobody else may use that source, so scangate can trust it (see
	// scangate's verificationSender).
	for _, name := range b.p.cfg.PromotionPath {
		reporters := b.p.cfg.Environments[name].VerificationReporters
		if len(reporters) == 0 {
			continue
		}
		b.bus.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("OnlyNamedReportersVerify" + titleCase(name)),
			Effect:     awsiam.Effect_DENY,
			Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
			Actions:    jsii.Strings("events:PutEvents"),
			Resources:  &[]*string{b.bus.EventBusArn()},
			Conditions: &map[string]interface{}{
				"ForAnyValue:StringEquals": map[string]interface{}{"events:source": event.VerificationSource(name)},
				"StringNotEquals":          map[string]interface{}{"aws:PrincipalArn": reporters},
			},
		}))
	}
	foreign := b.p.foreignAccounts()
	if len(foreign) == 0 {
		return
	}
	principals := make([]awsiam.IPrincipal, 0, len(foreign))
	for _, a := range foreign {
		principals = append(principals, awsiam.NewAccountPrincipal(jsii.String(a)))
	}
	b.bus.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("EnvironmentAccountsForwardRegistryEvents"),
		Effect:     awsiam.Effect_ALLOW,
		Principals: &principals,
		Actions:    jsii.Strings("events:PutEvents"),
		Resources:  &[]*string{b.bus.EventBusArn()},
		Conditions: &map[string]interface{}{
			"ForAllValues:StringEquals": map[string]interface{}{
				// The sources the forwarding rule sends (ECR, Inspector, ECS), no others.
				"events:source": route.Forwarding().Pattern.Sources,
			},
		},
	}))
	// Deployment pipelines in the environment accounts report verification results;
	// they may send that detail-type only, and never as source "regflow".
	b.bus.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("EnvironmentAccountsReportVerification"),
		Effect:     awsiam.Effect_ALLOW,
		Principals: &principals,
		Actions:    jsii.Strings("events:PutEvents"),
		Resources:  &[]*string{b.bus.EventBusArn()},
		Conditions: &map[string]interface{}{
			"StringEquals":    map[string]interface{}{"events:detail-type": event.TypeVerificationResult},
			"StringNotEquals": map[string]interface{}{"events:source": event.SourceRegflow},
		},
	}))
}

// addSecret holds the Slack bot token and, apart from it, the signing secret: whoever
// reads the signing secret can sign clicks as any approver, so only approvals may, while
// every function that posts reads the token. Each starts random, so until an operator
// stores Slack's values every request fails verification and every post is refused.
func (b *pipeline) addSecret() {
	b.secret = b.newSlackSecret("SlackSecret", b.p.cfg.Pipeline.SlackSecret, "botToken",
		`regflow Slack bot token: {"botToken": "xoxb-..."}`)
	b.signing = b.newSlackSecret("SlackSigningSecret", b.p.cfg.Pipeline.SlackSigningSecret, "signingSecret",
		`regflow Slack signing secret: {"signingSecret": "..."}`)
}

func (b *pipeline) newSlackSecret(id, name, field, description string) awssecretsmanager.Secret {
	s := awssecretsmanager.NewSecret(b.stack, jsii.String(id), &awssecretsmanager.SecretProps{
		SecretName:  jsii.String(name),
		Description: jsii.String(description),
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			SecretStringTemplate: jsii.String(`{}`),
			GenerateStringKey:    jsii.String(field),
			ExcludePunctuation:   jsii.Bool(true),
			PasswordLength:       jsii.Number(32),
		},
	})
	suppress(s, "AwsSolutions-SMG4",
		"Slack issues the signing secret and bot token; they can only be rotated in Slack's app settings, so there is no rotation Lambda to schedule. Operators store new values with put-secret-value.")
	return s
}

// grantSecret lets exactly readers read s: identity grants for them, and a resource
// policy denying everyone else, so broad admin rights elsewhere do not reach it.
func (b *pipeline) grantSecret(s awssecretsmanager.Secret, sid string, readers []string) {
	var arns []string
	for _, fn := range readers {
		s.GrantRead(b.roles[fn], nil)
		arns = append(arns, b.p.fnRoleARN(fn))
	}
	s.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String(sid),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("secretsmanager:GetSecretValue"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]interface{}{
			"StringNotEquals": map[string]interface{}{"aws:PrincipalArn": arns},
		},
	}))
}

// publishers put events on the regflow bus, each only the detail-types the routing
// table says it publishes (route.Publishes).
func publishers() []string { return route.Publishers() }

// publisherARNs are the roles allowed to send source "regflow".
func (p *plan) publisherARNs() []string {
	var out []string
	for _, fn := range publishers() {
		out = append(out, p.fnRoleARN(fn))
	}
	return out
}

// putEventsStatement allows PutEvents on a bus for only these sources and detail-types:
// EventBridge checks events:source and events:detail-type of every entry.
func putEventsStatement(bus *string, sources, detailTypes []string) awsiam.PolicyStatement {
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("events:PutEvents"),
		Resources: &[]*string{bus},
		Conditions: &map[string]interface{}{
			"ForAllValues:StringEquals": map[string]interface{}{
				"events:source":      sources,
				"events:detail-type": detailTypes,
			},
			// ForAllValues holds vacuously for a missing key; every entry has both.
			"Null": map[string]interface{}{"events:source": "false", "events:detail-type": "false"},
		},
	})
}

// secretReaders are the functions that post to Slack and so read the bot token: alerts
// (tagguard), approval requests and gate failures (scangate), message updates and user
// groups (approvals), promotion results (promoter), sweep summaries (sweeper and
// sweepworker, whichever finishes the run).
func secretReaders() []string {
	return []string{fnTagguard, fnScangate, fnApprovals, fnPromoter, fnSweeper, fnSweepworker}
}

// signingSecretReaders verify Slack's signature: approvals alone.
func signingSecretReaders() []string { return []string{fnApprovals} }

func (b *pipeline) newQueue(id, name string, props *awssqs.QueueProps) awssqs.Queue {
	if props == nil {
		props = &awssqs.QueueProps{}
	}
	props.QueueName = jsii.String(name)
	props.Encryption = awssqs.QueueEncryption_SQS_MANAGED
	props.EnforceSSL = jsii.Bool(true)
	if props.RetentionPeriod == nil {
		props.RetentionPeriod = awscdk.Duration_Days(jsii.Number(14))
	}
	return awssqs.NewQueue(b.stack, jsii.String(id), props)
}

// addSweepQueue is the fan-out from the scheduled sweeper to the workers. A message
// stays invisible six times the worker's timeout (AWS's advice for Lambda event
// sources), and goes to the DLQ after three failed attempts.
func (b *pipeline) addSweepQueue() awssqs.Queue {
	dlq := b.newQueue("SweepDLQ", namePrefix+"-sweep-dlq", nil)
	b.failures["sweep-queue"] = dlq
	return b.newQueue("SweepQueue", namePrefix+"-sweep", &awssqs.QueueProps{
		VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(6 * specs()[fnSweepworker].timeout.Seconds())),
		RetentionPeriod:   awscdk.Duration_Days(jsii.Number(1)),
		DeadLetterQueue:   &awssqs.DeadLetterQueue{Queue: dlq, MaxReceiveCount: jsii.Number(3)},
	})
}

// addFunction deploys one function from <assets>/<name>/bootstrap with its own role.
func (b *pipeline) addFunction(s fnSpec) {
	id := titleCase(s.name)
	role := awsiam.NewRole(b.stack, jsii.String(id+"Role"), &awsiam.RoleProps{
		RoleName:    jsii.String(functionRoleName(s.name)),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("regflow " + s.name + " function"),
	})
	logs := awslogs.NewLogGroup(b.stack, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     logRetention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	logs.GrantWrite(role)

	props := &awslambda.FunctionProps{
		FunctionName:          jsii.String(functionName(s.name)),
		Description:           jsii.String(s.description),
		Runtime:               awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:          awslambda.Architecture_ARM_64(),
		Handler:               jsii.String("bootstrap"),
		Code:                  awslambda.Code_FromAsset(jsii.String(filepath.Join(b.opts.assets, s.name)), nil),
		MemorySize:            jsii.Number(s.memoryMB),
		Timeout:               awscdk.Duration_Seconds(jsii.Number(s.timeout.Seconds())),
		Role:                  role,
		LogGroup:              logs,
		LoggingFormat:         awslambda.LoggingFormat_JSON,
		ApplicationLogLevelV2: awslambda.ApplicationLogLevel_INFO,
		SystemLogLevelV2:      awslambda.SystemLogLevel_INFO,
		Environment: &map[string]*string{
			config.EnvInline: jsii.String(b.p.inline),
		},
	}
	if s.async {
		failures := b.newQueue(id+"Failures", namePrefix+"-"+s.name+"-failures", nil)
		b.failures[s.name] = failures
		props.OnFailure = awslambdadestinations.NewSqsDestination(failures)
		props.RetryAttempts = jsii.Number(2)
		props.MaxEventAge = awscdk.Duration_Hours(jsii.Number(6))
		suppress(failures, "AwsSolutions-SQS3",
			"This queue is itself the dead-letter destination: the function's asynchronous on-failure destination and its EventBridge rule's DLQ. cdk-nag only recognises queues named in a redrive policy or a function DeadLetterConfig.")
	}
	b.roles[s.name] = role
	b.fns[s.name] = awslambda.NewFunction(b.stack, jsii.String(id), props)
}

// grantData gives every function the table (and its index), the bus, and the secret.
func (b *pipeline) grantData() {
	b.grantSecret(b.secret, "OnlyRegflowPostersReadSlackToken", secretReaders())
	b.grantSecret(b.signing, "OnlyApprovalsReadsSlackSigningSecret", signingSecretReaders())
	// Each publisher may put only its own detail-types, as source regflow: a compromised
	// tag guard or sweeper cannot forge an approval or a rollback, the scan gate nothing.
	for _, fn := range publishers() {
		b.roles[fn].AddToPolicy(putEventsStatement(b.bus.EventBusArn(), []string{event.SourceRegflow}, route.Publishes(fn)))
	}
	// Every function reads the whole table; each writes only the item kinds it owns.
	for _, fn := range functionNames() {
		b.table.GrantReadData(b.roles[fn])
		for _, st := range tableWriteStatements(b.table.TableArn(), tableWrites()[fn]) {
			b.roles[fn].AddToPolicy(st)
		}
		suppress(b.roles[fn], "AwsSolutions-IAM5",
			"DynamoDB grants cover the regflow table's own indexes (table ARN/index/*), which the GSI1 queries for pending approvals need; nothing outside this table.",
			logicalIDFinding("Table", "/index/*"))
	}
}

// tableWrites are the item kinds (the store's partition-key prefixes) each function
// writes, from the routing table's rights (route.Writes).
func tableWrites() map[string][]string {
	out := map[string][]string{}
	for _, fn := range functionNames() {
		out[fn] = route.Writes(fn)
	}
	return out
}

// tableWriteStatements allow the store adapter's write actions on the given kinds only:
// dynamodb:LeadingKeys limits every item written (each one of a batch) to those partition
// prefixes. Kinds written with the same actions share a statement.
func tableWriteStatements(table *string, prefixes []string) []awsiam.PolicyStatement {
	actions := dynamo.WriteActions()
	var order []string
	byActions := map[string][]string{}
	for _, p := range prefixes {
		k := strings.Join(actions[p], ",")
		if _, ok := byActions[k]; !ok {
			order = append(order, k)
		}
		byActions[k] = append(byActions[k], p+"*")
	}
	var out []awsiam.PolicyStatement
	for _, k := range order {
		out = append(out, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings(strings.Split(k, ",")...),
			Resources: &[]*string{table},
			Conditions: &map[string]interface{}{
				"ForAllValues:StringLike": map[string]interface{}{"dynamodb:LeadingKeys": byActions[k]},
			},
		}))
	}
	return out
}

// grantRegistries gives each function the ECR actions it performs on the registries in
// the pipeline account, and the right to assume the roles it uses elsewhere.
func (b *pipeline) grantRegistries() error {
	p := b.p
	local := p.repoARNsFor(p.local)
	// The source environment is where CI pushes; tagguard enforces the policy there.
	var source []string
	if src := p.cfg.Source(); p.cfg.Environments[src].Account == p.pipeline.Account {
		source = p.repoARNsFor([]string{src})
	} else {
		awscdk.Annotations_Of(b.stack).AddWarningV2(jsii.String("regflow:source-account"), jsii.String(fmt.Sprintf(
			"source environment %q is in account %s, not the pipeline account %s: its events reach the regflow bus, but tagguard can only read and fix repositories in the pipeline account; deploy the pipeline stack in the build account",
			src, p.cfg.Environments[src].Account, p.pipeline.Account)), nil)
	}
	allow := func(fn string, actions []string, resources []string) {
		if len(resources) == 0 {
			return
		}
		b.roles[fn].AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings(actions...),
			Resources: jsii.Strings(resources...),
		}))
	}
	read := []string{"ecr:DescribeRepositories", "ecr:DescribeImages", "ecr:ListImages", "ecr:BatchGetImage"}

	allow(fnTagguard, append(read, "ecr:BatchDeleteImage", "ecr:PutImageTagMutability"), source)
	allow(fnScangate, scanReadActions(), local)
	allow(fnScangate, []string{"sts:AssumeRole"}, p.readerRoleARNs())
	allow(fnPromoter, append(read, "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"), local)
	allow(fnSweeper, []string{"ecr:DescribeRepositories"}, local)
	allow(fnSweepworker, append(read, "ecr:BatchDeleteImage"), local)

	// GetAuthorizationToken has no resource-level permissions in IAM: it requires "*".
	allow(fnPromoter, []string{"ecr:GetAuthorizationToken"}, []string{"*"})
	allow(fnPromoter, []string{"sts:AssumeRole"}, p.promotionRoleARNs())
	allow(fnPromoter, []string{"sts:AssumeRole"}, p.deploymentRoleARNs())
	// The sweep keeps what runs: in the pipeline account its functions read ECS and Lambda
	// themselves (elsewhere through the sweeper role).
	for _, env := range p.local {
		region := p.cfg.Environments[env].Region
		for _, fn := range []string{fnSweeper, fnSweepworker} {
			for _, st := range p.inUseStatements(p.pipeline.Account, region) {
				b.roles[fn].AddToPolicy(st)
			}
			suppress(b.roles[fn], "AwsSolutions-IAM5", inUseReason, inUseFindings(p.pipeline.Account, region)...)
		}
	}
	allow(fnSweeper, []string{"sts:AssumeRole"}, p.sweeperRoleARNs())
	allow(fnSweepworker, []string{"sts:AssumeRole"}, p.sweeperRoleARNs())

	reason := "ECR actions are scoped to the repository globs in the regflow config (repositories:), in the pipeline account's registries only."
	for fn, arns := range map[string][]string{
		fnTagguard: source, fnScangate: local, fnPromoter: local, fnSweeper: local, fnSweepworker: local,
	} {
		if findings := wildcardFindings(arns); len(findings) > 0 {
			suppress(b.roles[fn], "AwsSolutions-IAM5", reason, findings...)
		}
	}
	suppress(b.roles[fnPromoter], "AwsSolutions-IAM5",
		"ecr:GetAuthorizationToken does not support resource-level permissions; IAM only accepts Resource \"*\" for it. The token grants nothing beyond the role's repository-scoped ECR actions.",
		"Resource::*")
	return nil
}

// wildcardFindings lists the IAM5 findings for ARNs that contain a wildcard.
func wildcardFindings(arns []string) []string {
	var out []string
	for _, a := range arns {
		for _, c := range a {
			if c == '*' || c == '?' {
				out = append(out, "Resource::"+a)
				break
			}
		}
	}
	return out
}

// addRules deploys the routing table (shared/route). ECR and Inspector publish to the
// default bus of the account where the registry is; environment accounts forward theirs
// to the regflow bus, and so does the pipeline account when it hosts a registry, so every
// registry event arrives on the one bus and each function has one rule per event kind.
func (b *pipeline) addRules() error {
	p := b.p
	routes := route.Table(p.cfg)
	if err := route.Validate(routes); err != nil {
		return fmt.Errorf("routing table: %w", err)
	}
	target := func(fn string) awsevents.IRuleTarget {
		return awseventstargets.NewLambdaFunction(b.fns[fn], &awseventstargets.LambdaFunctionProps{
			DeadLetterQueue: b.failures[fn],
			RetryAttempts:   jsii.Number(8),
			MaxEventAge:     awscdk.Duration_Hours(jsii.Number(2)),
		})
	}
	for _, r := range routes {
		props := &awsevents.RuleProps{
			RuleName:    jsii.String(namePrefix + "-" + r.Name),
			Description: jsii.String(r.Description),
		}
		if r.Pattern != nil {
			pattern, err := eventPattern(r.Pattern)
			if err != nil {
				return fmt.Errorf("route %s: %w", r.ID, err)
			}
			props.EventPattern = pattern
		} else {
			props.Schedule = awsevents.Schedule_Expression(jsii.String(r.Schedule))
		}
		if r.On == route.Regflow {
			props.EventBus = b.bus
		}
		switch {
		case r.Forward:
			if !p.hostsEnv() {
				continue
			}
			dlq := b.newQueue("ForwardFailures", namePrefix+"-forward-failures", nil)
			b.failures["forward"] = dlq
			suppress(dlq, "AwsSolutions-SQS3",
				"This queue is the dead-letter queue of the rule forwarding registry events to the regflow bus; cdk-nag only recognises queues named in a redrive policy or a function DeadLetterConfig.")
			props.Targets = &[]awsevents.IRuleTarget{awseventstargets.NewEventBus(b.bus, &awseventstargets.EventBusProps{
				DeadLetterQueue: dlq,
				Role:            forwardingRole(b.stack, b.bus.EventBusArn(), r),
			})}
		case b.fns[r.Function] != nil:
			props.Targets = &[]awsevents.IRuleTarget{target(r.Function)}
		default:
			return fmt.Errorf("route %s targets function %q, which the pipeline stack does not deploy", r.ID, r.Function)
		}
		awsevents.NewRule(b.stack, jsii.String(r.ID), props)
	}
	return nil
}

// addAlarms watches every function's errors and throttles, every dead-letter queue's
// depth, and the approvals function's latency against Slack's 3-second deadline.
func (b *pipeline) addAlarms() {
	five := awscdk.Duration_Minutes(jsii.Number(5))
	alarm := func(id, desc string, m awscloudwatch.IMetric, threshold float64) {
		a := awscloudwatch.NewAlarm(b.stack, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmName:          jsii.String(namePrefix + "-" + kebab(id)),
			AlarmDescription:   jsii.String(desc),
			Metric:             m,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		b.alarms = append(b.alarms, a)
	}
	for _, fn := range functionNames() {
		f := b.fns[fn]
		id := titleCase(fn)
		alarm(id+"Errors", "regflow "+fn+" failed at least once in 5 minutes",
			f.MetricErrors(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}), 1)
		alarm(id+"Throttles", "regflow "+fn+" was throttled at least once in 5 minutes",
			f.MetricThrottles(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}), 1)
	}
	alarm("ApprovalsSlow", "approvals p99 latency is near Slack's 3-second deadline",
		b.fns[fnApprovals].MetricDuration(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("p99")}), 2500)
	for _, name := range slices.Sorted(maps.Keys(b.failures)) {
		q := b.failures[name]
		alarm(titleCase(name)+"DeadLetters", "messages waiting in "+namePrefix+" "+name+" dead-letter queue: an event was not processed",
			q.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Maximum")}), 1)
	}
	if b.opts.alarmTopic != "" {
		topic := awssns.Topic_FromTopicArn(b.stack, jsii.String("AlarmTopic"), jsii.String(b.opts.alarmTopic))
		for _, a := range b.alarms {
			a.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))
		}
	}
}
