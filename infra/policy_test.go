package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/regflow/regflow/shared/config"
)

// statement is one Allow statement of an identity or resource policy in a template.
type statement struct {
	// principal is the logical id of the role holding an identity policy, or
	// "resource-policy:<id>" for a resource policy.
	principal string
	actions   []string
	resources []string
	raw       map[string]any
}

// allowStatements lists every Allow statement of every policy in a template.
func allowStatements(tp template) []statement {
	var out []statement
	add := func(principals []string, doc any) {
		for _, raw := range statementsOf(doc) {
			if raw["Effect"] != "Allow" {
				continue
			}
			for _, p := range principals {
				out = append(out, statement{principal: p, actions: strs(raw["Action"]), resources: strs(raw["Resource"]), raw: raw})
			}
		}
	}
	for id, r := range tp.resources("") {
		p := props(r)
		switch r["Type"] {
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy":
			var roles []string
			for _, ref := range asList(p["Roles"]) {
				roles = append(roles, logicalID(ref))
			}
			add(roles, p["PolicyDocument"])
		case "AWS::IAM::Role":
			for _, pol := range asList(p["Policies"]) {
				add([]string{id}, pol.(map[string]any)["PolicyDocument"])
			}
		case "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy":
			add([]string{"resource-policy:" + id}, p["PolicyDocument"])
		case "AWS::SecretsManager::ResourcePolicy":
			add([]string{"resource-policy:" + id}, p["ResourcePolicy"])
		case "AWS::Events::EventBusPolicy":
			add([]string{"resource-policy:" + id}, map[string]any{"Statement": p["Statement"]})
		}
	}
	return out
}

func statementsOf(doc any) []map[string]any {
	d, _ := doc.(map[string]any)
	var out []map[string]any
	for _, s := range asList(d["Statement"]) {
		if m, ok := s.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func asList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	default:
		return []any{x}
	}
}

// noResourceLevel lists the actions IAM only accepts on Resource "*".
var noResourceLevel = func() map[string]bool {
	m := map[string]bool{}
	for _, a := range noResourceLevelActions {
		m[a] = true
	}
	return m
}()

