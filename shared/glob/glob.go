// Package glob is the one pattern syntax of regflow's config: repositories, tag overrides,
// mutable tags, the CVE allow-list and `regflow sweep --repo`. It is IAM's: * matches any
// run of characters, / included ("shop/*" matches "shop/web" and "shop/web/api"), ? matches
// any one character, and everything else stands for itself. So infra can turn a repository
// glob into an IAM resource ARN as it is, and regflow acts on exactly what its roles may touch.
package glob

import (
	"errors"
	"fmt"
	"strings"
)

// Valid reports why p cannot be a pattern: empty, or using a character other glob
// dialects treat as special ([ ] \), which here would silently mean itself.
func Valid(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	if i := strings.IndexAny(p, `[]\`); i >= 0 {
		return fmt.Errorf("pattern %q uses %q: only * (any run, / included) and ? (any one character) are special, as in IAM resource ARNs", p, p[i])
	}
	return nil
}

// Match reports whether s matches pattern. "" matches only "".
func Match(pattern, s string) bool {
	star, mark := -1, 0
	i, j := 0, 0
	for j < len(s) {
		switch {
		case i < len(pattern) && (pattern[i] == '?' || pattern[i] == s[j]):
			i++
			j++
		case i < len(pattern) && pattern[i] == '*':
			star, mark = i, j
			i++
		case star >= 0:
			i, mark = star+1, mark+1
			j = mark
		default:
			return false
		}
	}
	for i < len(pattern) && pattern[i] == '*' {
		i++
	}
	return i == len(pattern)
}

// Any reports whether s matches one of patterns.
func Any(patterns []string, s string) bool {
	for _, p := range patterns {
		if Match(p, s) {
			return true
		}
	}
	return false
}
