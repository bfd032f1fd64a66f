package regflow_test

import (
	"slices"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/regflow"
)

func TestRequestProtects(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	approved := regflow.ApprovalRequest{Status: regflow.StatusApproved, ExpiresAt: now.Add(-time.Hour)}
	failed := approved.Fail("copy failed after 3 attempts", now, 7*24*time.Hour)
	for _, tc := range []struct {
		name string
		r    regflow.ApprovalRequest
		at   time.Time
		want bool
	}{
		{"pending before expiry", regflow.ApprovalRequest{Status: regflow.StatusPending, ExpiresAt: now.Add(time.Hour)}, now, true},
		{"pending at expiry", regflow.ApprovalRequest{Status: regflow.StatusPending, ExpiresAt: now}, now, false},
		{"waiting", regflow.ApprovalRequest{Status: regflow.StatusWaiting}, now, true},
		{"approved, even past its expiry", approved, now, true},
		{"failed, within the grace", failed, now.Add(7*24*time.Hour - time.Second), true},
		{"failed, grace over", failed, now.Add(7 * 24 * time.Hour), false},
		{"failed without a grace (a tag conflict before graces)", regflow.ApprovalRequest{Status: regflow.StatusFailed}, now, false},
		{"promoted (the release pointer protects it)", regflow.ApprovalRequest{Status: regflow.StatusPromoted}, now, false},
		{"rejected", regflow.ApprovalRequest{Status: regflow.StatusRejected}, now, false},
		{"superseded", regflow.ApprovalRequest{Status: regflow.StatusSuperseded}, now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Protects(tc.at); got != tc.want {
				t.Fatalf("Protects = %v, want %v", got, tc.want)
			}
			if tc.want && !slices.Contains(regflow.ProtectingStatuses(), tc.r.Status) {
				t.Fatalf("%s protects but is not listed in ProtectingStatuses", tc.r.Status)
			}
		})
	}
	if failed.Status != regflow.StatusFailed || failed.Version != approved.Version+1 {
		t.Fatalf("Fail = %+v", failed)
	}
}
