package glob

import "testing"

func TestMatchesAsIAM(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "shop/app", true},
		{"*", "", true},
		{"team-*", "team-a/b", true},
		{"team-*", "teamx", false},
		{"shop/*", "shop/web", true},
		{"shop/*", "shopx/web", false},
		{"*/web", "shop/web", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"*a*b*", "xxaybzz", true},
		{"*a*b", "xxaybzz", false},
	} {
		if got := Match(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
