package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/glob"
	"github.com/regflow/regflow/shared/route"
)

// Names every stack agrees on. Cross-account trust policies name roles by ARN, so the
// roles the target accounts trust must have fixed names in the pipeline account.
const (
	namePrefix = "regflow"
	// SweeperRoleName is the role the sweeper and its workers assume in every
	// environment account other than the pipeline account.
	SweeperRoleName = awsapp.SweeperRoleName
	// ReaderRoleName is the read-only role the scan gate assumes in every environment
	// account other than the pipeline account.
	ReaderRoleName = awsapp.ReaderRoleName
	// ManagedTagKey/ManagedTagValue must be on every CreateRepository call the promoter
	// makes: IAM cannot condition CreateRepository on tag immutability, so the promotion
	// role only lets regflow create repositories it labels as its own.
	ManagedTagKey   = ecr.ManagedTagKey
	ManagedTagValue = ecr.ManagedTagValue

	// Environment variables the infrastructure hands to functions besides the config.
	EnvSweepQueueURL = awsapp.EnvSweepQueueURL
	EnvSweeperRole   = awsapp.EnvSweeperRole

	// maxInlineConfig keeps the config well inside Lambda's 4 KB budget for all
	// environment variables together.
	maxInlineConfig = 3 * 1024
)

// Function names, as folders under functions/ and bin/ (the routing table's names).
const (
	fnTagguard    = route.Tagguard
	fnScangate    = route.Scangate
	fnApprovals   = route.Approvals
	fnPromoter    = route.Promoter
	fnSweeper     = route.Sweeper
	fnSweepworker = route.Sweepworker
)

// functionNames lists every function the pipeline stack deploys.
func functionNames() []string {
	return []string{fnTagguard, fnScangate, fnApprovals, fnPromoter, fnSweeper, fnSweepworker}
}

// functionName is the Lambda function's physical name.
func functionName(fn string) string { return namePrefix + "-" + fn }

// functionRoleName is the execution role's name; target accounts trust it by ARN.
func functionRoleName(fn string) string { return namePrefix + "-fn-" + fn }

// partition and roleARN are the functions' own, so infra and the functions name the same roles.
var (
	partition = awsapp.Partition
	roleARN   = awsapp.RoleARN
)

// location is where a stack deploys: one account and region.
type location struct{ Account, Region string }

// plan is everything the stacks derive from the validated config.
type plan struct {
	cfg *config.Config
	// inline is the compact JSON every function receives in REGFLOW_CONFIG_INLINE.
	inline string
	// pipeline is where the functions, table and bus live.
	pipeline location
	// targets are the environments outside the pipeline location, in promotion order;
	// each gets its own stack.
	targets []string
	// local are the environments whose registry is in the pipeline account: the
	// functions reach them with their own roles.
	local []string
	// sweeperRoleOwner maps a foreign account to the environment whose stack creates
	// the account's sweeper role (IAM is global, so one per account).
	sweeperRoleOwner map[string]string
	// promotionRoleOwner maps a promotion role ARN to the environment whose stack
	// creates it, and promotionRoleEnvs lists every environment using that role.
	promotionRoleOwner map[string]string
	promotionRoleEnvs  map[string][]string
}

// newPlan checks what the CDK app needs beyond config validation and derives the layout.
func newPlan(cfg *config.Config) (*plan, error) {
	inline, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode config for %s: %w", config.EnvInline, err)
	}
	if len(inline) > maxInlineConfig {
		return nil, fmt.Errorf("config is %d bytes as compact JSON; functions receive it in %s, which is capped at %d bytes to stay inside Lambda's 4 KB environment limit: shorten the config (fewer overrides, approvers or repositories)",
			len(inline), config.EnvInline, maxInlineConfig)
	}
	for i, g := range cfg.Repositories {
		if err := glob.Valid(g); err != nil {
			return nil, fmt.Errorf("repositories[%d]: %w (IAM resource ARNs use the same syntax)", i, err)
		}
	}
	if !regexp.MustCompile(`^(cron|rate)\(.+\)$`).MatchString(cfg.Retention.Schedule) {
		return nil, fmt.Errorf("retention.schedule %q must be an EventBridge schedule such as cron(0 3 * * ? *) or rate(1 day)", cfg.Retention.Schedule)
	}
	p := &plan{
		cfg:                cfg,
		inline:             string(inline),
		pipeline:           location{cfg.Pipeline.Account, cfg.Pipeline.Region},
		sweeperRoleOwner:   map[string]string{},
		promotionRoleOwner: map[string]string{},
		promotionRoleEnvs:  map[string][]string{},
	}
	for _, name := range cfg.PromotionPath {
		env := cfg.Environments[name]
		if env.Account == p.pipeline.Account {
			p.local = append(p.local, name)
		} else if _, ok := p.sweeperRoleOwner[env.Account]; !ok {
			p.sweeperRoleOwner[env.Account] = name
		}
		if (location{env.Account, env.Region}) != p.pipeline {
			p.targets = append(p.targets, name)
		}
		if env.PromotionRole != "" {
			if _, ok := p.promotionRoleOwner[env.PromotionRole]; !ok {
				p.promotionRoleOwner[env.PromotionRole] = name
			}
			p.promotionRoleEnvs[env.PromotionRole] = append(p.promotionRoleEnvs[env.PromotionRole], name)
		}
	}
	return p, nil
}

