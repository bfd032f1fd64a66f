// Command promoter is the Lambda function run on "Promotion Approved" and "Rollback
// Requested": it copies the approved digest into the environment's account and moves its
// release pointer.
// Every use case is built in shared/app; this is the AWS entry point only.
package main

import (
	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/signature/ocisig"
)

func main() { awsapp.Start(route.Promoter, awsapp.WithSignatures(ocisig.ForApp)) }
