// Package config loads and validates regflow's single configuration file.
//
// The same file drives the Lambda functions, the CLI, the local stack and the
// CDK app, so infrastructure and code cannot disagree about environments.
package config

import (
	"errors"
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/regflow/regflow/shared/glob"
)

// Environment variables through which a deployment hands the config to a function.
const (
	// EnvPath names a file holding the config (YAML or JSON).
	EnvPath = "REGFLOW_CONFIG"
	// EnvInline holds the config itself, for deployments that prefer not to ship a file.
	EnvInline = "REGFLOW_CONFIG_INLINE"
)

// Config is the whole regflow configuration.
type Config struct {
	// Region is the default AWS region for environments that do not set one.
	Region string `json:"region"`
	// Pipeline describes the build/tooling account that runs regflow's functions.
	Pipeline Pipeline `json:"pipeline"`
	// PromotionPath lists environment names in promotion order, source first.
	PromotionPath []string `json:"promotionPath"`
	// Environments by name.
	Environments map[string]Environment `json:"environments"`
	// Repositories are the glob patterns of repositories regflow manages.
	Repositories []string  `json:"repositories"`
	TagPolicy    TagPolicy `json:"tagPolicy"`
	Alerts       Alerts    `json:"alerts"`
	Approvals    Approvals `json:"approvals"`
	Retention    Retention `json:"retention"`
	Promotion    Promotion `json:"promotion"`
	// Allowlist exempts known findings from every gate until they expire.
	Allowlist []AllowedFinding `json:"allowlist"`
}

// AllowedFinding exempts one vulnerability id (CVE-…) from the gates, with a reason, until a date.
type AllowedFinding struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
	// Expires is a date (2027-01-31); the exemption ends at the start of that day, UTC.
	Expires string `json:"expires"`
	// Repositories limits the exemption to a glob; empty means all.
	Repositories string `json:"repositories"`
}

// Pipeline is the account where regflow's functions, table and bus live.
type Pipeline struct {
	Account  string `json:"account"`
	Region   string `json:"region"`
	EventBus string `json:"eventBus"`
	Table    string `json:"table"`
	// SlackSecret names the Secrets Manager secret holding the Slack bot token: every
	// function that posts reads it.
	SlackSecret string `json:"slackSecret"`
	// SlackSigningSecret names the secret holding Slack's signing secret, apart from the
	// token: whoever reads it can sign clicks as any approver, so only approvals may.
	SlackSigningSecret string `json:"slackSigningSecret"`
	// SlackTeam, when set, is the only Slack workspace (team id, T…) whose clicks count.
	SlackTeam string `json:"slackTeam"`
}

// Environment is one stage of the promotion path, living in one AWS account.
type Environment struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	// Registry is the registry host; derived from account and region when empty.
	Registry string `json:"registry"`
	// PromotionRole is the role the promoter assumes to push into this environment.
	PromotionRole string `json:"promotionRole"`
	// ExternalID guards PromotionRole against the confused-deputy problem.
	ExternalID   string `json:"externalId"`
	SlackChannel string `json:"slackChannel"`
	// Gate caps the findings an image may carry to enter this environment, by severity.
	Gate map[string]int `json:"gate"`
	// Approvers may approve promotions into this environment.
	Approvers Approvers `json:"approvers"`
	// RequireVerification makes approval into this environment wait until the digest was
	// reported verified in the previous environment.
	RequireVerification bool `json:"requireVerification"`
	// VerificationReporters are the roles of the pipeline account that may report this
	// environment's verification results (with source regflow.verification.<env>). Without
	// them only the environment's own account may; with them, for an environment in the
	// pipeline account, only they may.
	VerificationReporters []string `json:"verificationReporters,omitempty"`
	// KMSKey encrypts repositories regflow creates here; empty means AES256.
	KMSKey string `json:"kmsKey"`
	// Deploy hands each release to what runs here (SSM parameter, ECS services, Lambda aliases).
	Deploy Deploy `json:"deploy"`
	// RequireSignature, when set, admits only digests signed by the signers it trusts.
	RequireSignature *SignaturePolicy `json:"requireSignature,omitempty"`
}

// Approvers says who may approve a promotion into an environment.
type Approvers struct {
	Users    []string `json:"users"`
	Groups   []string `json:"groups"`
	Required int      `json:"required"`
}

