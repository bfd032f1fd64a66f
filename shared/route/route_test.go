package route_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/route"
)

func loadConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "..", "regflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func push(account, action, result string) string {
	return `{"source":"aws.ecr","detail-type":"ECR Image Action","account":"` + account +
		`","detail":{"action-type":"` + action + `","result":"` + result + `","repository-name":"shop/web"}}`
}

func TestMatch(t *testing.T) {
	tagguard := &route.Pattern{
		Sources: []string{"aws.ecr"}, DetailTypes: []string{"ECR Image Action"}, Accounts: []string{"111111111111"},
		Detail: []route.Field{{Path: []string{"action-type"}, Values: []string{"PUSH"}}, {Path: []string{"result"}, Values: []string{"SUCCESS"}}},
	}
	nested := &route.Pattern{DetailTypes: []string{"X"}, Detail: []route.Field{{Path: []string{"a", "b"}, Values: []string{"1", "2"}}}}
	for _, tc := range []struct {
		name    string
		pattern *route.Pattern
		event   string
		want    bool
	}{
		{"push in the source account", tagguard, push("111111111111", "PUSH", "SUCCESS"), true},
		{"push in another account", tagguard, push("222222222222", "PUSH", "SUCCESS"), false},
		{"push without account", tagguard, `{"source":"aws.ecr","detail-type":"ECR Image Action","detail":{"action-type":"PUSH","result":"SUCCESS"}}`, false},
		{"delete", tagguard, push("111111111111", "DELETE", "SUCCESS"), false},
		{"failed push", tagguard, push("111111111111", "PUSH", "FAILURE"), false},
		{"case matters", tagguard, push("111111111111", "push", "SUCCESS"), false},
		{"detail absent", tagguard, `{"source":"aws.ecr","detail-type":"ECR Image Action","account":"111111111111"}`, false},
		{"detail not an object", tagguard, `{"source":"aws.ecr","detail-type":"ECR Image Action","account":"111111111111","detail":"PUSH"}`, false},
		{"source is an array holding a match", tagguard, `{"source":["x","aws.ecr"],"detail-type":"ECR Image Action","account":"111111111111","detail":{"action-type":"PUSH","result":"SUCCESS"}}`, true},
		{"number does not match a string", &route.Pattern{Accounts: []string{"1"}}, `{"account":1}`, false},
		{"null does not match", &route.Pattern{Sources: []string{"a"}}, `{"source":null}`, false},
		{"nested OR, first", nested, `{"detail-type":"X","detail":{"a":{"b":"1"}}}`, true},
		{"nested OR, second", nested, `{"detail-type":"X","detail":{"a":{"b":"2"}}}`, true},
		{"nested other value", nested, `{"detail-type":"X","detail":{"a":{"b":"3"}}}`, false},
		{"nested parent is a string", nested, `{"detail-type":"X","detail":{"a":"b"}}`, false},
		{"nested leaf is an object", nested, `{"detail-type":"X","detail":{"a":{"b":{"c":"1"}}}}`, false},
		{"unconstrained parts match anything", &route.Pattern{DetailTypes: []string{"X"}}, `{"detail-type":"X","source":"whatever"}`, true},
		{"not JSON", tagguard, `{"source":`, false},
		{"JSON array", tagguard, `[1]`, false},
		{"JSON null", tagguard, `null`, false},
		{"trailing data", &route.Pattern{DetailTypes: []string{"X"}}, `{"detail-type":"X"} {}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.pattern.Match([]byte(tc.event)); got != tc.want {
				t.Errorf("Match(%s) = %v, want %v", tc.event, got, tc.want)
			}
		})
	}
}

// TestTableRoutesPushesOfTheSourceEnvOnly is the rule whose absence let the local
// stack strip promoted tags in staging and prod.
func TestTableRoutesPushesOfTheSourceEnvOnly(t *testing.T) {
	cfg := loadConfig(t)
	routes := route.Table(cfg)
	if err := route.Validate(routes); err != nil {
		t.Fatal(err)
	}
	chosen := func(event string) []string {
		var out []string
		for _, r := range route.Functions(routes) {
			if r.Pattern.Match([]byte(event)) {
				out = append(out, r.Function)
			}
		}
		return out
	}
	for env, want := range map[string]int{"dev": 1, "staging": 0, "prod": 0} {
		got := chosen(push(cfg.Environments[env].Account, "PUSH", "SUCCESS"))
		if len(got) != want || (want == 1 && got[0] != route.Tagguard) {
			t.Errorf("push into %s routes to %v", env, got)
		}
	}
	approved := `{"source":"regflow","detail-type":"Promotion Approved","account":"` + cfg.Pipeline.Account + `","detail":{}}`
	if got := chosen(approved); len(got) != 1 || got[0] != route.Promoter {
		t.Errorf("approval routes to %v", got)
	}
	forged := `{"source":"regflow","detail-type":"Promotion Approved","account":"222222222222","detail":{}}`
	if got := chosen(forged); len(got) != 0 {
		t.Errorf("an approval from an environment account routes to %v", got)
	}
}

func TestPatternJSON(t *testing.T) {
	p := &route.Pattern{
		Sources: []string{"aws.ecr"}, Accounts: []string{"1", "2"},
		Detail: []route.Field{{Path: []string{"scan-status"}, Values: []string{"COMPLETE"}}, {Path: []string{"a", "b"}, Values: []string{"x"}}, {Path: []string{"a", "c"}, Values: []string{"y"}}},
	}
	b, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"account":["1","2"],"detail":{"a":{"b":["x"],"c":["y"]},"scan-status":["COMPLETE"]},"source":["aws.ecr"]}`
	var g any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if gb, _ := json.Marshal(g); string(gb) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

func TestValidate(t *testing.T) {
	ok := route.Route{ID: "A", Name: "a", On: route.Regflow, Function: "x", Pattern: &route.Pattern{Sources: []string{"s"}}}
	for _, tc := range []struct {
		name   string
		routes []route.Route
	}{
		{"duplicate id", []route.Route{ok, ok}},
		{"empty pattern", []route.Route{{ID: "A", Name: "a", On: route.Regflow, Function: "x", Pattern: &route.Pattern{}}}},
		{"function and forward", []route.Route{{ID: "A", Name: "a", On: route.Regflow, Function: "x", Forward: true, Pattern: ok.Pattern}}},
		{"neither pattern nor schedule", []route.Route{{ID: "A", Name: "a", On: route.Default, Function: "x"}}},
		{"schedule on the regflow bus", []route.Route{{ID: "A", Name: "a", On: route.Regflow, Function: "x", Schedule: "rate(1 day)"}}},
		{"leaf and parent", []route.Route{{ID: "A", Name: "a", On: route.Regflow, Function: "x", Pattern: &route.Pattern{
			Detail: []route.Field{{Path: []string{"a"}, Values: []string{"1"}}, {Path: []string{"a", "b"}, Values: []string{"2"}}}}}}},
		{"field without values", []route.Route{{ID: "A", Name: "a", On: route.Regflow, Function: "x", Pattern: &route.Pattern{
			Detail: []route.Field{{Path: []string{"a"}}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := route.Validate(tc.routes); err == nil {
				t.Error("accepted")
			}
		})
	}
	if err := route.Validate([]route.Route{ok}); err != nil {
		t.Error(err)
	}
}

// FuzzMatch: no input makes the matcher panic, and Match agrees with Decode+Matches.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{push("111111111111", "PUSH", "SUCCESS"), `{}`, `null`, `[`, `{"detail":{"a":[1,"2",{}]}}`, `{"source":["aws.ecr",null]}`} {
		f.Add([]byte(s))
	}
	p := &route.Pattern{
		Sources: []string{"aws.ecr"}, Accounts: []string{"111111111111"},
		Detail: []route.Field{{Path: []string{"action-type"}, Values: []string{"PUSH"}}, {Path: []string{"a", "b"}, Values: []string{"2"}}},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := p.Match(b)
		ev, err := route.Decode(b)
		if err != nil && got {
			t.Fatalf("matched undecodable input %q", b)
		}
		if err == nil && p.Matches(ev) != got {
			t.Fatalf("Match and Matches disagree on %q", b)
		}
	})
}

// Where approvals.requesters names who pushes, CloudTrail's record of the PutImage in the
// source account reaches the scan gate (from the default bus, where CloudTrail puts it);
// other ECR API calls and other accounts do not. Without requesters, no such rule.
func TestPutImageCallsReachTheScanGateWhereConfigured(t *testing.T) {
	cfg := loadConfig(t)
	find := func(cfg *config.Config) *route.Route {
		for _, r := range route.Table(cfg) {
			if r.ID == "ScanGatePutImageRule" {
				return &r
			}
		}
		return nil
	}
	if find(cfg) != nil {
		t.Fatal("a PutImage rule without approvals.requesters: nobody's identity is mapped")
	}
	cfg.Approvals.Requesters = []config.RequesterIdentity{{Principal: "arn:aws:sts::111111111111:assumed-role/ci/*", SlackUser: "U0ALICE"}}
	r := find(cfg)
	if r == nil || r.On != route.Default || r.Function != route.Scangate {
		t.Fatalf("rule = %+v, want the default bus to scangate", r)
	}
	call := func(account, name string) map[string]any {
		ev, _ := route.Decode([]byte(`{"source":"aws.ecr","detail-type":"AWS API Call via CloudTrail","account":"` + account +
			`","detail":{"eventSource":"ecr.amazonaws.com","eventName":"` + name + `"}}`))
		return ev
	}
	for _, tc := range []struct {
		account, name string
		want          bool
	}{{"111111111111", "PutImage", true}, {"111111111111", "BatchGetImage", false}, {"222222222222", "PutImage", false}} {
		if got := r.Pattern.Matches(call(tc.account, tc.name)); got != tc.want {
			t.Errorf("%s in %s: matched %v, want %v", tc.name, tc.account, got, tc.want)
		}
	}
	if err := route.Validate(route.Table(cfg)); err != nil {
		t.Fatal(err)
	}
}
