// Package route is regflow's routing table: which events reach which function, declared
// once as data. infra turns each Route into an EventBridge rule and the local bus
// subscribes from the same table, so local routing cannot drift from AWS routing.
package route

import (
	"fmt"
	"slices"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ecsevent"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/store"
)

// The deployed functions, named as their folders under functions/. Approvals is reached
// through API Gateway and Sweepworker through SQS; the others through the rules below.
const (
	Tagguard    = "tagguard"
	Scangate    = "scangate"
	Approvals   = "approvals"
	Promoter    = "promoter"
	Sweeper     = "sweeper"
	Sweepworker = "sweepworker"
)

// Bus says where a rule lives.
type Bus string

const (
	// Regflow is the regflow bus in the pipeline account, where every function rule is.
	Regflow Bus = "regflow"
	// Default is an account's default bus: AWS services publish there, and schedules
	// only exist there.
	Default Bus = "default"
)

// Route is one EventBridge rule: what it matches (or when it fires) and where it sends.
type Route struct {
	// ID is the CDK construct id and Name the rule's physical name after "regflow-";
	// both are kept stable so deployed stacks update rules in place.
	ID          string
	Name        string
	Description string
	On          Bus
	// Function is the function the rule invokes; empty when Forward is set.
	Function string
	// Forward sends matching events on to the regflow bus (the environment accounts'
	// rule, and the pipeline account's when it hosts a registry).
	Forward bool
	// Pattern selects events; nil for a scheduled rule.
	Pattern *Pattern
	// Schedule is an EventBridge schedule expression, for rules without a Pattern.
	Schedule string
}

// Table is every rule regflow deploys, derived from the validated config: the function
// rules on the regflow bus, the sweep schedule, and the forwarding rule.
func Table(cfg *config.Config) []Route {
	routes := table(cfg)
	if len(cfg.Approvals.Requesters) > 0 {
		// Who pushed is who asks for the first promotion (approvals.requesters maps the
		// identity to a Slack user). CloudTrail puts its record of CI's PutImage on the source
		// account's default bus; this needs a trail logging management events there.
		routes = append(routes, Route{
			ID: "ScanGatePutImageRule", Name: "scangate-putimage", On: Default, Function: Scangate,
			Description: "CloudTrail's record of a PutImage in the source environment names who asked for its first promotion",
			Pattern: &Pattern{
				Sources:     []string{event.SourceECR},
				DetailTypes: []string{event.TypeAPICall},
				Accounts:    []string{cfg.Environments[cfg.Source()].Account},
				Detail: []Field{
					{Path: []string{"eventSource"}, Values: []string{"ecr.amazonaws.com"}},
					{Path: []string{"eventName"}, Values: []string{"PutImage"}},
				},
			},
		})
	}
	return routes
}

