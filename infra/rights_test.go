package main

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// putters maps each detail-type to the logical ids of the roles whose policies allow
// putting it on the regflow bus as source regflow.
func putters(tp template) map[string][]string {
	out := map[string][]string{}
	for _, st := range allowStatements(tp) {
		if !contains(st.actions, "events:PutEvents") || strings.HasPrefix(st.principal, "resource-policy:") {
			continue
		}
		if !contains(conditionValues(st.raw, "events:source"), "regflow") {
			continue
		}
		for _, dt := range conditionValues(st.raw, "events:detail-type") {
			out[dt] = append(out[dt], st.principal)
		}
	}
	return out
}

// busDenies returns the bus policy's Deny statements by Sid.
func busDenies(tp template) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, r := range tp.resources("AWS::Events::EventBusPolicy") {
		st, _ := props(r)["Statement"].(map[string]any)
		if st["Effect"] == "Deny" {
			sid, _ := st["Sid"].(string)
			out[strings.TrimPrefix(sid, "cdk-")] = st
		}
	}
	return out
}

// TestBusRights: each function may put only the detail-types it publishes; nobody but
// regflow's publishing roles may send source regflow; a verification result for an
// environment with named reporters can only come from them (or its own account).
func TestBusRights(t *testing.T) {
	b, err := os.ReadFile(repoConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(string(b), "  staging:\n", "  staging:\n    verificationReporters: [arn:aws:iam::111111111111:role/deploy-staging]\n", 1)
	s := synth(t, writeConfig(t, yaml))
	pt := s.templates["regflow-pipeline"]
	role := func(fn string) string {
		id, _ := pt.byProp(t, "AWS::IAM::Role", "RoleName", functionRoleName(fn))
		return id
	}

	// Stated here, not taken from the code under test: what each function publishes.
	want := map[string][]string{
		"Tag Policy Violation":      {role(fnTagguard)},
		"Promotion Approved":        {role(fnApprovals)},
		"Promotion Rejected":        {role(fnApprovals)},
		"Rollback Requested":        {role(fnApprovals)},
		"Image Promoted":            {role(fnPromoter)},
		"Promotion Superseded":      {role(fnPromoter)},
		"Promotion Failed":          {role(fnPromoter)},
		"Release Rolled Back":       {role(fnPromoter)},
		"Retention Sweep Completed": {role(fnSweeper), role(fnSweepworker)},
	}
	got := putters(pt)
	for dt := range got {
		got[dt] = strs(toAny(got[dt]))
	}
	for dt := range want {
		want[dt] = strs(toAny(want[dt]))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("who may put which detail-type as source regflow (-want +got):\n%s", d)
	}

	denies := busDenies(pt)
	regflowOnly := denies["OnlyRegflowPublishersSendSourceRegflow"]
	cond, _ := regflowOnly["Condition"].(map[string]any)
	var wantARNs []string
	for _, fn := range []string{fnTagguard, fnApprovals, fnPromoter, fnSweeper, fnSweepworker} {
		wantARNs = append(wantARNs, "arn:aws:iam::111111111111:role/regflow-fn-"+fn)
	}
	if d := cmp.Diff(map[string]any{
		"ForAnyValue:StringEquals": map[string]any{"events:source": "regflow"},
		"StringNotEquals":          map[string]any{"aws:PrincipalArn": toAny(wantARNs)},
	}, cond); d != "" || regflowOnly["Principal"] == nil || regflowOnly["Action"] != "events:PutEvents" {
		t.Errorf("the bus must deny source regflow to all but the publishing roles (-want +got):\n%s\n%v", d, regflowOnly)
	}

	reporters := denies["OnlyNamedReportersVerifyStaging"]
	if d := cmp.Diff(map[string]any{
		"ForAnyValue:StringEquals": map[string]any{"events:source": "regflow.verification.staging"},
		"StringNotEquals":          map[string]any{"aws:PrincipalArn": toAny([]string{"arn:aws:iam::111111111111:role/deploy-staging"})},
	}, reporters["Condition"]); d != "" {
		t.Errorf("staging's verification source must be denied to all but its reporters (-want +got):\n%s", d)
	}
	if _, ok := denies["OnlyNamedReportersVerifyProd"]; ok {
		t.Error("prod names no reporters: no statement for it")
	}
}
