package localruntime_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/regflow/regflow/shared/local/localruntime"
)

// TestFaults: injected errors and throttling come back as each API's own error codes, and
// every request is counted by operation.
func TestFaults(t *testing.T) {
	e := start(t, localruntime.Options{})
	ctx := context.Background()
	e.srv.SetFault("DescribeServices", localruntime.Fault{ErrorRate: 1})
	e.srv.SetFault("GetAlias", localruntime.Fault{ThrottleAbove: 1})
	e.srv.SetFault("GetParameter", localruntime.Fault{ErrorRate: 1})
	_, err := e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
	if errCode(err) != "ServerException" {
		t.Fatalf("ECS: %v", err)
	}
	for range 2 {
		_, err = e.lambda.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("f"), Name: aws.String("live")})
	}
	if errCode(err) != "TooManyRequestsException" {
		t.Fatalf("Lambda: %v", err)
	}
	_, err = e.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/p")})
	if errCode(err) != "InternalServerError" {
		t.Fatalf("SSM: %v", err)
	}
	if n := e.srv.Requests("GetAlias"); n != 2 {
		t.Fatalf("GetAlias counted %d", n)
	}
	e.srv.SetFault("DescribeServices", localruntime.Fault{})
	_, err = e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
	if errCode(err) != "ClusterNotFoundException" {
		t.Fatalf("after the fault is removed: %v", err)
	}
}