func table(cfg *config.Config) []Route {
	accounts := envAccounts(cfg)
	return []Route{
		{
			ID: "TagGuardRule", Name: "tagguard-push", On: Regflow, Function: Tagguard,
			Description: "Successful pushes in the source environment's registry go to tagguard",
			// Only the source environment's account: promotions push into the later
			// environments, and their tags are regflow's own, not CI's.
			Pattern: &Pattern{
				Sources:     []string{event.SourceECR},
				DetailTypes: []string{event.TypeImageAction},
				Accounts:    []string{cfg.Environments[cfg.Source()].Account},
				Detail: []Field{
					{Path: []string{"action-type"}, Values: []string{"PUSH"}},
					{Path: []string{"result"}, Values: []string{"SUCCESS"}},
				},
			},
		},
		{
			ID: "ScanGateEcrRule", Name: "scangate-ecr-scan", On: Regflow, Function: Scangate,
			Description: "Completed ECR basic scans go to scangate",
			Pattern: &Pattern{
				Sources:     []string{event.SourceECR},
				DetailTypes: []string{event.TypeImageScan},
				Accounts:    accounts,
				Detail:      []Field{{Path: []string{"scan-status"}, Values: []string{"COMPLETE"}}},
			},
		},
		{
			ID: "ScanGateInspectorRule", Name: "scangate-inspector-scan", On: Regflow, Function: Scangate,
			Description: "Inspector enhanced scan results go to scangate",
			Pattern: &Pattern{
				Sources:     []string{event.SourceInspector},
				DetailTypes: []string{event.TypeInspectorScan},
				Accounts:    accounts,
			},
		},
		{
			ID: "PromoterRule", Name: "promoter-approved", On: Regflow, Function: Promoter,
			Description: "Approved promotions and Slack rollbacks go to the promoter",
			// Only the pipeline account publishes regflow events; the bus policy keeps
			// other accounts from sending source "regflow" and this ignores them regardless.
			Pattern: &Pattern{
				Sources:     []string{event.SourceRegflow},
				DetailTypes: []string{event.TypePromotionApproved, event.TypeRollbackRequested},
				Accounts:    []string{cfg.Pipeline.Account},
			},
		},
		{
			ID: "ScanGatePromotedRule", Name: "scangate-promoted", On: Regflow, Function: Scangate,
			Description: "Promoted (and superseded) digests go back to scangate, which gates the scans recorded before the tag was written",
			Pattern: &Pattern{
				Sources:     []string{event.SourceRegflow},
				DetailTypes: []string{event.TypeImagePromoted, event.TypePromotionSuperseded},
				Accounts:    []string{cfg.Pipeline.Account},
			},
		},
		{
			ID: "ScanGateVerificationRule", Name: "scangate-verification", On: Regflow, Function: Scangate,
			Description: "Deployment verification results go to scangate",
			// Deployment pipelines send it with a source of their own; the named reporters
			// of an environment send it from the pipeline account.
			Pattern: &Pattern{
				DetailTypes: []string{event.TypeVerificationResult},
				Accounts:    verificationAccounts(cfg),
			},
		},
		{
			ID: "DeploymentOutcomeRule", Name: "promoter-ecs-deployment", On: Regflow, Function: Promoter,
			Description: "Completed and failed ECS deployments in the environment accounts go to the promoter, which handed the release over",
			// IN_PROGRESS says nothing about the outcome; the rollback it may announce ends
			// in a COMPLETED of its own.
			Pattern: &Pattern{
				Sources:     []string{event.SourceECS},
				DetailTypes: []string{event.TypeECSDeployment},
				Accounts:    deployAccounts(cfg),
				Detail:      []Field{{Path: []string{"eventName"}, Values: []string{ecsevent.Completed, ecsevent.Failed}}},
			},
		},
		{
			ID: "SweepSchedule", Name: "sweep-schedule", On: Default, Function: Sweeper,
			Description: "Starts the retention sweep (retention.schedule)",
			Schedule:    cfg.Retention.Schedule,
		},
		Forwarding(),
	}
}

// Forwarding is the rule on an environment account's default bus that sends the ECR,
// Inspector and ECS deployment events regflow consumes to the regflow bus. Its id and
// name predate the ECS events and stay, so deployed stacks update the rule in place.
func Forwarding() Route {
	return Route{
		ID: "ForwardRegistryEvents", Name: "forward-registry-events", On: Default, Forward: true,
		Description: "Forwards ECR push/scan, Inspector scan and ECS deployment events to the regflow bus",
		Pattern: &Pattern{
			Sources:     []string{event.SourceECR, event.SourceInspector, event.SourceECS},
			DetailTypes: []string{event.TypeImageAction, event.TypeImageScan, event.TypeInspectorScan, event.TypeECSDeployment},
		},
	}
}

// deployAccounts lists the accounts of the environments regflow deploys to: every one on
// the path after the source, which CI deploys.
func deployAccounts(cfg *config.Config) []string {
	var out []string
	for i, name := range cfg.PromotionPath {
		if a := cfg.Environments[name].Account; i > 0 && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = envAccounts(cfg)
	}
	return out
}

// Functions returns the routes on the regflow bus that invoke a function: the ones an
// event put on that bus can reach.
func Functions(routes []Route) []Route {
	var out []Route
	for _, r := range routes {
		if r.On == Regflow && r.Function != "" && r.Pattern != nil {
			out = append(out, r)
		}
	}
	return out
}

// verificationAccounts are the accounts a "Verification Result" may come from: every
// environment's, and the pipeline account's when the config names reporters there.
func verificationAccounts(cfg *config.Config) []string {
	out := envAccounts(cfg)
	for _, name := range cfg.PromotionPath {
		if len(cfg.Environments[name].VerificationReporters) > 0 && !slices.Contains(out, cfg.Pipeline.Account) {
			out = append(out, cfg.Pipeline.Account)
		}
	}
	return out
}

