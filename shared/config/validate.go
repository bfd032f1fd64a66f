package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/glob"
)

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	roleRE    = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:iam::([0-9]{12}):role/[\w+=,.@/-]+$`)
	envNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	hostRE    = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)
	// slackUserRE is a Slack user id (U…, or W… in Enterprise Grid).
	slackUserRE = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
)

// Validate checks every field and reports all problems at once, each naming its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, rule string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Rule: fmt.Sprintf(rule, args...)})
	}

	if !regionRE.MatchString(c.Region) {
		bad("region", "%q is not an AWS region such as us-east-1", c.Region)
	}
	if !accountRE.MatchString(c.Pipeline.Account) {
		bad("pipeline.account", "%q must be a 12-digit AWS account id", c.Pipeline.Account)
	}
	if !regionRE.MatchString(c.Pipeline.Region) {
		bad("pipeline.region", "%q is not an AWS region such as us-east-1", c.Pipeline.Region)
	}
	if c.Pipeline.SlackSigningSecret == c.Pipeline.SlackSecret {
		bad("pipeline.slackSigningSecret", "%q must differ from pipeline.slackSecret: the signing secret lives apart from the bot token, so only the approvals function can read it", c.Pipeline.SlackSigningSecret)
	}

	if len(c.PromotionPath) < 1 {
		bad("promotionPath", "must list at least one environment, source first (for example [dev, staging, prod])")
	}
	seen := map[string]bool{}
	for i, name := range c.PromotionPath {
		field := fmt.Sprintf("promotionPath[%d]", i)
		if seen[name] {
			bad(field, "%q appears twice; a promotion path cannot loop", name)
		}
		seen[name] = true
		if _, ok := c.Environments[name]; !ok {
			bad(field, "%q is not defined under environments", name)
		}
	}

	names := make([]string, 0, len(c.Environments))
	for name := range c.Environments {
		names = append(names, name)
	}
	slices.Sort(names)
	accounts := map[string]string{}
	for _, name := range names {
		env := c.Environments[name]
		f := "environments." + name
		if !envNameRE.MatchString(name) {
			bad(f, "name must be lowercase letters, digits and dashes, starting with a letter")
		}
		if !seen[name] {
			bad(f, "is not on promotionPath; add it there or remove it")
		}
		if !accountRE.MatchString(env.Account) {
			bad(f+".account", "%q must be a 12-digit AWS account id", env.Account)
		}
		if other, dup := accounts[env.Account+"/"+env.Region]; dup {
			bad(f+".account", "shares account and region with environment %q; each environment needs its own registry", other)
		}
		accounts[env.Account+"/"+env.Region] = name
		if !regionRE.MatchString(env.Region) {
			bad(f+".region", "%q is not an AWS region such as us-east-1", env.Region)
		}
		if !hostRE.MatchString(env.Registry) {
			bad(f+".registry", "%q must be a registry host such as 111111111111.dkr.ecr.us-east-1.amazonaws.com", env.Registry)
		}
		isSource := len(c.PromotionPath) > 0 && c.PromotionPath[0] == name
		if !isSource && seen[name] {
			m := roleRE.FindStringSubmatch(env.PromotionRole)
			switch {
			case env.PromotionRole == "":
				bad(f+".promotionRole", "is required: the promoter assumes it to push into %s", name)
			case m == nil:
				bad(f+".promotionRole", "%q must be an IAM role ARN such as arn:aws:iam::222222222222:role/regflow-promotion", env.PromotionRole)
			case m[1] != env.Account:
				bad(f+".promotionRole", "role is in account %s but the environment is account %s", m[1], env.Account)
			}
			if len(env.ExternalID) < 2 || len(env.ExternalID) > 1224 {
				bad(f+".externalId", "is required with promotionRole and must be 2 to 1224 characters")
			}
		}
		for sev, n := range env.Gate {
			if !slices.Contains(Severities(), sev) {
				bad(f+".gate."+sev, "unknown severity; use one of %s", strings.Join(Severities(), ", "))
			}
			if n < 0 {
				bad(f+".gate."+sev, "%d must be 0 or more findings", n)
			}
		}
		a := env.Approvers
		if a.Required < 1 {
			bad(f+".approvers.required", "%d must be at least 1", a.Required)
		}
		if len(a.Groups) == 0 && len(a.Users) > 0 && a.Required > len(a.Users) {
			bad(f+".approvers.required", "needs %d distinct approvers but only %d users are listed", a.Required, len(a.Users))
		}
		if env.RequireVerification && isSource {
			bad(f+".requireVerification", "the source environment has no previous environment to verify in")
		}
		validateDeploy(f, env, isSource, bad)
		validateSignature(f+".requireSignature", env.RequireSignature, bad)
		for i, r := range env.VerificationReporters {
			m := roleRE.FindStringSubmatch(r)
			switch {
			case m == nil:
				bad(fmt.Sprintf("%s.verificationReporters[%d]", f, i), "%q must be an IAM role ARN such as arn:aws:iam::%s:role/deploy-%s", r, c.Pipeline.Account, name)
			case m[1] != c.Pipeline.Account:
				bad(fmt.Sprintf("%s.verificationReporters[%d]", f, i), "role is in account %s: name roles of the pipeline account %s here; %s's own account may always report on it", m[1], c.Pipeline.Account, name)
			}
		}
	}

	validateRule := func(f string, r TagRule) {
		switch r.Rule {
		case RuleSHA, RuleSemver:
		case RuleRegex:
			if r.Pattern == "" {
				bad(f+".pattern", "is required when rule is regex")
			} else if _, err := regexp.Compile(r.Pattern); err != nil {
				bad(f+".pattern", "does not compile: %v", err)
			}
		default:
			bad(f+".rule", "%q is not one of sha, semver, regex", r.Rule)
		}
		if r.Mode != ModeEnforce && r.Mode != ModeReport {
			bad(f+".mode", "%q is not one of enforce, report", r.Mode)
		}
	}
	validateRule("tagPolicy", c.TagPolicy.TagRule)
	for i, o := range c.TagPolicy.Overrides {
		f := fmt.Sprintf("tagPolicy.overrides[%d]", i)
		if err := glob.Valid(o.Repositories); err != nil {
			bad(f+".repositories", "%q must be a glob such as release/*: %v", o.Repositories, err)
		}
		validateRule(f, o.TagRule)
	}
	for i, m := range c.TagPolicy.MutableTags {
		if m == "" || len(m) > 128 || strings.Count(m, "*") > 2 {
			bad(fmt.Sprintf("tagPolicy.mutableTags[%d]", i), "%q must be a tag or wildcard filter of at most 128 characters with at most two *", m)
		}
	}
	for i, r := range c.Repositories {
		if err := glob.Valid(r); err != nil {
			bad(fmt.Sprintf("repositories[%d]", i), "%q must be a glob such as team-*: %v", r, err)
		}
	}

	r := c.Retention
	if r.KeepNewest < 0 {
		bad("retention.keepNewest", "%d must be 0 or more", r.KeepNewest)
	}
	if r.InUseWithin < 0 || r.InUseWithin > Duration(365*24*time.Hour) {
		bad("retention.inUseWithin", "%s must be between 0 (read no Inspector) and 365d", r.InUseWithin)
	}
	if r.KeepReleases < 1 {
		bad("retention.keepReleases", "%d must be at least 1: the current release is always kept", r.KeepReleases)
	}
	for _, re := range []struct{ f, v string }{{"retention.includeTags", r.IncludeTags}, {"retention.excludeTags", r.ExcludeTags}} {
		if _, err := regexp.Compile(re.v); err != nil {
			bad(re.f, "does not compile: %v", err)
		}
	}
	for i, o := range r.Overrides {
		if err := glob.Valid(o.Repositories); err != nil {
			bad(fmt.Sprintf("retention.overrides[%d].repositories", i), "%q must be a glob such as scratch-*: %v", o.Repositories, err)
		}
	}

	c.Promotion.validate(bad)
	for i, r := range c.Approvals.Requesters {
		f := fmt.Sprintf("approvals.requesters[%d]", i)
		if err := glob.Valid(r.Principal); err != nil {
			bad(f+".principal", "%q must be an IAM principal ARN, or a glob of ARNs such as arn:aws:sts::111111111111:assumed-role/deploy-*/*: %v", r.Principal, err)
		}
		if !slackUserRE.MatchString(r.SlackUser) {
			bad(f+".slackUser", "%q must be a Slack user id such as U0123ABCD", r.SlackUser)
		}
	}

	for i, a := range c.Allowlist {
		f := fmt.Sprintf("allowlist[%d]", i)
		if strings.TrimSpace(a.ID) == "" {
			bad(f+".id", "is required (a vulnerability id such as CVE-2024-1234)")
		}
		if strings.TrimSpace(a.Reason) == "" {
			bad(f+".reason", "is required: say why %s is accepted", a.ID)
		}
		if _, err := time.Parse(time.DateOnly, a.Expires); err != nil {
			bad(f+".expires", "%q must be a date such as 2027-01-31: exemptions must end", a.Expires)
		}
		if err := glob.Valid(a.Repositories); a.Repositories != "" && err != nil {
			bad(f+".repositories", "%q must be a glob: %v", a.Repositories, err)
		}
	}

	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
}