// policyViolations walks every IAM statement of a template and reports what breaks
// least privilege for regflow:
//   - any wildcard in an action ("*", "ecr:*", "ecr:Put*");
//   - Resource "*" for an action that supports resource-level permissions;
//   - ECR actions outside the configured repositories of the configured accounts;
//   - sts:AssumeRole beyond the configured promotion roles and the sweeper roles;
//   - DynamoDB actions outside this stack's table and its indexes;
//   - Secrets Manager reads of anything but this stack's secret;
//   - a resource policy open to "*" without a condition;
//   - a trust policy admitting anyone but regflow's function roles and AWS services
//     regflow uses, or a promotion role without an external id;
//   - a DynamoDB write without a dynamodb:LeadingKeys condition naming key prefixes;
//   - an events:PutEvents grant without conditions on events:detail-type and events:source;
//   - a secret read by a role that is not among its owners (secretOwners), or a secret
//     with no declared owners.
func policyViolations(tp template, p *plan) []string {
	var out []string
	bad := func(st statement, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s: %s", st.principal, fmt.Sprintf(format, args...)))
	}
	var repos, roles []string
	for _, env := range p.cfg.PromotionPath {
		repos = append(repos, p.repoARNs(p.envLocation(env))...)
	}
	roles = append(append(append(p.promotionRoleARNs(), p.sweeperRoleARNs()...), p.readerRoleARNs()...), p.deploymentRoleARNs()...)
	var table string
	for id := range tp.resources("AWS::DynamoDB::Table") {
		table = id
	}
	refersTo := func(r, id string) bool { return id != "" && strings.Contains(r, `"`+id+`"`) }
	isSecret := func(r string) bool {
		for id := range tp.resources("AWS::SecretsManager::Secret") {
			if refersTo(r, id) {
				return true
			}
		}
		return false
	}

	for _, st := range allowStatements(tp) {
		for _, a := range st.actions {
			if strings.Contains(a, "*") {
				bad(st, "wildcard action %q", a)
			}
		}
		for _, r := range st.resources {
			if r != "*" {
				continue
			}
			for _, a := range st.actions {
				if !noResourceLevel[a] {
					bad(st, "%s on Resource \"*\"", a)
				}
			}
		}
		for _, a := range st.actions {
			svc, _, _ := strings.Cut(a, ":")
			for _, r := range st.resources {
				switch {
				case svc == "ecr" && !noResourceLevel[a] && !contains(repos, r):
					bad(st, "%s on %s, outside the configured repositories %v", a, r, repos)
				case svc == "sts" && !strings.HasPrefix(st.principal, "resource-policy:") && !contains(roles, r):
					bad(st, "%s on %s, not a configured promotion, sweeper or reader role", a, r)
				case svc == "dynamodb" && !refersTo(r, table):
					bad(st, "%s on %s, not this stack's table or its indexes", a, r)
				case a == "secretsmanager:GetSecretValue" && !isSecret(r):
					bad(st, "%s on %s, not the Slack secret", a, r)
				}
			}
		}
		identity := !strings.HasPrefix(st.principal, "resource-policy:")
		for _, a := range st.actions {
			switch {
			case identity && dynamoWrites[a]:
				if keys := conditionValues(st.raw, "dynamodb:LeadingKeys"); len(keys) == 0 || contains(keys, "*") {
					bad(st, "%s without a dynamodb:LeadingKeys condition naming the partition-key prefixes it may write", a)
				}
			case identity && a == "events:PutEvents":
				for _, k := range []string{"events:detail-type", "events:source"} {
					if vals := conditionValues(st.raw, k); len(vals) == 0 || contains(vals, "*") {
						bad(st, "events:PutEvents without a %s condition", k)
					}
				}
			}
		}
		if strings.HasPrefix(st.principal, "resource-policy:") && st.raw["Condition"] == nil {
			if pr := st.raw["Principal"]; pr == "*" || fmt.Sprint(pr) == fmt.Sprint(map[string]any{"AWS": "*"}) {
				bad(st, "open to every principal without a condition")
			}
		}
	}

	out = append(out, secretViolations(tp, p)...)

	trusted := map[string]bool{}
	for _, fn := range functionNames() {
		trusted[p.fnRoleARN(fn)] = true
	}
	services := map[string]bool{"lambda.amazonaws.com": true, "events.amazonaws.com": true}
	promotionNames := map[string]bool{}
	for _, arn := range p.promotionRoleARNs() {
		_, name, _ := splitRoleARN(arn)
		promotionNames[name] = true
	}
	for id, r := range tp.resources("AWS::IAM::Role") {
		pr := props(r)
		for _, raw := range statementsOf(pr["AssumeRolePolicyDocument"]) {
			if raw["Effect"] != "Allow" {
				continue
			}
			st := statement{principal: id, raw: raw}
			principal, _ := raw["Principal"].(map[string]any)
			if raw["Principal"] == "*" || principal == nil {
				bad(st, "trust policy open to every principal")
				continue
			}
			for _, a := range strs(principal["AWS"]) {
				if !trusted[a] {
					bad(st, "trusts %s, which is not a regflow function role", a)
				}
			}
			for _, svc := range strs(principal["Service"]) {
				if !services[svc] {
					bad(st, "trusts service %s", svc)
				}
			}
			name, _ := pr["RoleName"].(string)
			if promotionNames[name] {
				cond, _ := raw["Condition"].(map[string]any)
				eq, _ := cond["StringEquals"].(map[string]any)
				if eq["sts:ExternalId"] == nil {
					bad(st, "promotion role trust has no sts:ExternalId condition")
				}
			}
		}
	}
	return out
}

// dynamoWrites are the IAM actions that create, change or delete items (TransactWriteItems
// is authorized as these per item).
var dynamoWrites = map[string]bool{
	"dynamodb:PutItem": true, "dynamodb:UpdateItem": true, "dynamodb:DeleteItem": true, "dynamodb:BatchWriteItem": true,
	"dynamodb:PartiQLInsert": true, "dynamodb:PartiQLUpdate": true, "dynamodb:PartiQLDelete": true,
}

// conditionValues collects the values a statement's conditions give key, under any
// operator but Null (which only says the key is present).
func conditionValues(raw map[string]any, key string) []string {
	cond, _ := raw["Condition"].(map[string]any)
	var out []string
	for name, op := range cond {
		if name == "Null" {
			continue
		}
		m, _ := op.(map[string]any)
		out = append(out, strs(m[key])...)
	}
	return out
}

// secretOwners says, independently of the code under test, which function may read each
// Slack secret (by the Name the config gives it): the signing secret lets its holder sign
// clicks as any approver, so only approvals (which verifies them) reads it; the bot token
// posts, so only functions that post read it: tagguard (violation alerts), scangate
// (approval requests, gate failures), approvals (message updates, user groups), promoter
// (results), sweeper and sweepworker (the summary, whichever finishes the run).
func secretOwners(p *plan) map[string][]string {
	return map[string][]string{
		p.cfg.Pipeline.SlackSigningSecret: {fnApprovals},
		p.cfg.Pipeline.SlackSecret:        {fnTagguard, fnScangate, fnApprovals, fnPromoter, fnSweeper, fnSweepworker},
	}
}

