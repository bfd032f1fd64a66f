package regflow

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// EventSource is the source of every event regflow puts on its bus.
const EventSource = "regflow"

// Detail-types on the regflow bus. events/README.md and events/<function>/README.md
// document each schema.
const (
	DetailPromotionRequested      = "Promotion Requested"
	DetailPromotionApproved       = "Promotion Approved"
	DetailPromotionRejected       = "Promotion Rejected"
	DetailImagePromoted           = "Image Promoted"
	DetailPromotionFailed         = "Promotion Failed"
	DetailTagPolicyViolation      = "Tag Policy Violation"
	DetailReleaseRolledBack       = "Release Rolled Back"
	DetailRetentionSweepCompleted = "Retention Sweep Completed"
	DetailVerificationResult      = "Verification Result"
	DetailRollbackRequested       = "Rollback Requested"
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
	// Decision is StatusApproved or StatusRejected.
	Decision string `json:"decision"`
	// DecidedBy is the Slack user id whose click closed the request.
	DecidedBy string `json:"decidedBy"`
	// Approvers are the Slack user ids that approved, in order (empty on rejection).
	Approvers   []string  `json:"approvers,omitempty"`
	RequestedBy string    `json:"requestedBy,omitempty"`
	At          time.Time `json:"at"`
}

// DecisionOf describes a decided request as an event detail and its detail-type.
func DecisionOf(r ApprovalRequest) (string, PromotionDecision, error) {
	var dt string
	switch r.Status {
	case StatusApproved:
		dt = DetailPromotionApproved
	case StatusRejected:
		dt = DetailPromotionRejected
	default:
		return "", PromotionDecision{}, fmt.Errorf("approval request %s is %s, not decided", r.ID, r.Status)
	}
	d := PromotionDecision{
		RequestID: r.ID, Env: r.Env, Repository: r.Repository, Digest: r.Digest, Tag: r.Tag, Commit: r.Commit,
		Decision: r.Status, DecidedBy: r.DecidedBy, RequestedBy: r.RequestedBy, At: r.DecidedAt.UTC(),
	}
	if r.Status == StatusApproved {
		for _, v := range r.Approvals {
			d.Approvers = append(d.Approvers, v.User)
		}
	}
	return dt, d, nil
}

// Event is an EventBridge event as targets receive it. regflow builds the same shape
// for the in-process bus, so one handler serves both.
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       time.Time       `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// NewEvent returns the JSON of a regflow event. key names the effect (for example the
// request id and decision); the event id derives from it, so a retried publish carries
// the same id. EventBridge assigns its own id, account and region in AWS.
func NewEvent(detailType, key string, at time.Time, detail any) ([]byte, error) {
	if detailType == "" {
		return nil, errors.New("event needs a detail-type")
	}
	d, err := json.Marshal(detail)
	if err != nil {
		return nil, fmt.Errorf("encode %q detail: %w", detailType, err)
	}
	sum := sha256.Sum256([]byte(detailType + "\x00" + key))
	h := hex.EncodeToString(sum[:16])
	id := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	return json.Marshal(Event{
		Version: "0", ID: id, DetailType: detailType, Source: EventSource,
		Time: at.UTC().Truncate(time.Second), Resources: []string{}, Detail: d,
	})
}

// ParseEvent decodes an event and checks that it names a source, a detail-type and a
// JSON object detail.
func ParseEvent(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("event is not JSON in EventBridge's shape: %w", err)
	}
	if e.Source == "" || e.DetailType == "" {
		return Event{}, errors.New("event lacks source or detail-type")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(e.Detail, &obj); err != nil || obj == nil {
		return Event{}, fmt.Errorf("event %q: detail must be a JSON object", e.DetailType)
	}
	return e, nil
}