// envAccounts lists the distinct accounts of the environments in promotion order.
func envAccounts(cfg *config.Config) []string {
	var out []string
	for _, name := range cfg.PromotionPath {
		if a := cfg.Environments[name].Account; !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// Validate checks a table: unique ids and names, each rule either matches a pattern or
// runs on a schedule, and either invokes a function or forwards.
func Validate(routes []Route) error {
	ids, names := map[string]bool{}, map[string]bool{}
	for _, r := range routes {
		switch {
		case r.ID == "" || r.Name == "":
			return fmt.Errorf("route %q/%q needs both an id and a name", r.ID, r.Name)
		case ids[r.ID] || names[r.Name]:
			return fmt.Errorf("route %s (%s) is declared twice", r.ID, r.Name)
		case (r.Function == "") == !r.Forward:
			return fmt.Errorf("route %s must either invoke a function or forward, not both or neither", r.ID)
		case (r.Pattern == nil) == (r.Schedule == ""):
			return fmt.Errorf("route %s must have either an event pattern or a schedule", r.ID)
		case r.Schedule != "" && r.On != Default:
			return fmt.Errorf("route %s: scheduled rules only exist on the default bus", r.ID)
		}
		if r.Pattern != nil {
			if err := r.Pattern.Validate(); err != nil {
				return fmt.Errorf("route %s: %w", r.ID, err)
			}
		}
		ids[r.ID], names[r.Name] = true, true
	}
	return nil
}

// publishes is what each function puts on the regflow bus, all with source regflow. infra
// grants events:PutEvents on exactly these detail-types, so a function that starts
// publishing another one needs a line here (or AWS refuses the put).
var publishes = map[string][]string{
	Tagguard: {event.TypeTagPolicyViolation},
	// Decisions, and the Roll back button's request to the promoter.
	Approvals: {event.TypePromotionApproved, event.TypePromotionRejected, event.TypeRollbackRequested},
	Promoter: {event.TypeImagePromoted, event.TypePromotionSuperseded, event.TypePromotionFailed,
		event.TypeReleaseRolledBack, event.TypeReleaseDeployed, event.TypeDeploymentFailed},
	// Whichever of the sweeper and its workers finishes a run announces it.
	Sweeper:     {event.TypeRetentionSweepCompleted},
	Sweepworker: {event.TypeRetentionSweepCompleted},
}

// Publishes lists the detail-types fn publishes on the regflow bus (none for scangate).
func Publishes(fn string) []string { return slices.Clone(publishes[fn]) }

// Publishers lists the functions that publish on the regflow bus, in deployment order.
func Publishers() []string {
	var out []string
	for _, fn := range []string{Tagguard, Scangate, Approvals, Promoter, Sweeper, Sweepworker} {
		if len(publishes[fn]) > 0 {
			out = append(out, fn)
		}
	}
	return out
}

// writes is what each function writes in the table: item kinds, by the store's
// partition-key prefixes. infra grants exactly these (dynamodb:LeadingKeys), and the
// composition root refuses any other write, so the local stack fails where AWS would.
// Audit entries and claims are everyone's: each function records what it did and makes
// its side effects happen once.
var writes = map[string][]string{
	// The image record (tags, commit, pushed at).
	Tagguard: {store.PrefixImage, store.PrefixAudit, store.PrefixClaim},
	// Scan and verification results, and the approval requests they open or block.
	Scangate: {store.PrefixScan, store.PrefixVerification, store.PrefixRequest, store.PrefixAudit, store.PrefixClaim},
	// Votes and decisions on requests; the rollback a Roll back click asks for.
	Approvals: {store.PrefixRequest, store.PrefixRollback, store.PrefixAudit, store.PrefixClaim},
	// Release pointers, requests marked promoted or failed, rollbacks applied or refused;
	// and, for a failed ECS deployment, the failed verification it counts as.
	Promoter: {store.PrefixRelease, store.PrefixRequest, store.PrefixRollback, store.PrefixVerification, store.PrefixAudit, store.PrefixClaim},
	// Sweep runs and their report parts, and the manifest facts cache.
	Sweeper:     {store.PrefixSweep, store.PrefixManifest, store.PrefixAudit, store.PrefixClaim},
	Sweepworker: {store.PrefixSweep, store.PrefixManifest, store.PrefixAudit, store.PrefixClaim},
}

// Writes lists the item kinds (store partition-key prefixes) fn writes.
func Writes(fn string) []string { return slices.Clone(writes[fn]) }
