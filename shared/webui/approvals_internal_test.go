package webui

import (
	"testing"
	"time"

	"github.com/regflow/regflow/shared/config"
)

// The allow-list applies as the scan gate reads it: regflow's glob (* crosses /) and an
// exemption that ends at the start of its expiry day.
func TestAllowedFor(t *testing.T) {
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, repos, expires, repo string
		want                       bool
	}{
		{"every repository", "", "2027-06-30", "shop/web", true},
		{"glob crosses /", "shop/*", "2027-06-30", "shop/web/api", true},
		{"glob one level", "shop/*", "2027-06-30", "shop/web", true},
		{"other repository", "shop/*", "2027-06-30", "bank/web", false},
		{"ends at the start of its day", "", "2027-03-01", "shop/web", false},
		{"no valid date never applies", "", "soon", "shop/web", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := config.AllowedFinding{ID: "CVE-2024-0001", Repositories: tc.repos, Expires: tc.expires}
			if got := allowedFor(a, tc.repo, now); got != tc.want {
				t.Fatalf("allowedFor(%q, %q) = %v, want %v", tc.repos, tc.repo, got, tc.want)
			}
		})
	}
}
