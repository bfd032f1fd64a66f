package scangate_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
)

// inspectorScan reads a published "Inspector2 Scan" sample and points it at repo@digest in
// the stack's dev registry, keeping everything else (counts, TOTAL, status) as published.
func inspectorScan(t *testing.T, file, repo, digest string, counts map[string]int) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RealTestdata(t), file))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	arn := "arn:aws:ecr:us-east-1:111111111111:repository/" + repo
	ev["account"], ev["region"], ev["resources"] = "111111111111", "us-east-1", []string{arn}
	d := ev["detail"].(map[string]any)
	d["repository-name"], d["image-digest"], d["image-tags"] = arn, digest, []string{sha}
	if counts != nil {
		d["finding-severity-counts"] = counts
	}
	out, _ := json.Marshal(ev)
	return out
}

// TestGateReadsFindingsTheEventDoesNotReport: "Inspector2 Scan" events count only CRITICAL,
// HIGH, MEDIUM and TOTAL. A gate that caps another severity, or an event whose TOTAL is more
// than the severities it lists, must read the findings before deciding.
func TestGateReadsFindingsTheEventDoesNotReport(t *testing.T) {
	const (
		zeros = "eventbridge-inspector2-scan-ecr-initial-scan-complete.inspector-userguide.json" // all 0, TOTAL 0
		many  = "eventbridge-inspector2-scan-ecr-initial-scan-complete.ecr-userguide.json"       // 7/61/62, TOTAL 158
	)
	tests := []struct {
		name     string
		sample   string
		counts   map[string]int // replaces the sample's counts when set
		gate     map[string]int
		findings []localecr.Finding
		status   string
		reads    bool
	}{
		{"capped LOW the event does not report", zeros, nil, map[string]int{"CRITICAL": 0, "LOW": 0},
			[]localecr.Finding{{Name: "CVE-2026-1", Severity: "LOW"}}, regflow.StatusBlocked, true},
		{"capped INFORMATIONAL", zeros, nil, map[string]int{"INFORMATIONAL": 1},
			[]localecr.Finding{{Name: "CVE-2026-1", Severity: "INFORMATIONAL"}, {Name: "CVE-2026-2", Severity: "INFORMATIONAL"}}, regflow.StatusBlocked, true},
		{"capped UNTRIAGED", zeros, nil, map[string]int{"UNTRIAGED": 0},
			[]localecr.Finding{{Name: "CVE-2026-9", Severity: "UNTRIAGED"}}, regflow.StatusBlocked, true},
		{"unreported severities within their caps", zeros, nil, map[string]int{"LOW": 1, "UNTRIAGED": 0},
			[]localecr.Finding{{Name: "CVE-2026-1", Severity: "LOW"}}, regflow.StatusPending, true},
		{"TOTAL beyond the reported sum", many, nil, map[string]int{"CRITICAL": 7, "HIGH": 61, "MEDIUM": 62},
			[]localecr.Finding{{Name: "CVE-2026-1", Severity: "CRITICAL"}}, regflow.StatusPending, true},
		{"TOTAL beyond the sum, findings show more CRITICAL", many, map[string]int{"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "TOTAL": 2}, map[string]int{"CRITICAL": 0},
			[]localecr.Finding{{Name: "CVE-2026-1", Severity: "CRITICAL"}, {Name: "CVE-2026-2", Severity: "LOW"}}, regflow.StatusBlocked, true},
		{"reported severities only, TOTAL adds up: counts decide", zeros, nil, map[string]int{"CRITICAL": 0, "HIGH": 0},
			nil, regflow.StatusPending, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(filepath.Join("..", "..", "regflow.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			staging := cfg.Environments["staging"]
			staging.Gate = tt.gate
			cfg.Environments["staging"] = staging
			if err := cfg.Validate(); err != nil {
				t.Fatalf("gate %v: %v", tt.gate, err)
			}
			st, err := localstack.Start(context.Background(), localstack.Options{Config: cfg, Dir: t.TempDir(),
				Clock: localecr.FixedClock(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(st.Close)
			ctx := context.Background()
			digest := push(t, st, "dev", "shop/web", sha)
			if err := st.ECR["dev"].InjectEnhancedScan("shop/web", digest, tt.findings...); err != nil {
				t.Fatal(err)
			}
			st.ECR["dev"].ResetRequests()
			res, err := st.Gate.Invoke(ctx, inspectorScan(t, tt.sample, "shop/web", digest, tt.counts))
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.status {
				t.Errorf("status %s (%s), want %s", res.Status, res.Reason, tt.status)
			}
			if read := st.ECR["dev"].RequestCounts()["DescribeImageScanFindings"] > 0; read != tt.reads {
				t.Errorf("findings read = %v, want %v", read, tt.reads)
			}
		})
	}
}
