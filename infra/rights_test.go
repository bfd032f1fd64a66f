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

// busAllowCount counts the bus policy's Allow statements.
func busAllowCount(tp template) int {
	n := 0
	for _, r := range tp.resources("AWS::Events::EventBusPolicy") {
		if st, _ := props(r)["Statement"].(map[string]any); st["Effect"] == "Allow" {
			n++
		}
	}
	return n
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
		"Release Deployed":          {role(fnPromoter)},
		"Deployment Failed":         {role(fnPromoter)},
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

// TestTableRights: each function may write only the item kinds it owns, each kind with
// only the actions the store uses for it; nobody may update or delete an audit entry.
func TestTableRights(t *testing.T) {
	s := synth(t, repoConfig(t))
	pt := s.templates["regflow-pipeline"]
	// Stated here, not taken from the code under test.
	want := map[string]map[string][]string{
		fnTagguard: {"IMG#*": {"dynamodb:UpdateItem"}, "AUDIT#*": {"dynamodb:PutItem"}, "CLAIM#*": {"dynamodb:DeleteItem", "dynamodb:PutItem"}},
		fnScangate: {"SCAN#*": {"dynamodb:PutItem"}, "VERIFY#*": {"dynamodb:PutItem"}, "REQ#*": {"dynamodb:PutItem"},
			"AUDIT#*": {"dynamodb:PutItem"}, "CLAIM#*": {"dynamodb:DeleteItem", "dynamodb:PutItem"}},
		fnApprovals: {"REQ#*": {"dynamodb:PutItem"}, "RB#*": {"dynamodb:PutItem"}, "AUDIT#*": {"dynamodb:PutItem"}, "CLAIM#*": {"dynamodb:DeleteItem", "dynamodb:PutItem"}},
		fnPromoter: {"REL#*": {"dynamodb:PutItem"}, "REQ#*": {"dynamodb:PutItem"}, "VERIFY#*": {"dynamodb:PutItem"}, "RB#*": {"dynamodb:PutItem"}, "AUDIT#*": {"dynamodb:PutItem"},
			"CLAIM#*": {"dynamodb:DeleteItem", "dynamodb:PutItem"}},
		fnSweeper: {"SWEEP#*": {"dynamodb:PutItem", "dynamodb:UpdateItem"}, "MANIFEST#*": {"dynamodb:BatchWriteItem"},
			"AUDIT#*": {"dynamodb:PutItem"}, "CLAIM#*": {"dynamodb:DeleteItem", "dynamodb:PutItem"}},
		fnSweepworker: {"SWEEP#*": {"dynamodb:PutItem", "dynamodb:UpdateItem"}, "MANIFEST#*": {"dynamodb:BatchWriteItem"},
			"AUDIT#*": {"dynamodb:PutItem"}, "CLAIM#*": {"dynamodb:DeleteItem", "dynamodb:PutItem"}},
	}
	for fn, w := range want {
		id, _ := pt.byProp(t, "AWS::IAM::Role", "RoleName", functionRoleName(fn))
		got := map[string][]string{}
		for _, st := range allowStatements(pt) {
			if st.principal != id {
				continue
			}
			var writes []string
			for _, a := range st.actions {
				if dynamoWrites[a] {
					writes = append(writes, a)
				}
			}
			if len(writes) == 0 {
				continue
			}
			keys := conditionValues(st.raw, "dynamodb:LeadingKeys")
			if len(keys) == 0 {
				keys = []string{"(any key)"}
			}
			for _, k := range keys {
				got[k] = strs(toAny(append(got[k], writes...)))
			}
		}
		if d := cmp.Diff(w, got); d != "" {
			t.Errorf("%s's table writes by partition-key prefix (-want +got):\n%s", fn, d)
		}
	}
}

// TestSecretRights: the signing secret is a secret of its own that only approvals reads
// (identity grant and resource policy); the bot token is read by the functions that post.
func TestSecretRights(t *testing.T) {
	s := synth(t, repoConfig(t))
	pt := s.templates["regflow-pipeline"]
	// Stated here, not taken from the code under test.
	for name, readers := range map[string][]string{
		"regflow/slack-signing": {fnApprovals},
		"regflow/slack":         {fnTagguard, fnScangate, fnApprovals, fnPromoter, fnSweeper, fnSweepworker},
	} {
		secret, _ := pt.byProp(t, "AWS::SecretsManager::Secret", "Name", name)
		var got, want, wantARNs []string
		for _, st := range allowStatements(pt) {
			if !contains(st.actions, "secretsmanager:GetSecretValue") {
				continue
			}
			for _, r := range st.resources {
				if strings.Contains(r, `"`+secret+`"`) {
					got = append(got, st.principal)
				}
			}
		}
		for _, fn := range readers {
			id, _ := pt.byProp(t, "AWS::IAM::Role", "RoleName", functionRoleName(fn))
			want = append(want, id)
			wantARNs = append(wantARNs, "arn:aws:iam::111111111111:role/regflow-fn-"+fn)
		}
		if d := cmp.Diff(strs(toAny(want)), strs(toAny(got))); d != "" {
			t.Errorf("roles allowed to read %s (-want +got):\n%s", name, d)
		}
		_, pol := pt.byProp(t, "AWS::SecretsManager::ResourcePolicy", "SecretId", map[string]any{"Ref": secret})
		deny := props(pol)["ResourcePolicy"].(map[string]any)["Statement"].([]any)[0].(map[string]any)
		cond, _ := deny["Condition"].(map[string]any)
		ne, _ := cond["StringNotEquals"].(map[string]any)
		if deny["Effect"] != "Deny" || cmp.Diff(strs(toAny(wantARNs)), strs(ne["aws:PrincipalArn"])) != "" {
			t.Errorf("%s's resource policy must deny GetSecretValue to all but %v: %v", name, wantARNs, deny)
		}
	}
}

// TestUntaggableResourcesCarryNoTags: CloudFormation refuses a Tags property on a resource
// type without one (cfn-lint E3002); the stack-wide managed-by tag must skip those.
func TestUntaggableResourcesCarryNoTags(t *testing.T) {
	s := synth(t, repoConfig(t))
	for name, tp := range s.templates {
		for id, r := range tp.resources("AWS::CloudWatch::Dashboard") {
			if _, ok := props(r)["Tags"]; ok {
				t.Errorf("%s %s: AWS::CloudWatch::Dashboard takes no Tags", name, id)
			}
		}
	}
}
