package scangate

import (
	"strings"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/regflow"
)

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	prodGate := map[string]int{"CRITICAL": 0, "HIGH": 0}
	allow := []config.AllowedFinding{
		{ID: "CVE-1", Reason: "r", Expires: "2027-01-01"},
		{ID: "CVE-OLD", Reason: "r", Expires: "2026-01-01"},
		{ID: "CVE-WEB", Reason: "r", Expires: "2027-01-01", Repositories: "web/*"},
	}
	high := func(id string) regflow.Finding { return regflow.Finding{ID: id, Severity: "HIGH"} }
	tests := []struct {
		name      string
		counts    map[string]int
		findings  []regflow.Finding
		repo      string
		pass      bool
		reason    string
		blocking  int
		allowedIn string
	}{
		{"clean", map[string]int{"MEDIUM": 9}, nil, "app", true, "within prod's gate (CRITICAL ≤ 0, HIGH ≤ 0)", 0, ""},
		{"no findings at all", map[string]int{}, nil, "app", true, "within", 0, ""},
		{"high blocks", map[string]int{"HIGH": 2}, []regflow.Finding{high("CVE-9"), high("CVE-8")}, "app", false, "blocked for prod: HIGH 2 > 0", 2, ""},
		{"allow-listed high passes", map[string]int{"HIGH": 1}, []regflow.Finding{high("CVE-1")}, "app", true, "after the allow-list (CVE-1)", 0, "CVE-1"},
		{"expired allowance blocks", map[string]int{"HIGH": 1}, []regflow.Finding{high("CVE-OLD")}, "app", false, "HIGH 1 > 0", 1, ""},
		{"allowance for other repos blocks", map[string]int{"HIGH": 1}, []regflow.Finding{high("CVE-WEB")}, "app", false, "HIGH 1 > 0", 1, ""},
		{"allowance for this repo passes", map[string]int{"HIGH": 1}, []regflow.Finding{high("CVE-WEB")}, "web/shop", true, "allow-list", 0, "CVE-WEB"},
		{"partly allowed still blocks, naming the rest", map[string]int{"HIGH": 2}, []regflow.Finding{high("CVE-1"), high("CVE-9")}, "app", false, "HIGH 1 > 0", 1, "CVE-1"},
		{"findings unavailable: counts decide", map[string]int{"CRITICAL": 1}, nil, "app", false, "CRITICAL 1 > 0", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Evaluate("prod", tt.counts, tt.findings, prodGate, allow, tt.repo, now)
			if v.Pass != tt.pass || !strings.Contains(v.Reason, tt.reason) || len(v.Blocking) != tt.blocking {
				t.Fatalf("verdict = %+v", v)
			}
			if tt.allowedIn != "" && (len(v.Allowed) == 0 || v.Allowed[0] != tt.allowedIn) {
				t.Fatalf("allowed = %v", v.Allowed)
			}
		})
	}
	if NeedsFindings(map[string]int{"LOW": 5}, prodGate) || !NeedsFindings(map[string]int{"HIGH": 1}, prodGate) {
		t.Fatal("NeedsFindings")
	}
}
