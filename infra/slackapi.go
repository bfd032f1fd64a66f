package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"

	"github.com/regflow/regflow/shared/approvals"
)

// The Slack endpoint: API Gateway in front of the approvals function, and what that
// function needs to answer first (shared/approvals/followup.go).

// slackRate/slackBurst throttle the Slack endpoint's stage: high enough that one source
// flooding it cannot use up what clicks need, with the function's refusal of unsigned
// requests kept cheap. Why this and not WAF: shared/approvals/apigw.go.
const (
	slackRate  = approvals.StageRateLimit
	slackBurst = approvals.StageBurstLimit
)

// addSlackAPI exposes POST /slack/interactions to Slack, throttled, with access logs.
func (b *pipeline) addSlackAPI() {
	api := awsapigatewayv2.NewHttpApi(b.stack, jsii.String("SlackApi"), &awsapigatewayv2.HttpApiProps{
		ApiName:            jsii.String(namePrefix + "-slack"),
		Description:        jsii.String("Slack interactivity endpoint for regflow approvals"),
		CreateDefaultStage: jsii.Bool(false),
	})
	stage := awsapigatewayv2.NewHttpStage(b.stack, jsii.String("SlackApiStage"), &awsapigatewayv2.HttpStageProps{
		HttpApi:    api,
		StageName:  jsii.String("$default"),
		AutoDeploy: jsii.Bool(true),
		Throttle: &awsapigatewayv2.ThrottleSettings{
			RateLimit:  jsii.Number(slackRate),
			BurstLimit: jsii.Number(slackBurst),
		},
	})
	access := awslogs.NewLogGroup(b.stack, jsii.String("SlackApiAccessLogs"), &awslogs.LogGroupProps{
		Retention:     logRetention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	cfn := stage.Node().DefaultChild().(awsapigatewayv2.CfnStage)
	cfn.SetAccessLogSettings(&awsapigatewayv2.CfnStage_AccessLogSettingsProperty{
		DestinationArn: access.LogGroupArn(),
		Format: jsii.String(`{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime",` +
			`"routeKey":"$context.routeKey","status":"$context.status","responseLength":"$context.responseLength",` +
			`"integrationLatency":"$context.integrationLatency","integrationError":"$context.integrationErrorMessage"}`),
	})
	routes := api.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
		Path:        jsii.String(slackRoute),
		Methods:     &[]awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod_POST},
		Integration: awsapigatewayv2integrations.NewHttpLambdaIntegration(jsii.String("Approvals"), b.fns[fnApprovals], nil),
	})
	for _, r := range *routes {
		suppress(r, "AwsSolutions-APIG4",
			"Slack cannot present IAM, JWT or Cognito credentials; each request is authenticated by the approvals function, which verifies Slack's v0 HMAC signature over the raw body with a 5-minute replay window before doing anything.")
	}
	b.grantSelfInvoke()
	awscdk.NewCfnOutput(b.stack, jsii.String("SlackInteractionsUrl"), &awscdk.CfnOutputProps{
		Value:       jsii.String(*api.ApiEndpoint() + slackRoute),
		Description: jsii.String("Slack app > Interactivity & Shortcuts > Request URL"),
	})
}

// grantSelfInvoke lets the approvals function queue each click's follow-up as an
// asynchronous invocation of itself, and nothing else. The ARN is spelled out from the
// function's fixed name: naming the function object in its own role's policy would
// make the function depend on a policy that depends on the function.
func (b *pipeline) grantSelfInvoke() {
	self := "arn:" + partition(b.p.pipeline.Region) + ":lambda:" + b.p.pipeline.Region + ":" + b.p.pipeline.Account + ":function:" + functionName(fnApprovals)
	b.roles[fnApprovals].AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("QueueOwnFollowUps"),
		Actions:   jsii.Strings("lambda:InvokeFunction"),
		Resources: jsii.Strings(self),
	}))
}
