package main

import (
	"slices"
	"strings"
	"testing"
)

// TestSlackEndpoint checks the pipeline stack's Slack endpoint: the approvals function
// may queue its own follow-ups (answer first) and no other function may invoke it.
func TestSlackEndpoint(t *testing.T) {
	s := synth(t, repoConfig(t))
	pt := s.templates["regflow-pipeline"]
	self := ":lambda:" + s.plan.pipeline.Region + ":" + s.plan.pipeline.Account + ":function:" + functionName(fnApprovals)
	approvalsRole, _ := pt.byProp(t, "AWS::IAM::Role", "RoleName", functionRoleName(fnApprovals))

	t.Run("self-invoke", func(t *testing.T) {
		var granted bool
		for _, st := range allowStatements(pt) {
			if !slices.Contains(st.actions, "lambda:InvokeFunction") {
				continue
			}
			if st.principal != approvalsRole {
				t.Errorf("%s may invoke functions (%v); only the approvals function, on itself", st.principal, st.resources)
				continue
			}
			for _, r := range st.resources {
				if !strings.HasSuffix(r, self) {
					t.Errorf("approvals may invoke %s; only itself (%s)", r, self)
				}
			}
			granted = true
		}
		if !granted {
			t.Errorf("the approvals role cannot invoke %s: its follow-ups (reply, message update) cannot leave after the answer", self)
		}
	})
}
