package main

import (
	"regexp"

	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// suppress records why a cdk-nag finding does not apply to c (and its children).
// appliesTo narrows granular rules (IAM4, IAM5) to exact findings; a value written
// /like this/ is a regular expression, for findings that name a logical id.
func suppress(c constructs.IConstruct, id, reason string, appliesTo ...string) {
	s := &cdknag.NagPackSuppression{Id: jsii.String(id), Reason: jsii.String(reason)}
	if len(appliesTo) > 0 {
		a := make([]interface{}, 0, len(appliesTo))
		for _, v := range appliesTo {
			if len(v) > 1 && v[0] == '/' && v[len(v)-1] == '/' {
				a = append(a, &cdknag.RegexAppliesTo{Regex: jsii.String(v)})
			} else {
				a = append(a, v)
			}
		}
		s.AppliesTo = &a
	}
	cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{s}, jsii.Bool(true))
}

// logicalIDFinding matches an IAM5 finding on "<LogicalId.Arn>suffix" for a logical id
// starting with prefix, since logical ids carry a hash CDK computes.
func logicalIDFinding(prefix, suffix string) string {
	return "/^Resource::<" + regexp.QuoteMeta(prefix) + `[A-Za-z0-9]*\.Arn>` + regexp.QuoteMeta(suffix) + "$/"
}
