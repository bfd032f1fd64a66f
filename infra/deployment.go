package main

import (
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/regflow/regflow/shared/awsapp"
)

// DeploymentRoleName is the role the promoter assumes in an environment's account to hand a
// release to its SSM parameter, ECS services and Lambda aliases.
const DeploymentRoleName = awsapp.DeploymentRoleName

// deployEnvs are the environments of account that receive promotions (every one after the
// source): the deployment role there serves them all.
func (p *plan) deployEnvs(account string) []string {
	var out []string
	for i, n := range p.cfg.PromotionPath {
		if i > 0 && p.cfg.Environments[n].Account == account {
			out = append(out, n)
		}
	}
	return out
}

// deploymentRoleOwner is the environment whose stack creates account's deployment role
// (IAM is global: one per account): the first environment there that receives promotions.
func (p *plan) deploymentRoleOwner(account string) string {
	if envs := p.deployEnvs(account); len(envs) > 0 {
		return envs[0]
	}
	return ""
}

// deploymentRoleARNs lists the deployment roles the promoter may assume, one per account.
func (p *plan) deploymentRoleARNs() []string {
	var out []string
	for _, n := range p.cfg.PromotionPath {
		e := p.cfg.Environments[n]
		if p.deploymentRoleOwner(e.Account) != n {
			continue
		}
		arn := e.Deploy.Role
		if arn == "" {
			arn = roleARN(e.Region, e.Account, DeploymentRoleName)
		}
		if !slices.Contains(out, arn) {
			out = append(out, arn)
		}
	}
	return out
}

// addDeploymentRole creates account's deployment role: trusted only by the promoter's role
// with the environments' external ids; SSM writes under their parameter prefixes, ECS
// updates of their configured services, Lambda updates of their configured functions.
func addDeploymentRole(stack awscdk.Stack, p *plan, account string) {
	envs := p.deployEnvs(account)
	var externalIDs []string
	for _, n := range envs {
		if id := p.cfg.Environments[n].ExternalID; id != "" && !slices.Contains(externalIDs, id) {
			externalIDs = append(externalIDs, id)
		}
	}
	props := &awsiam.RoleProps{
		RoleName:           jsii.String(DeploymentRoleName),
		Description:        jsii.String("regflow promoter hands releases to SSM, ECS and Lambda in " + strings.Join(envs, ", ")),
		AssumedBy:          awsiam.NewArnPrincipal(jsii.String(p.fnRoleARN(fnPromoter))),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	}
	if len(externalIDs) > 0 {
		props.ExternalIds = jsii.Strings(externalIDs...)
	}
	role := awsiam.NewRole(stack, jsii.String("DeploymentRole"), props)
	var params, services, functions []string
	ecsUsed := false
	for _, n := range envs {
		e := p.cfg.Environments[n]
		part := partition(e.Region)
		if name := e.Deploy.ParameterName("*"); name != "" {
			params = append(params, "arn:"+part+":ssm:"+e.Region+":"+account+":parameter"+name)
		}
		for _, t := range e.Deploy.Targets {
			switch {
			case t.ECS != nil:
				ecsUsed = true
				services = append(services, "arn:"+part+":ecs:"+e.Region+":"+account+":service/"+t.ECS.Cluster+"/"+t.ECS.Service)
			case t.Lambda != nil:
				fn := t.Lambda.Function
				if !strings.HasPrefix(fn, "arn:") {
					fn = "arn:" + part + ":lambda:" + e.Region + ":" + account + ":function:" + fn
				}
				functions = append(functions, fn, fn+":*")
			}
		}
	}
	add := func(sid string, actions, resources []string) {
		if len(resources) == 0 {
			return
		}
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String(sid), Actions: jsii.Strings(actions...), Resources: jsii.Strings(resources...),
		}))
	}
	add("ReleaseParameters", []string{"ssm:GetParameter", "ssm:PutParameter"}, params)
	add("ConfiguredServices", []string{"ecs:DescribeServices", "ecs:UpdateService"}, services)
	add("ConfiguredFunctions", []string{"lambda:GetAlias", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
		"lambda:UpdateFunctionCode", "lambda:PublishVersion", "lambda:UpdateAlias"}, functions)
	findings := wildcardFindings(append(append(slices.Clone(params), services...), functions...))
	if ecsUsed {
		// Task definitions have no resource-level permissions for these two calls, and the
		// roles a task definition names are the service owner's, not in regflow's config:
		// PassRole is limited to handing them to ECS tasks in this account.
		add("TaskDefinitions", []string{"ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"}, []string{"*"})
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String("PassTaskRolesToECS"), Actions: jsii.Strings("iam:PassRole"),
			Resources:  jsii.Strings("arn:" + partition(p.cfg.Environments[envs[0]].Region) + ":iam::" + account + ":role/*"),
			Conditions: &map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
		}))
		findings = append(findings, "Resource::*", "Resource::arn:"+partition(p.cfg.Environments[envs[0]].Region)+":iam::"+account+":role/*")
	}
	if len(findings) > 0 {
		suppress(role, "AwsSolutions-IAM5",
			"SSM parameters and Lambda versions are named by the config's templates (one per repository, every version); ECS task definitions cannot be scoped for Describe/RegisterTaskDefinition; PassRole only to ECS tasks.",
			findings...)
	}
}

// noResourceLevel are the actions regflow calls that IAM only grants on Resource "*"
// (listing an account's clusters, services, tasks and functions; task definitions).
var noResourceLevelActions = []string{"ecr:GetAuthorizationToken", "ecs:ListClusters", "ecs:ListServices", "ecs:ListTasks",
	"ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "lambda:ListFunctions", "inspector2:ListCoverage"}

// inUseStatements read what runs in account (the sweep never deletes a running image): the
// List calls on "*" (they take no resource), the Describe and Get calls on the account's
// services, tasks and functions; Inspector's coverage when retention.inUseWithin is set.
func (p *plan) inUseStatements(account, region string) []awsiam.PolicyStatement {
	list := []string{"ecs:ListClusters", "ecs:ListServices", "ecs:ListTasks", "ecs:DescribeTaskDefinition", "lambda:ListFunctions"}
	if p.cfg.Retention.InUseWithin.D() > 0 {
		list = append(list, "inspector2:ListCoverage")
	}
	arn := func(svc, rest string) string {
		return "arn:" + partition(region) + ":" + svc + ":" + region + ":" + account + ":" + rest
	}
	return []awsiam.PolicyStatement{
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Sid: jsii.String("ListWhatRuns"), Actions: jsii.Strings(list...), Resources: jsii.Strings("*")}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Sid: jsii.String("ReadWhatRuns"),
			Actions:   jsii.Strings("ecs:DescribeServices", "ecs:DescribeTasks", "lambda:ListAliases", "lambda:GetFunction"),
			Resources: jsii.Strings(arn("ecs", "service/*"), arn("ecs", "task/*"), arn("lambda", "function:*"))}),
	}
}

// inUseFindings are the IAM5 findings inUseStatements raise.
func inUseFindings(account, region string) []string {
	arn := func(svc, rest string) string {
		return "Resource::arn:" + partition(region) + ":" + svc + ":" + region + ":" + account + ":" + rest
	}
	return []string{"Resource::*", arn("ecs", "service/*"), arn("ecs", "task/*"), arn("lambda", "function:*")}
}

const inUseReason = "Reading what runs lists every ECS cluster, service and task and every Lambda function of the account (an image may run in one regflow does not deploy); the List calls take no resource, the Describe and Get calls are limited to this account. Read-only."