// envLocation is where an environment's registry lives.
func (p *plan) envLocation(name string) location {
	e := p.cfg.Environments[name]
	return location{e.Account, e.Region}
}

// repoARNs scopes ECR permissions to the configured repository globs in one registry.
func (p *plan) repoARNs(loc location) []string {
	out := make([]string, 0, len(p.cfg.Repositories))
	for _, g := range p.cfg.Repositories {
		out = append(out, fmt.Sprintf("arn:%s:ecr:%s:%s:repository/%s", partition(loc.Region), loc.Region, loc.Account, g))
	}
	return out
}

// repoARNsFor covers the registries of several environments.
func (p *plan) repoARNsFor(envs []string) []string {
	var out []string
	for _, e := range envs {
		for _, a := range p.repoARNs(p.envLocation(e)) {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// fnRoleARN is the ARN of a function's execution role in the pipeline account.
func (p *plan) fnRoleARN(fn string) string {
	return roleARN(p.pipeline.Region, p.pipeline.Account, functionRoleName(fn))
}

// sweeperRoleARNs lists the sweeper roles in every foreign environment account.
func (p *plan) sweeperRoleARNs() []string {
	var out []string
	for _, name := range p.cfg.PromotionPath {
		e := p.cfg.Environments[name]
		if p.sweeperRoleOwner[e.Account] == name {
			out = append(out, roleARN(e.Region, e.Account, SweeperRoleName))
		}
	}
	return out
}

// readerRoleARNs lists the scan gate's read-only role in every foreign account.
func (p *plan) readerRoleARNs() []string {
	var out []string
	for _, name := range p.cfg.PromotionPath {
		e := p.cfg.Environments[name]
		if p.sweeperRoleOwner[e.Account] == name {
			out = append(out, roleARN(e.Region, e.Account, ReaderRoleName))
		}
	}
	return out
}

// promotionRoleARNs lists the configured promotion roles in promotion order.
func (p *plan) promotionRoleARNs() []string {
	var out []string
	for _, name := range p.cfg.PromotionPath {
		r := p.cfg.Environments[name].PromotionRole
		if r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// envAccounts lists the distinct accounts of all environments.
func (p *plan) envAccounts() []string {
	var out []string
	for _, name := range p.cfg.PromotionPath {
		a := p.cfg.Environments[name].Account
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// foreignAccounts lists environment accounts other than the pipeline account.
func (p *plan) foreignAccounts() []string {
	var out []string
	for _, a := range p.envAccounts() {
		if a != p.pipeline.Account {
			out = append(out, a)
		}
	}
	return out
}

// hostsEnv reports whether an environment's registry is at the pipeline location, so
// its ECR events land on the pipeline account's default bus.
func (p *plan) hostsEnv() bool {
	for _, name := range p.cfg.PromotionPath {
		if p.envLocation(name) == p.pipeline {
			return true
		}
	}
	return false
}

// splitRoleARN returns the path and name of an IAM role ARN.
func splitRoleARN(arn string) (path, name string, err error) {
	_, rest, ok := strings.Cut(arn, ":role/")
	if !ok || rest == "" {
		return "", "", fmt.Errorf("%q is not an IAM role ARN", arn)
	}
	i := strings.LastIndex(rest, "/")
	if i < 0 {
		return "/", rest, nil
	}
	return "/" + rest[:i+1], rest[i+1:], nil
}
