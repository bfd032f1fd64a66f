// Command sweeper is the Lambda function run on the retention schedule: it lists every
// environment's repositories and queues them in batches for sweepworker.
// Every use case is built in shared/app; this is the AWS entry point only.
package main

import (
	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/route"
)

func main() { awsapp.Start(route.Sweeper) }
