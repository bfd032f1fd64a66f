package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/google/go-cmp/cmp"
)

// TestLayouts synthesizes account layouts other than the example's and checks what
// changes with them; every layout must also pass cdk-nag and the policy walker.
func TestLayouts(t *testing.T) {
	cases := []struct {
		name   string
		yaml   string
		stacks []string
		check  func(t *testing.T, s *synthesized)
	}{
		{
			name: "single environment",
			yaml: `
pipeline: {account: "111111111111"}
promotionPath: [dev]
environments:
  dev: {account: "111111111111"}
`,
			stacks: []string{"regflow-pipeline"},
			check: func(t *testing.T, s *synthesized) {
				pt := s.templates["regflow-pipeline"]
				for _, r := range pt.resources("AWS::Events::Rule") {
					if props(r)["Name"] == "regflow-scangate-putimage" {
						t.Error("a PutImage rule without approvals.requesters")
					}
				}
				if n := busAllowCount(pt); n != 0 {
					t.Errorf("no other account sends events, yet found %d bus policies allowing it", n)
				}
				if _, ok := busDenies(pt)["OnlyRegflowPublishersSendSourceRegflow"]; !ok {
					t.Error("even with one account, the bus must refuse source regflow to all but regflow's publishers")
				}
				for _, st := range allowStatements(pt) {
					for _, a := range st.actions {
						if strings.HasPrefix(a, "sts:") {
							t.Errorf("%s may %s with no other account configured", st.principal, a)
						}
					}
				}
				pt.byProp(t, "AWS::Events::Rule", "Name", "regflow-forward-registry-events")
			},
		},
		{
			name: "requesters mapped: CloudTrail's PutImage reaches the scan gate",
			yaml: `
pipeline: {account: "111111111111"}
promotionPath: [dev]
environments:
  dev: {account: "111111111111"}
approvals:
  requesters: [{principal: "arn:aws:sts::111111111111:assumed-role/ci/*", slackUser: U0ALICE}]
`,
			stacks: []string{"regflow-pipeline"},
			check: func(t *testing.T, s *synthesized) {
				pt := s.templates["regflow-pipeline"]
				_, rule := pt.byProp(t, "AWS::Events::Rule", "Name", "regflow-scangate-putimage")
				p := props(rule)
				if p["EventBusName"] != nil {
					t.Errorf("the PutImage rule must be on the default bus, where CloudTrail puts its records: %v", p["EventBusName"])
				}
				pattern, _ := json.Marshal(p["EventPattern"])
				for _, want := range []string{`"AWS API Call via CloudTrail"`, `"PutImage"`, `"ecr.amazonaws.com"`, `"111111111111"`} {
					if !strings.Contains(string(pattern), want) {
						t.Errorf("pattern %s lacks %s", pattern, want)
					}
				}
				id, _ := pt.byProp(t, "AWS::Lambda::Function", "FunctionName", functionName(fnScangate))
				targets, _ := json.Marshal(p["Targets"])
				if !strings.Contains(string(targets), id) {
					t.Errorf("the PutImage rule targets %s, want scangate (%s)", targets, id)
				}
			},
		},
		{
			name: "dedicated tooling account, role path, KMS alias, several repository globs",
			yaml: `
pipeline: {account: "444444444444"}
promotionPath: [dev, prod]
environments:
  dev: {account: "111111111111"}
  prod:
    account: "333333333333"
    promotionRole: arn:aws:iam::333333333333:role/ci/regflow-promotion
    externalId: ext-prod
    kmsKey: alias/ecr-prod
repositories: ["team-*", "release/*"]
`,
			stacks: []string{"regflow-pipeline", "regflow-dev", "regflow-prod"},
			check: func(t *testing.T, s *synthesized) {
				pt := s.templates["regflow-pipeline"]
				// No registry in the pipeline account: nothing to forward, nothing to grant.
				for _, r := range pt.resources("AWS::Events::Rule") {
					if props(r)["Name"] == "regflow-forward-registry-events" {
						t.Error("the pipeline account hosts no registry, yet has a forwarding rule")
					}
				}
				for _, st := range allowStatements(pt) {
					for _, a := range st.actions {
						if strings.HasPrefix(a, "ecr:") && a != "ecr:GetAuthorizationToken" {
							t.Errorf("%s granted %s although no registry is in the pipeline account", st.principal, a)
						}
					}
				}
				ann := assertions.Annotations_FromStack(s.stacks.Pipeline)
				if w := ann.FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("source environment \"dev\" is in account 111111111111.*"))); w == nil || len(*w) != 1 {
					t.Errorf("want one warning that tagguard cannot act in the separate source account, got %v", w)
				}
				_, pol := pt.byProp(t, "AWS::Events::EventBusPolicy", "StatementId", "cdk-EnvironmentAccountsForwardRegistryEvents")
				principals := fmt.Sprint(props(pol)["Statement"].(map[string]any)["Principal"])
				for _, a := range []string{"111111111111", "333333333333"} {
					if !strings.Contains(principals, a) {
						t.Errorf("bus policy should admit %s: %s", a, principals)
					}
				}

				dt := s.templates["regflow-dev"]
				if _, ok := findProp(dt, "AWS::IAM::Role", "RoleName", "regflow-promotion"); ok {
					t.Error("the source environment has no promotion role configured, yet one was created")
				}
				sweeper, _ := dt.byProp(t, "AWS::IAM::Role", "RoleName", SweeperRoleName)
				want := strs(toAny(sweeperActions()))
				for _, repo := range []string{"arn:aws:ecr:us-east-1:111111111111:repository/team-*", "arn:aws:ecr:us-east-1:111111111111:repository/release/*"} {
					if d := cmp.Diff(want, grantsOf(dt, sweeper)[repo]); d != "" {
						t.Errorf("dev sweeper on %s (-want +got):\n%s", repo, d)
					}
				}

				prod := s.templates["regflow-prod"]
				role, r := prod.byProp(t, "AWS::IAM::Role", "RoleName", "regflow-promotion")
				if props(r)["Path"] != "/ci/" {
					t.Errorf("promotion role path %v, want /ci/ from the configured ARN", props(r)["Path"])
				}
				kms := statementsWith(prod, role, "kms:CreateGrant")
				wantKMS := map[string]any{
					"Action":   []any{"kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"},
					"Effect":   "Allow",
					"Resource": "arn:aws:kms:us-east-1:333333333333:key/*",
					"Sid":      "EncryptNewRepositoriesProd",
					"Condition": map[string]any{
						"StringEquals":             map[string]any{"kms:ViaService": "ecr.us-east-1.amazonaws.com"},
						"ForAnyValue:StringEquals": map[string]any{"kms:ResourceAliases": "alias/ecr-prod"},
					},
				}
				if len(kms) != 1 || cmp.Diff(wantKMS, kms[0]) != "" {
					t.Errorf("KMS grant for the aliased key (-want +got):\n%s", cmp.Diff([]map[string]any{wantKMS}, kms))
				}
			},
		},
		{
			name: "environment in the pipeline account, other region, key by id",
			yaml: `
pipeline: {account: "111111111111"}
promotionPath: [dev, dr]
environments:
  dev: {account: "111111111111"}
  dr:
    account: "111111111111"
    region: eu-west-1
    promotionRole: arn:aws:iam::111111111111:role/regflow-promotion-dr
    externalId: ext-dr
    kmsKey: 1234abcd-12ab-34cd-56ef-1234567890ab
`,
			stacks: []string{"regflow-pipeline", "regflow-dr"},
			check: func(t *testing.T, s *synthesized) {
				if got := *s.stacks.Targets["dr"].Region(); got != "eu-west-1" {
					t.Errorf("dr stack region %s", got)
				}
				pt := s.templates["regflow-pipeline"]
				if n := busAllowCount(pt); n != 0 {
					t.Errorf("same-account forwarding needs no bus policy allowing it, found %d", n)
				}
				worker, _ := pt.byProp(t, "AWS::IAM::Role", "RoleName", functionRoleName(fnSweepworker))
				g := grantsOf(pt, worker)
				for _, repo := range []string{"arn:aws:ecr:us-east-1:111111111111:repository/*", "arn:aws:ecr:eu-west-1:111111111111:repository/*"} {
					if !contains(g[repo], "ecr:BatchDeleteImage") {
						t.Errorf("sweep worker should reach %s with its own role: %v", repo, g[repo])
					}
				}
				dr := s.templates["regflow-dr"]
				if _, ok := findProp(dr, "AWS::IAM::Role", "RoleName", SweeperRoleName); ok {
					t.Error("no sweeper role is needed in the pipeline account")
				}
				role, _ := dr.byProp(t, "AWS::IAM::Role", "RoleName", "regflow-promotion-dr")
				if k := grantsOf(dr, role)["arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"]; !contains(k, "kms:CreateGrant") {
					t.Errorf("KMS key id should become its ARN in the environment's region, got %v", grantsOf(dr, role))
				}
				_, fwd := dr.byProp(t, "AWS::Events::Rule", "Name", "regflow-forward-registry-events")
				tg := props(fwd)["Targets"].([]any)[0].(map[string]any)
				if tg["Arn"] != "arn:aws:events:us-east-1:111111111111:event-bus/regflow" {
					t.Errorf("dr forwards to %v, want the pipeline bus in us-east-1", tg["Arn"])
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := synth(t, writeConfig(t, c.yaml))
			if d := cmp.Diff(c.stacks, stackNames(s)); d != "" {
				t.Fatalf("stacks (-want +got):\n%s", d)
			}
			c.check(t, s)
			for _, st := range s.stacks.All() {
				checkNag(t, st)
			}
			for name, tp := range s.templates {
				for _, v := range policyViolations(tp, s.plan) {
					t.Errorf("%s: %s", name, v)
				}
			}
		})
	}
}

