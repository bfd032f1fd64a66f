// Command sweepworker is the Lambda function run per SQS message of the retention sweep: it
// sweeps one batch of repositories and posts the run's summary when it completes the last
// batch.
// Every use case is built in shared/app; this is the AWS entry point only.
package main

import (
	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/route"
)

func main() { awsapp.Start(route.Sweepworker) }
