package main

import (
	"slices"
	"strings"
	"testing"
)

// TestSlackEndpoint checks the pipeline stack's Slack endpoint: the stage's limits leave
// room for a burst of clicks beside a flood from one source, and the approvals function
// may queue its own follow-ups (answer first), nothing else.
func TestSlackEndpoint(t *testing.T) {
	s := synth(t, repoConfig(t))
	pt := s.templates["regflow-pipeline"]
	self := ":lambda:" + s.plan.pipeline.Region + ":" + s.plan.pipeline.Account + ":function:" + functionName(fnApprovals)
	approvalsRole, _ := pt.byProp(t, "AWS::IAM::Role", "RoleName", functionRoleName(fnApprovals))

	t.Run("stage limits outlast a flood", func(t *testing.T) {
		// bench/approvals: 500 unsigned requests/s from one source beside 200 simultaneous clicks.
		const flood, clicks = 500, 200
		_, stage := pt.byProp(t, "AWS::ApiGatewayV2::Stage", "StageName", "$default")
		rs, _ := props(stage)["DefaultRouteSettings"].(map[string]any)
		rate, _ := rs["ThrottlingRateLimit"].(float64)
		burst, _ := rs["ThrottlingBurstLimit"].(float64)
		if rate < flood+clicks || burst < clicks {
			t.Errorf("stage throttles at %v/s, burst %v: a flood of %d/s from one source leaves no room for %d simultaneous clicks", rate, burst, flood, clicks)
		}
	})

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
