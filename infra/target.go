package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// ECR actions the promotion role needs to copy an image in: the push data path, reads
// for skipping blobs the target already has and verifying the result, and the
// repository settings the promoter enforces.
func promotionActions() []string {
	return []string{
		"ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
		"ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
		"ecr:DescribeImages", "ecr:DescribeRepositories", "ecr:ListImages",
		"ecr:PutImageTagMutability", "ecr:PutImageScanningConfiguration",
		// The target repository's policy lets only the promotion role push.
		"ecr:GetRepositoryPolicy", "ecr:SetRepositoryPolicy",
	}
}

// sweeperActions are what the retention sweep reads and deletes.
func sweeperActions() []string {
	return []string{"ecr:DescribeRepositories", "ecr:DescribeImages", "ecr:ListImages", "ecr:BatchGetImage", "ecr:BatchDeleteImage"}
}

// newTargetStack deploys into one environment's account and region: the rule that
// forwards its registry events to the pipeline bus, and the roles regflow assumes there.
func newTargetStack(app awscdk.App, p *plan, env string) (awscdk.Stack, error) {
	e := p.cfg.Environments[env]
	stack := awscdk.NewStack(app, jsii.String(namePrefix+"-"+env), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(e.Account), Region: jsii.String(e.Region)},
		Description: jsii.String(fmt.Sprintf("regflow environment %s: event forwarding and the roles regflow assumes (account %s)", env, e.Account)),
	})
	awscdk.Tags_Of(stack).Add(jsii.String(ManagedTagKey), jsii.String(ManagedTagValue), nil)

	busARN := fmt.Sprintf("arn:%s:events:%s:%s:event-bus/%s",
		partition(p.pipeline.Region), p.pipeline.Region, p.pipeline.Account, p.cfg.Pipeline.EventBus)
	bus := awsevents.EventBus_FromEventBusArn(stack, jsii.String("PipelineBus"), jsii.String(busARN))
	dlq := awssqs.NewQueue(stack, jsii.String("ForwardFailures"), &awssqs.QueueProps{
		QueueName:       jsii.String(namePrefix + "-forward-failures"),
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	suppress(dlq, "AwsSolutions-SQS3",
		"This queue is the dead-letter queue of the rule forwarding registry events to the pipeline bus; cdk-nag only recognises queues named in a redrive policy or a function DeadLetterConfig.")
	// The EventBus target creates the role EventBridge uses to put events on another
	// account's bus; the pipeline bus policy admits this account for aws.ecr/aws.inspector2.
	fwd, err := forwardingRoute(p)
	if err != nil {
		return nil, err
	}
	pattern, err := eventPattern(fwd.Pattern)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", fwd.ID, err)
	}
	awsevents.NewRule(stack, jsii.String(fwd.ID), &awsevents.RuleProps{
		RuleName:     jsii.String(namePrefix + "-" + fwd.Name),
		Description:  jsii.String(fwd.Description),
		EventPattern: pattern,
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewEventBus(bus, &awseventstargets.EventBusProps{
			DeadLetterQueue: dlq,
			Role:            forwardingRole(stack, jsii.String(busARN), fwd),
		})},
	})
	awscloudwatch.NewAlarm(stack, jsii.String("ForwardDeadLetters"), &awscloudwatch.AlarmProps{
		AlarmName:          jsii.String(namePrefix + "-forward-dead-letters"),
		AlarmDescription:   jsii.String("registry events from " + env + " could not be delivered to the regflow bus"),
		Metric:             dlq.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Maximum")}),
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})

	if err := addAccountRoles(stack, p, env); err != nil {
		return nil, err
	}
	return stack, nil
}

