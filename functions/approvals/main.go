// Command approvals is the Lambda function behind Slack's interactivity Request URL (API
// Gateway HTTP API, POST /slack/interactions): it verifies the click, records the decision
// exactly once and publishes it.
// Every use case is built in shared/app; this is the AWS entry point only.
package main

import (
	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/route"
)

func main() { awsapp.Start(route.Approvals) }
