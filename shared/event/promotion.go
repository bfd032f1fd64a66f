package event

// Audit actions of the promoter beyond audit.go's: terminal outcomes of a request and
// stored rollbacks.
const (
	// ActionPromotionSuperseded: the copy finished, but the pointer held a newer approval.
	ActionPromotionSuperseded = "promotion.superseded"
	// ActionPromotionFailed: the last attempt failed; the request ended failed.
	ActionPromotionFailed = "promotion.failed"
	// ActionRollbackRefused: a "Rollback Requested" with no stored rollback behind it.
	ActionRollbackRefused = "rollback.refused"
)

// PromotionSuperseded is the detail of "Promotion Superseded": an approved digest was
// copied into env, but env's release pointer already held a newer approval, so the pointer
// stayed. The copy is left in place (a rollback may point at it).
type PromotionSuperseded struct {
	RequestID  string `json:"requestId"`
	Env        string `json:"env"`
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Tag        string `json:"tag,omitempty"`
	// Current is the digest env runs, and CurrentRequestID the newer approval behind it.
	Current          string `json:"current"`
	CurrentRequestID string `json:"currentRequestId"`
}

// DetailType is "Promotion Superseded".
func (PromotionSuperseded) DetailType() string { return TypePromotionSuperseded }