// addAccountRoles creates the IAM roles regflow assumes in env's account, once per
// account (IAM is global): the promotion role(s) env owns, and the sweeper role.
func addAccountRoles(stack awscdk.Stack, p *plan, env string) error {
	e := p.cfg.Environments[env]
	if arn := e.PromotionRole; arn != "" && p.promotionRoleOwner[arn] == env {
		if err := addPromotionRole(stack, p, arn); err != nil {
			return err
		}
	}
	if e.Account != p.pipeline.Account && p.sweeperRoleOwner[e.Account] == env {
		addSweeperRole(stack, p, e.Account)
		addReaderRole(stack, p, e.Account)
	}
	if p.deploymentRoleOwner(e.Account) == env && e.Deploy.Role == "" {
		addDeploymentRole(stack, p, e.Account)
	}
	return nil
}

// addReaderRole lets the scan gate read what it gates in this account: an image's tags,
// the index that lists a scanned platform image, and the findings. Read-only.
func addReaderRole(stack awscdk.Stack, p *plan, account string) {
	var envs []string
	for _, n := range p.cfg.PromotionPath {
		if p.cfg.Environments[n].Account == account {
			envs = append(envs, n)
		}
	}
	role := awsiam.NewRole(stack, jsii.String("ReaderRole"), &awsiam.RoleProps{
		RoleName:           jsii.String(ReaderRoleName),
		Description:        jsii.String("regflow scan gate reads images and findings in " + strings.Join(envs, ", ")),
		AssumedBy:          awsiam.NewArnPrincipal(jsii.String(p.fnRoleARN(fnScangate))),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	repos := p.repoARNsFor(envs)
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadConfiguredRepositories"),
		Actions:   jsii.Strings(scanReadActions()...),
		Resources: jsii.Strings(repos...),
	}))
	if findings := wildcardFindings(repos); len(findings) > 0 {
		suppress(role, "AwsSolutions-IAM5",
			"ECR read actions are scoped to the repository globs in the regflow config (repositories:), in this account's regflow registries only.",
			findings...)
	}
}

// scanReadActions are what the scan gate calls on a registry.
func scanReadActions() []string {
	return []string{"ecr:DescribeImages", "ecr:BatchGetImage", "ecr:DescribeImageScanFindings"}
}

// addPromotionRole is the role the promoter assumes to copy images into the
// environments that use it. Only the promoter's role may assume it, with the
// environment's external id.
func addPromotionRole(stack awscdk.Stack, p *plan, arn string) error {
	path, name, err := splitRoleARN(arn)
	if err != nil {
		return fmt.Errorf("promotion role: %w", err)
	}
	envs := p.promotionRoleEnvs[arn]
	var externalIDs []string
	for _, env := range envs {
		if id := p.cfg.Environments[env].ExternalID; !slices.Contains(externalIDs, id) {
			externalIDs = append(externalIDs, id)
		}
	}
	role := awsiam.NewRole(stack, jsii.String("PromotionRole"), &awsiam.RoleProps{
		RoleName:           jsii.String(name),
		Path:               jsii.String(path),
		Description:        jsii.String("regflow promoter pushes approved images into " + strings.Join(envs, ", ")),
		AssumedBy:          awsiam.NewArnPrincipal(jsii.String(p.fnRoleARN(fnPromoter))),
		ExternalIds:        jsii.Strings(externalIDs...),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	repos := p.repoARNsFor(envs)
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("CopyIntoConfiguredRepositories"),
		Actions:   jsii.Strings(promotionActions()...),
		Resources: jsii.Strings(repos...),
	}))
	// IAM has no condition key for a repository's tag mutability, so immutability is
	// enforced by the promoter (CreateRepository with IMMUTABLE, then
	// PutImageTagMutability) and IAM only lets it create repositories labelled as
	// regflow's, which makes every one it created findable and auditable.
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("CreateRegflowRepositories"),
		Actions:   jsii.Strings("ecr:CreateRepository", "ecr:TagResource"),
		Resources: jsii.Strings(repos...),
		Conditions: &map[string]interface{}{
			"StringEquals": map[string]interface{}{"aws:RequestTag/" + ManagedTagKey: ManagedTagValue},
		},
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("RegistryLogin"),
		Actions:   jsii.Strings("ecr:GetAuthorizationToken"),
		Resources: jsii.Strings("*"),
	}))
	if findings := wildcardFindings(repos); len(findings) > 0 {
		suppress(role, "AwsSolutions-IAM5",
			"ECR actions are scoped to the repository globs in the regflow config (repositories:), in this environment's registry only.",
			findings...)
	}
	suppress(role, "AwsSolutions-IAM5",
		"ecr:GetAuthorizationToken does not support resource-level permissions; IAM only accepts Resource \"*\" for it. The token grants nothing beyond the role's repository-scoped ECR actions.",
		"Resource::*")
	for _, env := range envs {
		st, finding := kmsStatement(p, env)
		if st == nil {
			continue
		}
		role.AddToPolicy(st)
		if finding != "" {
			suppress(role, "AwsSolutions-IAM5",
				"The environment names its KMS key by alias; IAM can only match an alias as key/* narrowed by the kms:ResourceAliases condition, and only through ECR (kms:ViaService).",
				finding)
		}
	}
	return nil
}

