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

// Unreported says why a scan event's counts cannot decide gate alone, if they cannot: an
// enhanced ("Inspector2 Scan") event counts only the severities it lists (CRITICAL, HIGH,
// MEDIUM), so a capped severity it does not list is unknown, and a TOTAL beyond the listed
// sum means findings it does not break down. A basic scan event lists every severity it found.
func Unreported(enhanced bool, reported []string, counts map[string]int, total int, gate map[string]int) []string {
	var why []string
	if enhanced {
		for _, sev := range config.Severities() {
			if _, capped := gate[sev]; capped && !slices.Contains(reported, sev) {
				why = append(why, sev+" is capped but not counted by the event")
			}
		}
	}
	sum := 0
	for _, n := range counts {
		sum += n
	}
	if total > sum {
		why = append(why, fmt.Sprintf("TOTAL %d is more than the %d findings the event counts by severity", total, sum))
	}
	return why
}

// Evaluate applies env's gate to a scan. findings is nil when they were not read (the counts
// decide); read findings, even none, decide together with the counts: a severity counts what
// the findings list, less the allow-list, plus any the counts report beyond them.
func Evaluate(env string, counts map[string]int, findings []regflow.Finding, gate map[string]int, allow []config.AllowedFinding, repo string, now time.Time) Verdict {
	if findings == nil && len(exceeds(counts, gate)) == 0 {
		return Verdict{Pass: true, Reason: fmt.Sprintf("within %s's gate (%s)", env, describe(gate))}
	}
	effective, listed := map[string]int{}, map[string]int{}
	var allowed []string
	var candidates []regflow.Finding
	for _, f := range findings {
		sev := strings.ToUpper(f.Severity)
		listed[sev]++
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
	for sev, n := range counts {
		if n > listed[sev] && findings != nil {
			effective[sev] += n - listed[sev] // counted but not listed: it cannot be allow-listed
		}
	}
	over := exceeds(effective, gate)
	if len(over) == 0 {
		if len(allowed) == 0 {
			return Verdict{Pass: true, Reason: fmt.Sprintf("within %s's gate (%s), by the findings", env, describe(gate))}
		}
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