// TagPolicy is the default tag rule plus per-repository overrides.
type TagPolicy struct {
	TagRule
	// MutableTags are tag patterns exempt from immutability (IMMUTABLE_WITH_EXCLUSION).
	MutableTags []string      `json:"mutableTags"`
	Overrides   []TagOverride `json:"overrides"`
}

// TagRule says which tags are valid and what to do about the others.
type TagRule struct {
	// Rule is sha (40-hex lowercase commit), semver, or regex.
	Rule string `json:"rule"`
	// Pattern is the regular expression when Rule is regex.
	Pattern string `json:"pattern"`
	// Mode is enforce (remove the offending tag) or report (alert only).
	Mode string `json:"mode"`
}

// TagOverride applies a different rule to repositories matching a glob.
type TagOverride struct {
	Repositories string `json:"repositories"`
	TagRule
}

// Alerts says where violations and failures are announced.
type Alerts struct {
	SlackChannel string `json:"slackChannel"`
}

// Approvals holds settings shared by every approval request.
type Approvals struct {
	// Expiry is how long an approval request stays open.
	Expiry Duration `json:"expiry"`
	// Requesters map verified AWS identities to Slack users: a promotion asked for by such a
	// principal (its sts identity running `regflow verify`) records that Slack user as the
	// requester, who then cannot approve it. Never a name someone types: see RequesterFor.
	Requesters []RequesterIdentity `json:"requesters"`
}

// RequesterIdentity is one AWS principal (an IAM ARN glob, such as
// arn:aws:sts::111111111111:assumed-role/deploy-*/*) and the Slack user it is.
type RequesterIdentity struct {
	Principal string `json:"principal"`
	SlackUser string `json:"slackUser"`
}

// RequesterFor returns the Slack user of a verified principal ARN (the first matching
// entry), or "" when the config names none.
func (c *Config) RequesterFor(principal string) string {
	if principal == "" {
		return ""
	}
	for _, r := range c.Approvals.Requesters {
		if glob.Match(r.Principal, principal) {
			return r.SlackUser
		}
	}
	return ""
}

// Retention is the sweeper's policy.
type Retention struct {
	MaxAge         Duration `json:"maxAge"`
	UntaggedMaxAge Duration `json:"untaggedMaxAge"`
	UnpulledFor    Duration `json:"unpulledFor"`
	// InUseWithin, with Amazon Inspector's enhanced scanning on, keeps every image Inspector
	// saw in use (an ECS task, an EKS pod: its lastInUseAt) within this span, besides what
	// runs now; 0 (the default) reads no Inspector.
	InUseWithin  Duration            `json:"inUseWithin"`
	KeepNewest   int                 `json:"keepNewest"`
	KeepReleases int                 `json:"keepReleases"`
	IncludeTags  string              `json:"includeTags"`
	ExcludeTags  string              `json:"excludeTags"`
	DryRun       bool                `json:"dryRun"`
	Schedule     string              `json:"schedule"`
	Overrides    []RetentionOverride `json:"overrides"`
}

// RetentionOverride changes the retention policy for repositories matching a glob.
type RetentionOverride struct {
	Repositories   string    `json:"repositories"`
	MaxAge         *Duration `json:"maxAge"`
	UntaggedMaxAge *Duration `json:"untaggedMaxAge"`
	KeepNewest     *int      `json:"keepNewest"`
}

// Load reads the config from a file, validates it and fills defaults.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// FromEnv loads the config the deployment handed over in REGFLOW_CONFIG_INLINE or REGFLOW_CONFIG.
func FromEnv() (*Config, error) {
	if inline := os.Getenv(EnvInline); inline != "" {
		cfg, err := Parse([]byte(inline))
		if err != nil {
			return nil, fmt.Errorf("config from %s: %w", EnvInline, err)
		}
		return cfg, nil
	}
	path := os.Getenv(EnvPath)
	if path == "" {
		return nil, fmt.Errorf("no config: set %s to the config file's path or %s to its content", EnvPath, EnvInline)
	}
	return Load(path)
}

