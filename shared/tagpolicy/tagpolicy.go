// Package tagpolicy decides whether an image tag is allowed, and says why in words a person can read.
//
// The default rule is "build once, promote the same digest": a tag names exactly one commit,
// so it must be the full 40-character lowercase Git SHA. Moving tags such as latest are violations.
package tagpolicy

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/glob"
)

// Decision is the verdict on one tag.
type Decision struct {
	Allowed bool
	// Enforce is true when a violation must be removed, false when it is only reported.
	Enforce bool
	// Commit is the Git commit the tag names, when the rule is sha and the tag complies.
	Commit string
	// Rule names the rule applied ("sha", "semver", "regex ^v\d+$") and where it came from.
	Rule   string
	Reason string
}

// Policy is a compiled tag policy.
type Policy struct {
	def       rule
	overrides []override
	// exempt are the mutableTags filters (ECR exclusion filters: a glob of * only).
	exempt []string
}

type rule struct {
	kind    string
	pattern *regexp.Regexp
	enforce bool
	source  string
}

type override struct {
	glob string
	rule rule
}

var (
	// referrerTagRE is the tag schema cosign (sha256-<hex>.sig/.att/.sbom) and the OCI
	// referrers fallback (sha256-<hex>) use to attach artifacts to a digest.
	referrerTagRE = regexp.MustCompile(`^sha256-[0-9a-f]{64}(\.(sig|att|sbom))?$`)
	shaRE         = regexp.MustCompile(`^[0-9a-f]{40}$`)
	hexRE         = regexp.MustCompile(`^[0-9a-fA-F]+$`)
	semverRE      = regexp.MustCompile(`^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)
)

// movingTags are names that conventionally float from build to build.
func isMovingTag(tag string) bool {
	switch strings.ToLower(tag) {
	case "latest", "stable", "edge", "nightly", "main", "master", "develop", "dev", "staging",
		"prod", "production", "release", "current", "head", "canary", "test", "snapshot":
		return true
	}
	return false
}

// New compiles a policy from the validated config.
func New(p config.TagPolicy) (*Policy, error) {
	def, err := compile(p.TagRule, "default policy")
	if err != nil {
		return nil, err
	}
	pol := &Policy{def: def}
	for i, o := range p.Overrides {
		r, err := compile(o.TagRule, fmt.Sprintf("override for %s", o.Repositories))
		if err != nil {
			return nil, fmt.Errorf("tagPolicy.overrides[%d]: %w", i, err)
		}
		pol.overrides = append(pol.overrides, override{glob: o.Repositories, rule: r})
	}
	pol.exempt = append(pol.exempt, p.MutableTags...)
	return pol, nil
}

func compile(r config.TagRule, source string) (rule, error) {
	out := rule{kind: r.Rule, enforce: r.Mode != config.ModeReport, source: source}
	if r.Rule == config.RuleRegex {
		re, err := regexp.Compile(r.Pattern)
		if err != nil {
			return rule{}, fmt.Errorf("tag pattern %q: %w", r.Pattern, err)
		}
		out.pattern = re
	}
	return out, nil
}

// MutableTags returns the exclusion filters for IMMUTABLE_WITH_EXCLUSION; empty means plain IMMUTABLE.
func (p *Policy) MutableTags() []string { return append([]string(nil), p.exempt...) }

func (p *Policy) ruleFor(repo string) rule {
	for _, o := range p.overrides {
		if glob.Match(o.glob, repo) {
			return o.rule
		}
	}
	return p.def
}

// Check decides whether tag may name an image in repo.
func (p *Policy) Check(repo, tag string) Decision {
	r := p.ruleFor(repo)
	d := Decision{Enforce: r.enforce, Rule: r.describe()}
	for _, ex := range p.exempt {
		if glob.Match(ex, tag) {
			d.Allowed = true
			d.Reason = fmt.Sprintf("tag %q is exempt from immutability by the mutableTags filter %q", tag, ex)
			return d
		}
	}
	if referrerTagRE.MatchString(tag) {
		d.Allowed = true
		d.Reason = fmt.Sprintf("tag %q attaches signatures, attestations or SBOMs to sha256:%s… (cosign tag schema); it names no build", tag, tag[7:19])
		return d
	}
	switch r.kind {
	case config.RuleSHA:
		d.Allowed, d.Reason = checkSHA(tag)
		if d.Allowed {
			d.Commit = tag
		}
	case config.RuleSemver:
		d.Allowed, d.Reason = checkSemver(tag)
	case config.RuleRegex:
		if isMovingTag(tag) && !r.pattern.MatchString(tag) {
			d.Reason = fmt.Sprintf("tag %q is a moving tag, and tags in %s must match %s", tag, repo, r.pattern)
		} else if r.pattern.MatchString(tag) {
			d.Allowed = true
			d.Reason = fmt.Sprintf("tag %q matches %s", tag, r.pattern)
		} else {
			d.Reason = fmt.Sprintf("tag %q does not match %s, required for %s", tag, r.pattern, repo)
		}
	}
	return d
}

func (r rule) describe() string {
	name := r.kind
	if r.kind == config.RuleRegex {
		name = "regex " + r.pattern.String()
	}
	return name + " (" + r.source + ")"
}

func checkSHA(tag string) (bool, string) {
	const want = "tags must be the full 40-character lowercase git commit SHA"
	switch {
	case shaRE.MatchString(tag):
		return true, fmt.Sprintf("tag is a full git commit SHA (%s)", tag[:12])
	case isMovingTag(tag):
		return false, fmt.Sprintf("tag %q is a moving tag: it would point at different images over time; %s", tag, want)
	case hexRE.MatchString(tag) && len(tag) == 40:
		return false, fmt.Sprintf("tag %q has uppercase hex; git SHAs are lowercase", tag)
	case hexRE.MatchString(tag) && len(tag) >= 7 && len(tag) < 40:
		return false, fmt.Sprintf("tag %q looks like an abbreviated commit SHA (%d characters): abbreviations can become ambiguous; %s", tag, len(tag), want)
	case hexRE.MatchString(tag) && len(tag) == 64:
		return false, fmt.Sprintf("tag %q is 64 hex characters, a digest or SHA-256 object id, not a git commit SHA-1; %s", tag, want)
	default:
		return false, fmt.Sprintf("tag %q is not a git commit SHA; %s", tag, want)
	}
}

func checkSemver(tag string) (bool, string) {
	switch {
	case semverRE.MatchString(tag):
		return true, fmt.Sprintf("tag %q is a semantic version", tag)
	case isMovingTag(tag):
		return false, fmt.Sprintf("tag %q is a moving tag; this repository requires semantic versions such as v1.4.2", tag)
	default:
		return false, fmt.Sprintf("tag %q is not a semantic version such as v1.4.2 or 1.4.2-rc.1", tag)
	}
}
