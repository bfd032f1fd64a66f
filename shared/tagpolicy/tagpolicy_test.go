package tagpolicy

import (
	"strings"
	"testing"

	"github.com/regflow/regflow/shared/config"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func mustPolicy(t *testing.T, p config.TagPolicy) *Policy {
	t.Helper()
	pol, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func TestCheck(t *testing.T) {
	pol := mustPolicy(t, config.TagPolicy{
		TagRule:     config.TagRule{Rule: config.RuleSHA, Mode: config.ModeEnforce},
		MutableTags: []string{"cache-*"},
		Overrides: []config.TagOverride{
			{Repositories: "release/*", TagRule: config.TagRule{Rule: config.RuleSemver, Mode: config.ModeReport}},
			{Repositories: "charts/*", TagRule: config.TagRule{Rule: config.RuleRegex, Pattern: `^chart-\d+$`, Mode: config.ModeEnforce}},
		},
	})
	tests := []struct {
		repo, tag string
		allowed   bool
		enforce   bool
		commit    string
		reason    string
	}{
		{"app", sha, true, true, sha, "full git commit SHA"},
		{"app", "latest", false, true, "", `"latest" is a moving tag`},
		{"team/app", "LATEST", false, true, "", "moving tag"},
		{"app", "0123456", false, true, "", "abbreviated commit SHA (7 characters)"},
		{"app", strings.ToUpper(sha), false, true, "", "uppercase hex"},
		{"app", sha + sha[:24], false, true, "", "64 hex characters"},
		{"app", "v1.2.3", false, true, "", "not a git commit SHA"},
		{"app", "cache-main", true, true, "", "exempt"},
		{"app", "sha256-" + sha + sha[:24] + ".sig", true, true, "", "cosign tag schema"},
		{"release/api", "sha256-" + sha + sha[:24], true, false, "", "cosign tag schema"},
		{"app", "sha256-" + sha + ".sig", false, true, "", "not a git commit SHA"},
		{"release/api", "v1.2.3", true, false, "", "semantic version"},
		{"release/api", "1.2.3-rc.1+build.5", true, false, "", "semantic version"},
		{"release/api", "latest", false, false, "", "moving tag"},
		{"release/api", "1.2", false, false, "", "not a semantic version"},
		{"release/nested/api", "v1.0.0", true, false, "", "semantic version"}, // shared/glob: * crosses /, as IAM does
		{"releases/api", "v1.0.0", false, true, "", "not a git commit SHA"},
		{"charts/web", "chart-12", true, true, "", "matches"},
		{"charts/web", "latest", false, true, "", "moving tag"},
		{"charts/web", "chart-x", false, true, "", "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.repo+":"+tt.tag, func(t *testing.T) {
			d := pol.Check(tt.repo, tt.tag)
			if d.Allowed != tt.allowed || d.Enforce != tt.enforce || d.Commit != tt.commit {
				t.Errorf("Check = %+v, want allowed=%v enforce=%v commit=%q", d, tt.allowed, tt.enforce, tt.commit)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q should contain %q", d.Reason, tt.reason)
			}
			if d.Rule == "" {
				t.Error("a decision must name its rule")
			}
		})
	}
}

func TestMutableTags(t *testing.T) {
	pol := mustPolicy(t, config.TagPolicy{TagRule: config.TagRule{Rule: config.RuleSHA}})
	if len(pol.MutableTags()) != 0 {
		t.Error("no exclusions configured means plain IMMUTABLE")
	}
	pol = mustPolicy(t, config.TagPolicy{TagRule: config.TagRule{Rule: config.RuleSHA}, MutableTags: []string{"a.b*"}})
	if d := pol.Check("x", "axb"); d.Allowed {
		t.Error("a dot in a filter is literal")
	}
	if d := pol.Check("x", "a.bc"); !d.Allowed {
		t.Error("a.bc matches a.b*")
	}
}

func FuzzCheck(f *testing.F) {
	pol, err := New(config.TagPolicy{TagRule: config.TagRule{Rule: config.RuleSHA}, MutableTags: []string{"c*"}})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{sha, "latest", "", "v1.2.3", "\xff"} {
		f.Add("app", s)
	}
	f.Fuzz(func(t *testing.T, repo, tag string) {
		d := pol.Check(repo, tag)
		if d.Allowed && d.Commit != "" && !shaRE.MatchString(d.Commit) {
			t.Fatalf("commit %q is not a SHA", d.Commit)
		}
		if d.Reason == "" {
			t.Fatal("every decision carries a reason")
		}
	})
}
