// Package event is regflow's event vocabulary: every source and detail-type regflow
// publishes or consumes, the detail struct of each regflow event, the audit action
// names, and the EventBridge envelope (aws-lambda-go's) with a deterministic id.
// Publishers take a Message; the bus adapters encode it once.
package event

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Sources of the events regflow publishes or consumes.
const (
	SourceRegflow   = "regflow"
	SourceECR       = "aws.ecr"
	SourceInspector = "aws.inspector2"
	SourceECS       = "aws.ecs"
	// SourceSchedule is EventBridge Scheduler's and scheduled rules' source.
	SourceSchedule = "aws.events"
)

// Detail-types on the regflow bus (source regflow unless noted). events/README.md and
// events/<function>/README.md document each schema.
const (
	TypePromotionRequested      = "Promotion Requested"
	TypePromotionApproved       = "Promotion Approved"
	TypePromotionRejected       = "Promotion Rejected"
	TypeImagePromoted           = "Image Promoted"
	TypePromotionSuperseded     = "Promotion Superseded"
	TypePromotionFailed         = "Promotion Failed"
	TypeTagPolicyViolation      = "Tag Policy Violation"
	TypeRollbackRequested       = "Rollback Requested"
	TypeReleaseRolledBack       = "Release Rolled Back"
	TypeReleaseDeployed         = "Release Deployed"
	TypeDeploymentFailed        = "Deployment Failed"
	TypeRetentionSweepCompleted = "Retention Sweep Completed"
	// TypeVerificationResult comes from deployment pipelines, with their own source.
	TypeVerificationResult = "Verification Result"
)

// VerificationSource is the event source a principal the config names for env (its
// verificationReporters) sends "Verification Result" with. The source is the part of an
// event IAM can see, so the bus policy lets only those principals use it, and scangate
// accepts a report on env from the pipeline account only under env's source.
func VerificationSource(env string) string { return "regflow.verification." + env }

// Detail-types AWS emits that regflow consumes.
const (
	TypeImageAction    = "ECR Image Action"            // source aws.ecr
	TypeImageScan      = "ECR Image Scan"              // source aws.ecr (basic scanning)
	TypeInspectorScan  = "Inspector2 Scan"             // source aws.inspector2 (enhanced scanning)
	TypeECSDeployment  = "ECS Deployment State Change" // source aws.ecs
	TypeScheduledEvent = "Scheduled Event"             // source aws.events
	// TypeAPICall is CloudTrail's record of an API call (source aws.ecr for ECR's PutImage).
	TypeAPICall = "AWS API Call via CloudTrail"
)

// Envelope is an EventBridge event as targets receive it.
type Envelope = events.EventBridgeEvent

// Detail is the detail of a regflow event; it names its detail-type.
type Detail interface {
	DetailType() string
}

// Message is one regflow event to publish. Key names the effect (for example the
// request id and decision): the event id derives from the detail-type and Key, so a
// retried publish carries the same id.
type Message struct {
	Detail Detail
	Key    string
	At     time.Time
}

// DetailType is the message's detail-type ("" without a detail).
func (m Message) DetailType() string {
	if m.Detail == nil {
		return ""
	}
	return m.Detail.DetailType()
}

// Envelope returns the message as EventBridge delivers it from source regflow, with
// its deterministic id and its time in whole seconds. EventBridge assigns its own id,
// account and region in AWS.
func (m Message) Envelope() (Envelope, error) {
	dt := m.DetailType()
	if dt == "" {
		return Envelope{}, errors.New("event needs a detail with a detail-type")
	}
	d, err := json.Marshal(m.Detail)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode %q detail: %w", dt, err)
	}
	if !isObject(d) {
		return Envelope{}, fmt.Errorf("event %q: detail must encode as a JSON object", dt)
	}
	return Envelope{
		Version: "0", ID: ID(dt, m.Key), DetailType: dt, Source: SourceRegflow,
		Time: m.At.UTC().Truncate(time.Second), Resources: []string{}, Detail: d,
	}, nil
}

// Encode returns the JSON of the message's envelope.
func (m Message) Encode() ([]byte, error) {
	e, err := m.Envelope()
	if err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// ID derives an event id in UUID form from the detail-type and the effect's key.
func ID(detailType, key string) string {
	sum := sha256.Sum256([]byte(detailType + "\x00" + key))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Publisher puts regflow's events on its bus: bus.EventBridge in AWS, localbus.Async on
// a laptop. Every use case that announces something takes one.
type Publisher interface {
	Publish(ctx context.Context, m Message) error
}

// ErrMalformed is wrapped by every error about an event that is not what it claims to be.
var ErrMalformed = errors.New("malformed event")

// Parse decodes an event and checks that it names a source, a detail-type and a JSON
// object detail.
func Parse(b []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("event is not JSON in EventBridge's shape: %w", err)
	}
	if e.Source == "" || e.DetailType == "" {
		return Envelope{}, errors.New("event lacks source or detail-type")
	}
	if !isObject(e.Detail) {
		return Envelope{}, fmt.Errorf("event %q: detail must be a JSON object", e.DetailType)
	}
	return e, nil
}

func isObject(b []byte) bool {
	var obj map[string]json.RawMessage
	return json.Unmarshal(b, &obj) == nil && obj != nil
}
