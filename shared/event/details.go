package event

import (
	"fmt"
	"time"

	"github.com/regflow/regflow/shared/regflow"
)

// PromotionDecision is the detail of "Promotion Approved" and "Promotion Rejected":
// people decided whether one digest may enter one environment. RequestID and Decision
// identify it, so a consumer that sees it twice (EventBridge delivers at least once)
// can tell.
type PromotionDecision struct {
	RequestID  string `json:"requestId"`
	Env        string `json:"env"`
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Tag        string `json:"tag,omitempty"`
	Commit     string `json:"commit,omitempty"`
	// Decision is regflow.StatusApproved or regflow.StatusRejected.
	Decision string `json:"decision"`
	// DecidedBy is the Slack user id whose click closed the request.
	DecidedBy string `json:"decidedBy"`
	// Approvers are the Slack user ids that approved, in order (empty on rejection).
	Approvers   []string  `json:"approvers,omitempty"`
	RequestedBy string    `json:"requestedBy,omitempty"`
	At          time.Time `json:"at"`
}

// DetailType is "Promotion Approved" or "Promotion Rejected", after Decision; "" (not
// publishable) for anything else.
func (d PromotionDecision) DetailType() string {
	switch d.Decision {
	case regflow.StatusApproved:
		return TypePromotionApproved
	case regflow.StatusRejected:
		return TypePromotionRejected
	}
	return ""
}

// DecisionOf describes a decided request as the detail of its decision event.
func DecisionOf(r regflow.ApprovalRequest) (PromotionDecision, error) {
	if r.Status != regflow.StatusApproved && r.Status != regflow.StatusRejected {
		return PromotionDecision{}, fmt.Errorf("approval request %s is %s, not decided", r.ID, r.Status)
	}
	d := PromotionDecision{
		RequestID: r.ID, Env: r.Env, Repository: r.Repository, Digest: r.Digest, Tag: r.Tag, Commit: r.Commit,
		Decision: r.Status, DecidedBy: r.DecidedBy, RequestedBy: r.RequestedBy, At: r.DecidedAt.UTC(),
	}
	if r.Status == regflow.StatusApproved {
		for _, v := range r.Approvals {
			d.Approvers = append(d.Approvers, v.User)
		}
	}
	return d, nil
}

// TagPolicyViolation is the detail of "Tag Policy Violation": a push carried a tag
// the policy refuses. It is for automation that reacts to it (for example, failing
// the CI run that pushed the tag).
type TagPolicyViolation struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Tag        string `json:"tag"`
	Account    string `json:"account"`
	Rule       string `json:"rule"`
	Reason     string `json:"reason"`
	// Removed is false in report mode.
	Removed bool   `json:"removed"`
	At      string `json:"at"`
}

// DetailType is "Tag Policy Violation".
func (TagPolicyViolation) DetailType() string { return TypeTagPolicyViolation }

// ImagePromoted is the detail of "Image Promoted".
type ImagePromoted struct {
	RequestID  string `json:"requestId"`
	Env        string `json:"env"`
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Tag        string `json:"tag"`
	// Previous is the digest the promotion replaced.
	Previous   string   `json:"previous,omitempty"`
	ApprovedBy []string `json:"approvedBy"`
	BytesMoved int64    `json:"bytesMoved"`
}

// DetailType is "Image Promoted".
func (ImagePromoted) DetailType() string { return TypeImagePromoted }

// PromotionFailed is the detail of "Promotion Failed".
type PromotionFailed struct {
	RequestID string `json:"requestId"`
	Env       string `json:"env"`
	Reason    string `json:"reason"`
}

// DetailType is "Promotion Failed".
func (PromotionFailed) DetailType() string { return TypePromotionFailed }

// RollbackRequested is the detail of "Rollback Requested": roll env back from the
// digest the person saw as current. It names that digest so a redelivered event
// changes nothing.
type RollbackRequested struct {
	// RollbackID names the stored rollback to apply: the promoter acts on that record
	// (who asked, from what), not on this event's other fields.
	RollbackID string `json:"rollbackId"`
	RequestID  string `json:"requestId"`
	Env        string `json:"env"`
	Repository string `json:"repository"`
	From       string `json:"from"`
	By         string `json:"by"`
}

