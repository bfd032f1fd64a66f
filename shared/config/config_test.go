package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "regflow.yaml"))
	if err != nil {
		t.Fatalf("the committed example config must load: %v", err)
	}
	if got := cfg.Environments["dev"].Registry; got != "111111111111.dkr.ecr.us-east-1.amazonaws.com" {
		t.Errorf("derived dev registry = %q", got)
	}
	if next, _ := cfg.Next("staging"); next != "prod" {
		t.Errorf("Next(staging) = %q, want prod", next)
	}
	if _, ok := cfg.Next("prod"); ok {
		t.Error("prod is last; Next must report none")
	}
	if prev, _ := cfg.Previous("staging"); prev != "dev" {
		t.Errorf("Previous(staging) = %q", prev)
	}
	if cfg.Retention.MaxAge.D() != 90*24*time.Hour {
		t.Errorf("retention.maxAge = %v", cfg.Retention.MaxAge)
	}
	if cfg.Environments["prod"].Approvers.Required != 2 {
		t.Error("prod needs two approvers")
	}
	if env, _ := cfg.EnvFor("222222222222", "us-east-1"); env != "staging" {
		t.Errorf("EnvFor = %q", env)
	}
}

const minimal = `
promotionPath: [dev, prod]
environments:
  dev: {account: "111111111111"}
  prod:
    account: "333333333333"
    promotionRole: arn:aws:iam::333333333333:role/promote
    externalId: xid
`

func TestMinimalConfigDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pipeline.Account != "111111111111" {
		t.Errorf("pipeline.account should default to the source environment's, got %q", cfg.Pipeline.Account)
	}
	if cfg.TagPolicy.Rule != RuleSHA || cfg.TagPolicy.Mode != ModeEnforce {
		t.Errorf("default tag policy = %+v", cfg.TagPolicy.TagRule)
	}
	if cfg.Approvals.Expiry.D() != 72*time.Hour {
		t.Errorf("approvals.expiry default = %v", cfg.Approvals.Expiry)
	}
}

func TestInvalidConfigNamesTheField(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(string) string
		field   string
		message string
	}{
		{"bad account", func(s string) string { return strings.Replace(s, `"333333333333"`, `"3333"`, 1) }, "environments.prod.account", "12-digit"},
		{"unknown env on path", func(s string) string { return strings.Replace(s, "[dev, prod]", "[dev, qa, prod]", 1) }, "promotionPath[1]", `"qa" is not defined`},
		{"loop", func(s string) string { return strings.Replace(s, "[dev, prod]", "[dev, prod, dev]", 1) }, "promotionPath[2]", "twice"},
		{"role in another account", func(s string) string { return strings.Replace(s, "iam::333333333333", "iam::444444444444", 1) }, "environments.prod.promotionRole", "account 444444444444"},
		{"missing external id", func(s string) string { return strings.Replace(s, "externalId: xid", "", 1) }, "environments.prod.externalId", "required"},
		{"bad severity", func(s string) string { return s + "    gate: {SEVERE: 0}\n" }, "environments.prod.gate.SEVERE", "unknown severity"},
		{"bad rule", func(s string) string { return s + "tagPolicy: {rule: calver}\n" }, "tagPolicy.rule", `"calver"`},
		{"bad regex", func(s string) string { return s + "tagPolicy: {rule: regex, pattern: \"([\"}\n" }, "tagPolicy.pattern", "does not compile"},
		{"bad mode", func(s string) string { return s + "tagPolicy: {mode: warn}\n" }, "tagPolicy.mode", "enforce, report"},
		{"too many approvers", func(s string) string { return s + "    approvers: {users: [U1], required: 2}\n" }, "environments.prod.approvers.required", "only 1 users"},
		{"bad region", func(s string) string { return "region: mars\n" + s }, "region", "not an AWS region"},
		{"allowlist without expiry", func(s string) string { return s + "allowlist: [{id: CVE-2024-1, reason: vendor fix pending}]\n" }, "allowlist[0].expires", "must be a date"},
		{"allowlist without reason", func(s string) string { return s + "allowlist: [{id: CVE-2024-1, expires: 2027-01-31}]\n" }, "allowlist[0].reason", "is required"},
		{"in-use window beyond a year", func(s string) string { return s + "retention: {inUseWithin: 400d}\n" }, "retention.inUseWithin", "365d"},
		{"bad override glob", func(s string) string { return s + "tagPolicy: {overrides: [{repositories: \"[\"}]}\n" }, "tagPolicy.overrides[0].repositories", "glob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.mutate(minimal)))
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error should wrap ErrInvalid: %v", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("want a FieldError, got %v", err)
			}
			if !strings.Contains(err.Error(), tt.field+": ") || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q should name %q and say %q", err, tt.field, tt.message)
			}
		})
	}
}