// secretViolations reports secrets read by anyone but their owners, secrets nobody owns,
// and owned secrets the pipeline stack lacks.
func secretViolations(tp template, p *plan) []string {
	secrets := tp.resources("AWS::SecretsManager::Secret")
	owners := secretOwners(p)
	var out []string
	roleFn := map[string]string{}
	for id, r := range tp.resources("AWS::IAM::Role") {
		for _, fn := range functionNames() {
			if props(r)["RoleName"] == functionRoleName(fn) {
				roleFn[id] = fn
			}
		}
	}
	if len(roleFn) > 0 { // the pipeline stack
		for name := range owners {
			found := false
			for _, r := range secrets {
				found = found || props(r)["Name"] == name
			}
			if !found {
				out = append(out, fmt.Sprintf("secret %s: not in the stack; it must live apart from the other Slack credentials", name))
			}
		}
	}
	for id, r := range secrets {
		name, _ := props(r)["Name"].(string)
		allowed, ok := owners[name]
		if !ok {
			out = append(out, fmt.Sprintf("secret %s (%s): no declared owner", id, name))
			continue
		}
		for _, st := range allowStatements(tp) {
			if !contains(st.actions, "secretsmanager:GetSecretValue") {
				continue
			}
			for _, res := range st.resources {
				if strings.Contains(res, `"`+id+`"`) && !contains(allowed, roleFn[st.principal]) {
					out = append(out, fmt.Sprintf("%s: reads secret %s, which only %v may read", st.principal, name, allowed))
				}
			}
		}
	}
	return out
}

