package glob

import (
	"regexp"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "shop/web/api", true},
		{"shop/*", "shop/web", true},
		{"shop/*", "shop/web/api", true}, // * crosses /, as in IAM ARNs
		{"shop/*", "shop", false},
		{"shop/*", "shopx/web", false},
		{"*/web", "shop/web", true},
		{"*/web", "a/b/web", true},
		{"release-?", "release-1", true},
		{"release-?", "release-10", false},
		{"sha256-*", "sha256-abc.sig", true},
		{"cache-*", "latest", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"", "", true},
		{"", "x", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.s); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestValid(t *testing.T) {
	for _, p := range []string{"*", "shop/*", "release-?", "sha256-*"} {
		if err := Valid(p); err != nil {
			t.Errorf("Valid(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "shop/[ab]", `a\*`} {
		if err := Valid(p); err == nil {
			t.Errorf("Valid(%q) accepted", p)
		}
	}
}

// FuzzMatch checks Match against the regexp it stands for, and that it never panics.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{{"shop/*", "shop/web"}, {"a*b?c", "axxbyc"}, {"**", ""}, {"?", "é"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		var re strings.Builder
		re.WriteString(`(?s)^`)
		for i := 0; i < len(pattern); i++ {
			switch pattern[i] {
			case '*':
				re.WriteString(`.*`)
			case '?':
				re.WriteString(`.`)
			default:
				re.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
			}
		}
		re.WriteString(`$`)
		// Match works on bytes; compare on byte-wise input (Latin-1 view) to keep the regexp honest.
		r, err := regexp.Compile(re.String())
		if err != nil {
			return
		}
		if !isASCII(pattern) || !isASCII(s) {
			_ = Match(pattern, s)
			return
		}
		if got, want := Match(pattern, s), r.MatchString(s); got != want {
			t.Fatalf("Match(%q, %q) = %v, regexp says %v", pattern, s, got, want)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
