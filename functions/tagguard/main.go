// Command tagguard is the Lambda function run on every ECR push in the source environment: it
// enforces the tag policy, keeps repositories tag-immutable and records the image.
// Every use case is built in shared/app; this is the AWS entry point only.
package main

import (
	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/route"
)

func main() { awsapp.Start(route.Tagguard) }
