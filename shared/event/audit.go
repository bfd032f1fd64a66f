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

	// sweeper
	ActionImageDeleted = "image.deleted"
	// ActionDeleteFailed follows an image.deleted entry when the registry refused the delete.
	ActionDeleteFailed = "image.delete-failed"
)

// ActionRequest names the scan gate's audit entry of a request entering status
// (a regflow.Status*): "request.blocked", "request.pending", …
func ActionRequest(status string) string { return "request." + status }