func TestUnknownFieldRejected(t *testing.T) {
	_, err := Parse([]byte(minimal + "tagPolicies: {rule: sha}\n"))
	if err == nil || !strings.Contains(err.Error(), "tagPolicies") {
		t.Fatalf("a misspelt key must be refused by name, got %v", err)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"72h", 72 * time.Hour, true},
		{"-1h", 0, false},
		{"ninety days", 0, false},
		{"d", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got.D() != tt.want) {
			t.Errorf("ParseDuration(%q) = %v, %v", tt.in, got, err)
		}
	}
	if s := Duration(90 * 24 * time.Hour).String(); s != "90d" {
		t.Errorf("String = %q", s)
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(EnvInline, "")
	t.Setenv(EnvPath, "")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), EnvPath) {
		t.Fatalf("missing config must say which variable to set, got %v", err)
	}
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPath, p)
	if _, err := FromEnv(); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvInline, "promotionPath: []")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), EnvInline) {
		t.Fatalf("inline config errors should say where the config came from, got %v", err)
	}
}

func TestEnvForTellsSharedAccountsApartByRegion(t *testing.T) {
	cfg, err := Parse([]byte(`
promotionPath: [dev, prod]
environments:
  dev: {account: "111111111111", region: us-east-1}
  prod:
    account: "111111111111"
    region: eu-west-1
    promotionRole: arn:aws:iam::111111111111:role/promote
    externalId: xid
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ account, region, want string }{
		{"111111111111", "us-east-1", "dev"},
		{"111111111111", "eu-west-1", "prod"},
	} {
		if got, ok := cfg.EnvFor(tt.account, tt.region); !ok || got != tt.want {
			t.Errorf("EnvFor(%s, %s) = %s, want %s", tt.account, tt.region, got, tt.want)
		}
	}
	if env, ok := cfg.EnvFor("999999999999", "us-east-1"); ok {
		t.Errorf("an unknown account has no environment, got %s", env)
	}
	// A registry is an account and a region: another region of a known account is no
	// environment's (it was dev's, whose registry it is not).
	if env, ok := cfg.EnvFor("111111111111", "ap-south-1"); ok {
		t.Errorf("an unknown region of a known account has no environment, got %s", env)
	}
}

// TestGateAcceptsUntriaged: Inspector rates a finding UNTRIAGED until it is triaged; a gate may cap it.
func TestGateAcceptsUntriaged(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "regflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Replace(string(b), "gate: {CRITICAL: 0, HIGH: 0}", "gate: {CRITICAL: 0, HIGH: 0, UNTRIAGED: 0}", 1)
	cfg, err := Parse([]byte(in))
	if err != nil {
		t.Fatalf("UNTRIAGED in a gate: %v", err)
	}
	if n, ok := cfg.Environments["prod"].Gate["UNTRIAGED"]; !ok || n != 0 {
		t.Fatalf("prod gate = %v", cfg.Environments["prod"].Gate)
	}
	if _, err := Parse([]byte(strings.Replace(in, "UNTRIAGED: 0", "UNTRIAGE: 0", 1))); err == nil || !strings.Contains(err.Error(), "UNTRIAGED") {
		t.Fatalf("a misspelt severity must be refused, naming the valid ones: %v", err)
	}
}

func TestRequesters(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("..", "..", "regflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	with := func(entries string) string {
		return strings.Replace(string(base), "  requesters: []\n", "  requesters:\n"+entries, 1)
	}
	cfg, err := Parse([]byte(with("    - {principal: \"arn:aws:sts::111111111111:assumed-role/deploy-*/*\", slackUser: U0ALICE}\n    - {principal: \"arn:aws:iam::111111111111:user/bob\", slackUser: U0BOB}\n")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ principal, want string }{
		{"arn:aws:sts::111111111111:assumed-role/deploy-web/alice@example.com", "U0ALICE"},
		{"arn:aws:iam::111111111111:user/bob", "U0BOB"},
		{"arn:aws:iam::111111111111:user/bobby", ""},
		{"arn:aws:sts::222222222222:assumed-role/deploy-web/x", ""},
		{"", ""},
	} {
		if got := cfg.RequesterFor(tt.principal); got != tt.want {
			t.Errorf("RequesterFor(%q) = %q, want %q", tt.principal, got, tt.want)
		}
	}
	for _, bad := range []struct{ entry, field string }{
		{"    - {principal: \"\", slackUser: U0ALICE}\n", "approvals.requesters[0].principal"},
		{"    - {principal: \"arn:aws:iam::111111111111:user/bob\", slackUser: alice}\n", "approvals.requesters[0].slackUser"},
	} {
		if _, err := Parse([]byte(with(bad.entry))); err == nil || !strings.Contains(err.Error(), bad.field) {
			t.Errorf("%s: got %v, want an error naming %s", bad.entry, err, bad.field)
		}
	}
}