// TestPolicyViolations proves the walker catches each kind of over-grant, so the
// least-privilege checks on the real templates can fail.
func TestPolicyViolations(t *testing.T) {
	cfg, err := config.Load(repoConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	identity := func(stmt string) string {
		return `{"Resources":{
			"Table1":{"Type":"AWS::DynamoDB::Table"},
			"Role1":{"Type":"AWS::IAM::Role","Properties":{"AssumeRolePolicyDocument":{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"Service":"lambda.amazonaws.com"}}]}}},
			"Pol1":{"Type":"AWS::IAM::Policy","Properties":{"Roles":[{"Ref":"Role1"}],"PolicyDocument":{"Statement":[` + stmt + `]}}}}}`
	}
	cases := []struct {
		name, tmpl, want string
	}{
		{"clean", identity(`{"Effect":"Allow","Action":["ecr:PutImage","ecr:BatchGetImage"],"Resource":"arn:aws:ecr:us-east-1:222222222222:repository/*"},
			{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"},
			{"Effect":"Allow","Action":"dynamodb:Query","Resource":[{"Fn::GetAtt":["Table1","Arn"]},{"Fn::Join":["",[{"Fn::GetAtt":["Table1","Arn"]},"/index/*"]]}]},
			{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::333333333333:role/regflow-promotion"},
			{"Effect":"Allow","Action":"dynamodb:PutItem","Resource":{"Fn::GetAtt":["Table1","Arn"]},"Condition":{"ForAllValues:StringLike":{"dynamodb:LeadingKeys":["IMG#*"]}}},
			{"Effect":"Allow","Action":"events:PutEvents","Resource":"arn:aws:events:us-east-1:111111111111:event-bus/regflow","Condition":{"ForAllValues:StringEquals":{"events:source":["regflow"],"events:detail-type":["Image Promoted"]}}},
			{"Effect":"Deny","Action":"*","Resource":"*"}`), ""},
		{"dynamodb write without leading keys", identity(`{"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:UpdateItem"],"Resource":{"Fn::GetAtt":["Table1","Arn"]}}`), "dynamodb:UpdateItem without a dynamodb:LeadingKeys condition"},
		{"dynamodb write on any key", identity(`{"Effect":"Allow","Action":"dynamodb:BatchWriteItem","Resource":{"Fn::GetAtt":["Table1","Arn"]},"Condition":{"ForAllValues:StringLike":{"dynamodb:LeadingKeys":"*"}}}`), "dynamodb:BatchWriteItem without a dynamodb:LeadingKeys"},
		{"put events of any detail-type", identity(`{"Effect":"Allow","Action":"events:PutEvents","Resource":"arn:aws:events:us-east-1:111111111111:event-bus/regflow","Condition":{"ForAllValues:StringEquals":{"events:source":["regflow"]}}}`), "events:PutEvents without a events:detail-type condition"},
		{"put events of any source", identity(`{"Effect":"Allow","Action":"events:PutEvents","Resource":"arn:aws:events:us-east-1:111111111111:event-bus/regflow","Condition":{"ForAllValues:StringEquals":{"events:detail-type":["Image Promoted"]}}}`), "events:PutEvents without a events:source condition"},
		{"secret read by more than its owner", `{"Resources":{
			"Sig":{"Type":"AWS::SecretsManager::Secret","Properties":{"Name":"regflow/slack-signing"}},
			"A":{"Type":"AWS::IAM::Role","Properties":{"RoleName":"regflow-fn-approvals","AssumeRolePolicyDocument":{"Statement":[]}}},
			"T":{"Type":"AWS::IAM::Role","Properties":{"RoleName":"regflow-fn-tagguard","AssumeRolePolicyDocument":{"Statement":[]}}},
			"P":{"Type":"AWS::IAM::Policy","Properties":{"Roles":[{"Ref":"A"},{"Ref":"T"}],"PolicyDocument":{"Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":{"Ref":"Sig"}}]}}}}}`,
			"T: reads secret regflow/slack-signing, which only [approvals] may read"},
		{"secret without an owner", `{"Resources":{"S":{"Type":"AWS::SecretsManager::Secret","Properties":{"Name":"other"}}}}`, "no declared owner"},
		{"signing secret shared with the bot token", `{"Resources":{
			"S":{"Type":"AWS::SecretsManager::Secret","Properties":{"Name":"regflow/slack"}},
			"A":{"Type":"AWS::IAM::Role","Properties":{"RoleName":"regflow-fn-approvals","AssumeRolePolicyDocument":{"Statement":[]}}}}}`,
			"secret regflow/slack-signing: not in the stack"},
		{"star action on star", identity(`{"Effect":"Allow","Action":"*","Resource":"*"}`), `wildcard action "*"`},
		{"service wildcard on ECR", identity(`{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:222222222222:repository/*"}`), `wildcard action "ecr:*"`},
		{"prefix wildcard", identity(`{"Effect":"Allow","Action":"ecr:Put*","Resource":"arn:aws:ecr:us-east-1:222222222222:repository/*"}`), `wildcard action "ecr:Put*"`},
		{"ECR write on star", identity(`{"Effect":"Allow","Action":"ecr:BatchDeleteImage","Resource":"*"}`), `ecr:BatchDeleteImage on Resource "*"`},
		{"ECR outside config", identity(`{"Effect":"Allow","Action":"ecr:PutImage","Resource":"arn:aws:ecr:us-east-1:444444444444:repository/*"}`), "outside the configured repositories"},
		{"assume any role", identity(`{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::333333333333:role/admin"}`), "not a configured promotion, sweeper or reader role"},
		{"dynamodb elsewhere", identity(`{"Effect":"Allow","Action":"dynamodb:PutItem","Resource":"arn:aws:dynamodb:us-east-1:111111111111:table/other"}`), "not this stack's table"},
		{"secret elsewhere", identity(`{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:111111111111:secret:other"}`), "not the Slack secret"},
		{"open resource policy", `{"Resources":{"Q":{"Type":"AWS::SQS::QueuePolicy","Properties":{"PolicyDocument":{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-1:111111111111:q"}]}}}}}`, "open to every principal"},
		{"foreign trust", `{"Resources":{"R":{"Type":"AWS::IAM::Role","Properties":{"AssumeRolePolicyDocument":{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"AWS":"arn:aws:iam::999999999999:root"}}]}}}}}`, "not a regflow function role"},
		{"promotion role without external id", `{"Resources":{"R":{"Type":"AWS::IAM::Role","Properties":{"RoleName":"regflow-promotion","AssumeRolePolicyDocument":{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"AWS":"arn:aws:iam::111111111111:role/regflow-fn-promoter"}}]}}}}}`, "no sts:ExternalId"},
		{"inline role policy", `{"Resources":{"R":{"Type":"AWS::IAM::Role","Properties":{"AssumeRolePolicyDocument":{"Statement":[]},"Policies":[{"PolicyDocument":{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}}]}}}}`, `wildcard action "s3:*"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tp template
			if err := json.Unmarshal([]byte(c.tmpl), &tp); err != nil {
				t.Fatal(err)
			}
			got := policyViolations(tp, p)
			if c.want == "" {
				if len(got) > 0 {
					t.Errorf("clean template flagged: %v", got)
				}
				return
			}
			if !strings.Contains(strings.Join(got, "\n"), c.want) {
				t.Errorf("want a violation containing %q, got %v", c.want, got)
			}
		})
	}
}