// Parse decodes YAML or JSON, rejects unknown fields, fills defaults and validates.
func Parse(b []byte) (*Config, error) {
	var cfg Config
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) applyDefaults() {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Pipeline.Region == "" {
		c.Pipeline.Region = c.Region
	}
	if c.Pipeline.EventBus == "" {
		c.Pipeline.EventBus = "regflow"
	}
	if c.Pipeline.Table == "" {
		c.Pipeline.Table = "regflow"
	}
	if c.Pipeline.SlackSecret == "" {
		c.Pipeline.SlackSecret = "regflow/slack"
	}
	if c.Pipeline.SlackSigningSecret == "" {
		c.Pipeline.SlackSigningSecret = "regflow/slack-signing"
	}
	if c.Pipeline.Account == "" && len(c.PromotionPath) > 0 {
		c.Pipeline.Account = c.Environments[c.PromotionPath[0]].Account
	}
	if len(c.Repositories) == 0 {
		c.Repositories = []string{"*"}
	}
	for name, env := range c.Environments {
		if env.Region == "" {
			env.Region = c.Region
		}
		if env.Registry == "" && env.Account != "" {
			env.Registry = fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com", env.Account, env.Region)
		}
		if env.Approvers.Required == 0 {
			env.Approvers.Required = 1
		}
		c.Environments[name] = env
	}
	if c.TagPolicy.Rule == "" {
		c.TagPolicy.Rule = RuleSHA
	}
	if c.TagPolicy.Mode == "" {
		c.TagPolicy.Mode = ModeEnforce
	}
	for i := range c.TagPolicy.Overrides {
		o := &c.TagPolicy.Overrides[i]
		if o.Rule == "" {
			o.Rule = c.TagPolicy.Rule
			o.Pattern = c.TagPolicy.Pattern
		}
		if o.Mode == "" {
			o.Mode = c.TagPolicy.Mode
		}
	}
	if c.Approvals.Expiry == 0 {
		c.Approvals.Expiry = Duration(72 * time.Hour)
	}
	c.Promotion.applyDefaults()
	r := &c.Retention
	if r.MaxAge == 0 {
		r.MaxAge = Duration(90 * 24 * time.Hour)
	}
	if r.UntaggedMaxAge == 0 {
		r.UntaggedMaxAge = Duration(14 * 24 * time.Hour)
	}
	if r.KeepReleases == 0 {
		r.KeepReleases = 3
	}
	if r.Schedule == "" {
		r.Schedule = "cron(0 3 * * ? *)"
	}
}

// Tag rules and modes.
const (
	RuleSHA    = "sha"
	RuleSemver = "semver"
	RuleRegex  = "regex"

	ModeEnforce = "enforce"
	ModeReport  = "report"
)

// Severities returns the severity names ECR and Inspector report, most severe first:
// basic scanning's UNDEFINED and Inspector's UNTRIAGED (a finding not yet rated) last.
func Severities() []string {
	return []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED", "UNTRIAGED"}
}

// Env returns the named environment.
func (c *Config) Env(name string) (Environment, bool) {
	e, ok := c.Environments[name]
	return e, ok
}

// Next returns the environment after name on the promotion path, if any.
func (c *Config) Next(name string) (string, bool) {
	for i, n := range c.PromotionPath {
		if n == name && i+1 < len(c.PromotionPath) {
			return c.PromotionPath[i+1], true
		}
	}
	return "", false
}

// Previous returns the environment before name on the promotion path, if any.
func (c *Config) Previous(name string) (string, bool) {
	for i, n := range c.PromotionPath {
		if n == name && i > 0 {
			return c.PromotionPath[i-1], true
		}
	}
	return "", false
}

// Source is the first environment of the promotion path, where CI pushes.
func (c *Config) Source() string {
	if len(c.PromotionPath) == 0 {
		return ""
	}
	return c.PromotionPath[0]
}

// EnvFor finds the environment whose registry is account's in region. A registry is an
// account and a region: several environments may share an account, and a region where none
// lives is no environment's (never the account's first one, whose registry it is not).
func (c *Config) EnvFor(account, region string) (string, bool) {
	for _, n := range c.PromotionPath {
		if e := c.Environments[n]; e.Account == account && e.Region == region {
			return n, true
		}
	}
	return "", false
}

// FieldError names the config field at fault and the rule it breaks.
type FieldError struct {
	Field string
	Rule  string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Rule }

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid config")