// TestBuildRefuses checks that synth stops with an operator-readable error.
func TestBuildRefuses(t *testing.T) {
	requireNode(t)
	valid := `
pipeline: {account: "111111111111"}
promotionPath: [dev]
environments:
  dev: {account: "111111111111"}
`
	cases := []struct {
		name, yaml string
		skip       []string
		want       []string
	}{
		{"missing bootstrap", valid, []string{fnPromoter}, []string{"make build", "promoter/bootstrap"}},
		{"invalid config", `
pipeline: {account: "111111111111"}
promotionPath: [dev, prod]
environments:
  dev: {account: "111111111111"}
  prod: {account: "333333333333", promotionRole: "arn:aws:iam::333333333333:role/p"}
`, nil, []string{"environments.prod.externalId"}},
		{"config too large for the environment", valid + `
alerts: {slackChannel: C0ALERTS}
tagPolicy:
  overrides:
` + strings.Repeat("    - {repositories: \"team-with-a-long-name-*\", rule: regex, pattern: \"^v[0-9]+\\\\.[0-9]+\\\\.[0-9]+-[a-z0-9]+$\"}\n", 30),
			nil, []string{"REGFLOW_CONFIG_INLINE", "3072 bytes"}},
		{"glob IAM cannot express", valid + "repositories: [\"team-[ab]*\"]\n", nil, []string{"repositories[0]", "IAM resource ARNs"}},
		{"schedule", valid + "retention: {schedule: daily}\n", nil, []string{"retention.schedule", "cron("}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app := newTestApp(t, writeConfig(t, c.yaml), fakeAssets(t, c.skip...))
			_, err := Build(app)
			if err == nil {
				t.Fatal("Build succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q should mention %q", err, w)
				}
			}
		})
	}
}

func stackNames(s *synthesized) []string {
	var out []string
	for _, st := range s.stacks.All() {
		out = append(out, *st.StackName())
	}
	return out
}

func findProp(tp template, typ, key string, value any) (string, bool) {
	for id, r := range tp.resources(typ) {
		if fmt.Sprint(props(r)[key]) == fmt.Sprint(value) {
			return id, true
		}
	}
	return "", false
}
