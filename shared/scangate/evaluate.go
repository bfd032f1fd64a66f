package scangate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/glob"
	"github.com/regflow/regflow/shared/regflow"
)

// Verdict is a gate's decision on one scan, with its reason.
type Verdict struct {
	Pass   bool
	Reason string
	// Blocking are the findings over the gate's caps (when findings were read).
	Blocking []regflow.Finding
	// Allowed are the allow-listed finding ids that were discounted.
	Allowed []string
}

// exceeds lists "HIGH 3 > 0" for each severity over its cap.
func exceeds(counts, gate map[string]int) []string {
	var over []string
	for _, sev := range config.Severities() {
		if limit, capped := gate[sev]; capped && counts[sev] > limit {
			over = append(over, fmt.Sprintf("%s %d > %d", sev, counts[sev], limit))
		}
	}
	return over
}

// NeedsFindings reports whether the counts alone fail the gate, so the allow-list must be consulted.
func NeedsFindings(counts, gate map[string]int) bool { return len(exceeds(counts, gate)) > 0 }

// Evaluate applies env's gate to a scan. findings may be nil when NeedsFindings is false.
func Evaluate(env string, counts map[string]int, findings []regflow.Finding, gate map[string]int, allow []config.AllowedFinding, repo string, now time.Time) Verdict {
	if len(exceeds(counts, gate)) == 0 {
		return Verdict{Pass: true, Reason: fmt.Sprintf("within %s's gate (%s)", env, describe(gate))}
	}
	effective := map[string]int{}
	var allowed []string
	var candidates []regflow.Finding
	for _, f := range findings {
		sev := strings.ToUpper(f.Severity)
		if isAllowed(f.ID, repo, allow, now) {
			if !slices.Contains(allowed, f.ID) {
				allowed = append(allowed, f.ID)
			}
			continue
		}
		effective[sev]++
		if _, capped := gate[sev]; capped {
			candidates = append(candidates, f)
		}
	}
	if findings == nil {
		effective = counts
	}
	over := exceeds(effective, gate)
	if len(over) == 0 {
		return Verdict{Pass: true, Allowed: allowed, Reason: fmt.Sprintf("within %s's gate (%s) after the allow-list (%s)", env, describe(gate), strings.Join(allowed, ", "))}
	}
	var blocking []regflow.Finding
	for _, f := range candidates {
		sev := strings.ToUpper(f.Severity)
		if effective[sev] > gate[sev] {
			blocking = append(blocking, f)
		}
	}
	return Verdict{Reason: fmt.Sprintf("blocked for %s: %s", env, strings.Join(over, ", ")), Blocking: blocking, Allowed: allowed}
}

func isAllowed(id, repo string, allow []config.AllowedFinding, now time.Time) bool {
	for _, a := range allow {
		if !strings.EqualFold(a.ID, id) {
			continue
		}
		exp, err := time.Parse(time.DateOnly, a.Expires)
		if err != nil || !now.Before(exp) {
			continue
		}
		if a.Repositories != "" {
			if !glob.Match(a.Repositories, repo) {
				continue
			}
		}
		return true
	}
	return false
}

func describe(gate map[string]int) string {
	var parts []string
	for _, sev := range config.Severities() {
		if n, ok := gate[sev]; ok {
			parts = append(parts, fmt.Sprintf("%s ≤ %d", sev, n))
		}
	}
	if len(parts) == 0 {
		return "no caps"
	}
	return strings.Join(parts, ", ")
}
