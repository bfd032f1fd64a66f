package awsapp

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/regflow/regflow/shared/approvals"
)

// EnvFunctionName is set by Lambda to the running function's name.
const EnvFunctionName = "AWS_LAMBDA_FUNCTION_NAME"

// LambdaInvoker is the part of the Lambda API the self-invoker uses.
type LambdaInvoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// SelfInvoke hands a click's follow-up to an asynchronous invocation of the running
// function (approvals/followup.go says why): Lambda queues the event and answers 202 at
// once, and the queued invocation runs the follow-up with a whole invocation's time.
// The function's role needs lambda:InvokeFunction on itself (infra/slackapi.go).
type SelfInvoke struct {
	API      LambdaInvoker
	Function string
}

// Defer queues f as an event invocation of the function.
func (s SelfInvoke) Defer(ctx context.Context, f approvals.FollowUp) error {
	payload, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode the click's follow-up: %w", err)
	}
	if _, err := s.API.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(s.Function), InvocationType: lambdatypes.InvocationTypeEvent, Payload: payload,
	}); err != nil {
		// The SDK's error names the function and the status, never the payload.
		return fmt.Errorf("queue the click's follow-up on %s: %w", s.Function, err)
	}
	return nil
}

// selfInvoke is the follow-up runner of a function running in Lambda; nil elsewhere,
// where the app runs follow-ups in process.
func selfInvoke(awsCfg aws.Config) approvals.Deferrer {
	name := os.Getenv(EnvFunctionName)
	if name == "" {
		return nil
	}
	return SelfInvoke{API: lambda.NewFromConfig(awsCfg), Function: name}
}