// kmsStatement lets ECR use the environment's customer key when the promoter creates a
// repository encrypted with it. It returns the IAM5 finding to suppress for aliases.
func kmsStatement(p *plan, env string) (awsiam.PolicyStatement, string) {
	e := p.cfg.Environments[env]
	if e.KMSKey == "" {
		return nil, ""
	}
	part := partition(e.Region)
	conditions := map[string]interface{}{
		"StringEquals": map[string]interface{}{"kms:ViaService": "ecr." + e.Region + ".amazonaws.com"},
	}
	var resource, finding string
	switch key := e.KMSKey; {
	case strings.HasPrefix(key, "alias/") || strings.Contains(key, ":alias/"):
		alias := key[strings.Index(key, "alias/"):]
		resource = fmt.Sprintf("arn:%s:kms:%s:%s:key/*", part, e.Region, e.Account)
		conditions["ForAnyValue:StringEquals"] = map[string]interface{}{"kms:ResourceAliases": alias}
		finding = "Resource::" + resource
	case strings.HasPrefix(key, "arn:"):
		resource = key
	default:
		resource = fmt.Sprintf("arn:%s:kms:%s:%s:key/%s", part, e.Region, e.Account, key)
	}
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("EncryptNewRepositories" + titleCase(env)),
		Actions:    jsii.Strings("kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"),
		Resources:  jsii.Strings(resource),
		Conditions: &conditions,
	}), finding
}

// addSweeperRole lets the sweeper list repositories and the sweep workers delete
// expired images in this account, in the regions of every environment living here.
// Trust names the two function roles in the pipeline account, which is the whole
// audience; an external id protects against confused deputies among third parties and
// adds nothing here.
func addSweeperRole(stack awscdk.Stack, p *plan, account string) {
	var envs []string
	for _, n := range p.cfg.PromotionPath {
		if p.cfg.Environments[n].Account == account {
			envs = append(envs, n)
		}
	}
	role := awsiam.NewRole(stack, jsii.String("SweeperRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(SweeperRoleName),
		Description: jsii.String("regflow retention sweep in " + strings.Join(envs, ", ")),
		AssumedBy: awsiam.NewCompositePrincipal(
			awsiam.NewArnPrincipal(jsii.String(p.fnRoleARN(fnSweeper))),
			awsiam.NewArnPrincipal(jsii.String(p.fnRoleARN(fnSweepworker))),
		),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	repos := p.repoARNsFor(envs)
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("SweepConfiguredRepositories"),
		Actions:   jsii.Strings(sweeperActions()...),
		Resources: jsii.Strings(repos...),
	}))
	if findings := wildcardFindings(repos); len(findings) > 0 {
		suppress(role, "AwsSolutions-IAM5",
			"ECR actions are scoped to the repository globs in the regflow config (repositories:), in this account's regflow registries only.",
			findings...)
	}
	for _, e := range envs {
		env := p.cfg.Environments[e]
		for _, st := range p.inUseStatements(account, env.Region) {
			role.AddToPolicy(st)
		}
		suppress(role, "AwsSolutions-IAM5", inUseReason, inUseFindings(account, env.Region)...)
	}
}
