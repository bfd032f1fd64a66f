package event

// Audit actions: the Action of every regflow.AuditEntry, by the use case that writes it.
const (
	// tagguard
	ActionTagViolation  = "tag.violation"
	ActionTagRemoved    = "tag.removed"
	ActionRepoImmutable = "repository.immutable"
	ActionImageRecorded = "image.recorded"
	ActionEventIgnored  = "event.ignored"

	// scangate
	ActionVerificationPassed = "verification.passed"
	ActionVerificationFailed = "verification.failed"
	// ActionCustodyRefused: a digest that did not reach its environment by promotion opens nothing.
	ActionCustodyRefused = "custody.refused"
	// ActionImagePushedBy records CloudTrail's PutImage identity (the entry's Actor).
	ActionImagePushedBy = "image.pushed"

	// approvals
	ActionApprovalVoted    = "approval.voted"    // one approval of several needed
	ActionApprovalApproved = "approval.approved" // the request reached its approvals
	ActionApprovalRejected = "approval.rejected"
	ActionApprovalExpired  = "approval.expired"
	ActionApprovalRefused  = "approval.refused" // a click that changed nothing, and why

	// promoter
	ActionPromotionRefused       = "promotion.refused"
	ActionPromotionAttemptFailed = "promotion.attempt-failed"
	ActionPromotionTagConflict   = "promotion.tag-conflict"
	ActionImagePromoted          = "image.promoted"
	ActionReleaseRolledBack      = "release.rolled-back"
	// ActionDeployed: a release was handed to a target (SSM parameter, ECS service, Lambda alias).
	ActionDeployed = "release.deployed"
	// ActionDeploymentFailed: a promoted release could not be handed to its targets.
	ActionDeploymentFailed = "release.deployment-failed"
	// ActionDeploymentCompleted: an ECS deployment of the release's digest completed.
	ActionDeploymentCompleted = "release.deployment-completed"
	// ActionDeploymentRolledBack: an ECS deployment of the release's digest failed and the
	// circuit breaker rolled the service back.
	ActionDeploymentRolledBack = "release.deployment-rolled-back"

	// sweeper: each entry is written from what the delete call answered.
	ActionImageDeleted = "image.deleted"
	// ActionImageGone: the sweep's delete found the image gone (an earlier attempt of the
	// same run deleted it and lost the answer, or someone else did). It shares the ID of
	// the run's image.deleted entry, so a retry after a recorded deletion adds nothing.
	ActionImageGone = "image.already-gone"
	// ActionDeleteFailed: the registry refused the image's delete, or the whole call failed.
	ActionDeleteFailed = "image.delete-failed"
)

// ActionRequest names the scan gate's audit entry of a request entering status
// (a regflow.Status*): "request.blocked", "request.pending", …
func ActionRequest(status string) string { return "request." + status }
