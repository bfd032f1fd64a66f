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

func TestUnreported(t *testing.T) {
	inspector := []string{"CRITICAL", "HIGH", "MEDIUM"}
	tests := []struct {
		name     string
		enhanced bool
		reported []string
		counts   map[string]int
		total    int
		gate     map[string]int
		want     int
	}{
		{"basic event lists every severity it found", false, []string{"HIGH"}, map[string]int{"HIGH": 1}, -1, map[string]int{"LOW": 0}, 0},
		{"inspector, reported caps only", true, inspector, map[string]int{"HIGH": 1}, 1, map[string]int{"CRITICAL": 0, "HIGH": 2}, 0},
		{"inspector, LOW capped", true, inspector, nil, 0, map[string]int{"LOW": 0}, 1},
		{"inspector, UNTRIAGED and INFORMATIONAL capped", true, inspector, nil, 0, map[string]int{"UNTRIAGED": 0, "INFORMATIONAL": 3}, 2},
		{"TOTAL beyond the sum", true, inspector, map[string]int{"CRITICAL": 7, "HIGH": 61, "MEDIUM": 62}, 158, map[string]int{"CRITICAL": 10}, 1},
		{"TOTAL equal to the sum", true, inspector, map[string]int{"CRITICAL": 7}, 7, map[string]int{"CRITICAL": 10}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unreported(tt.enhanced, tt.reported, tt.counts, tt.total, tt.gate); len(got) != tt.want {
				t.Fatalf("Unreported = %q, want %d reasons", got, tt.want)
			}
		})
	}
}

func TestEvaluateWithReadFindings(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	allow := []config.AllowedFinding{{ID: "CVE-1", Reason: "r", Expires: "2027-01-01"}}
	tests := []struct {
		name     string
		counts   map[string]int
		findings []regflow.Finding
		gate     map[string]int
		pass     bool
	}{
		{"read, none listed, nothing counted", map[string]int{}, []regflow.Finding{}, map[string]int{"LOW": 0}, true},
		{"LOW listed though the event did not count it", map[string]int{}, []regflow.Finding{{ID: "CVE-2", Severity: "LOW"}}, map[string]int{"LOW": 0}, false},
		{"counted beyond the listed findings still counts", map[string]int{"CRITICAL": 2}, []regflow.Finding{{ID: "CVE-1", Severity: "CRITICAL"}}, map[string]int{"CRITICAL": 0}, false},
		{"allow-listed, counts match", map[string]int{"CRITICAL": 1}, []regflow.Finding{{ID: "CVE-1", Severity: "CRITICAL"}}, map[string]int{"CRITICAL": 0}, true},
		{"UNTRIAGED capped", map[string]int{}, []regflow.Finding{{ID: "CVE-3", Severity: "untriaged"}}, map[string]int{"UNTRIAGED": 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v := Evaluate("prod", tt.counts, tt.findings, tt.gate, allow, "app", now); v.Pass != tt.pass {
				t.Fatalf("verdict = %+v", v)
			}
		})
	}
}
