// Command scangate is the Lambda function run on ECR basic and Inspector enhanced scan results
// and on "Verification Result" events: it records findings, applies the next environment's
// gate and asks for approval in Slack.
// Every use case is built in shared/app; this is the AWS entry point only.
package main

import (
	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/signature/ocisig"
)

func main() { awsapp.Start(route.Scangate, awsapp.WithSignatures(ocisig.ForApp)) }
