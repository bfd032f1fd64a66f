package main

//lint:file-ignore SA1019 cxapi's message types moved to @aws-cdk/cloud-assembly-api, which has no Go binding; these are the ones aws-cdk-go returns.

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
)

// synthErrors lists the error annotations (cdk-nag findings among them) of every stack.
// A plain synth succeeds regardless; the CLI would fail on them, and so does this app.
func synthErrors(asm cxapi.CloudAssembly) []string {
	var out []string
	for _, s := range *asm.Stacks() {
		for _, m := range *s.Messages() {
			if m.Level != cxapi.SynthesisMessageLevel_ERROR {
				continue
			}
			out = append(out, fmt.Sprintf("%s %s: %v", *s.StackName(), *m.Id, m.Entry.Data))
		}
	}
	return out
}