// DetailType is "Rollback Requested".
func (RollbackRequested) DetailType() string { return TypeRollbackRequested }

// ReleaseRolledBack is the detail of "Release Rolled Back".
type ReleaseRolledBack struct {
	Env        string `json:"env"`
	Repository string `json:"repository"`
	From       string `json:"from"`
	To         string `json:"to"`
	By         string `json:"by"`
}

// DetailType is "Release Rolled Back".
func (ReleaseRolledBack) DetailType() string { return TypeReleaseRolledBack }

// RetentionSweepCompleted is the detail of "Retention Sweep Completed".
type RetentionSweepCompleted struct {
	RunID              string    `json:"runId"`
	Now                time.Time `json:"now"`
	DryRun             bool      `json:"dryRun"`
	Repositories       int       `json:"repositories"`
	Images             int       `json:"images"`
	Kept               int       `json:"kept"`
	Selected           int       `json:"selected"`
	Removed            int       `json:"removed"`
	Refused            int       `json:"refused"`
	FailedRepositories int       `json:"failedRepositories"`
	// BytesReclaimedUpperBound counts shared layers once per image: storage freed is at most this.
	BytesReclaimedUpperBound int64 `json:"bytesReclaimedUpperBound"`
	// Partial: some repositories could not be swept (NotSwept names up to 100, as
	// registry/repository): a batch failed, ended in the dead-letter queue, or stalled.
	Partial  bool     `json:"partial"`
	NotSwept []string `json:"notSwept,omitempty"`
	// Skipped were selected but protected by the time their delete came.
	Skipped int `json:"skipped,omitempty"`
}

// DetailType is "Retention Sweep Completed".
func (RetentionSweepCompleted) DetailType() string { return TypeRetentionSweepCompleted }

// VerificationResult is the detail of "Verification Result", which a deployment
// pipeline sends (with its own source) after testing a digest in an environment.
type VerificationResult struct {
	Env        string `json:"env"`
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	// Passed is a pointer so a missing field is told from false.
	Passed     *bool  `json:"passed"`
	URL        string `json:"url,omitempty"`
	ReportedBy string `json:"reportedBy"`
	// Requester is the Slack user id of whoever triggered the deployment (optional).
	Requester string `json:"requester,omitempty"`
}

// DetailType is "Verification Result".
func (VerificationResult) DetailType() string { return TypeVerificationResult }

// SweepRequest is the detail of what starts a retention sweep: empty on EventBridge's
// "Scheduled Event"; a hand-made invocation may ask for a dry run (overriding
// retention.dryRun) or measure ages at another time (a preview).
type SweepRequest struct {
	DryRun *bool     `json:"dryRun,omitempty"`
	Now    time.Time `json:"now,omitzero"`
}

// DetailType is "Scheduled Event", the schedule's detail-type.
func (SweepRequest) DetailType() string { return TypeScheduledEvent }

// DeploymentFailed is the detail of "Deployment Failed": a promoted digest could not be
// handed to its environment's targets (the promoter's last attempt), or an ECS deployment
// of it failed and was rolled back.
type DeploymentFailed struct {
	RequestID  string `json:"requestId,omitempty"`
	Env        string `json:"env"`
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	// Target names what failed (an ECS service), when one did.
	Target string `json:"target,omitempty"`
	Reason string `json:"reason"`
}

// DetailType is "Deployment Failed".
func (DeploymentFailed) DetailType() string { return TypeDeploymentFailed }

// ReleaseDeployed is the detail of "Release Deployed": what runs in an environment is the
// release's digest. For an ECS service it is sent when the service's deployment of the
// digest completed (SERVICE_DEPLOYMENT_COMPLETED); for SSM parameters and Lambda aliases,
// whose update is the outcome, when the promoter handed the release over.
type ReleaseDeployed struct {
	// RequestID names the promotion or rollback that handed it over, when known.
	RequestID  string `json:"requestId,omitempty"`
	Env        string `json:"env"`
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	// Targets name what runs it (cluster/service/container, function:alias, parameter).
	Targets []string `json:"targets"`
	// DeploymentID is the ECS deployment that completed, for an ECS service.
	DeploymentID string `json:"deploymentId,omitempty"`
}

// DetailType is "Release Deployed".
func (ReleaseDeployed) DetailType() string { return TypeReleaseDeployed }
