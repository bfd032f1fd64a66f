// Package ecsevent decodes the "ECS Deployment State Change" events that Amazon ECS sends
// to EventBridge when a service deployment starts, completes or fails (the deployment
// circuit breaker rolled it back). It is pure: no AWS calls, no use case.
package ecsevent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/ecrevent"
	"github.com/regflow/regflow/shared/event"
)

// ErrMalformed is wrapped by every decoding error (event.ErrMalformed).
var ErrMalformed = event.ErrMalformed

// The deployment events' names, as ECS spells them.
const (
	InProgress = "SERVICE_DEPLOYMENT_IN_PROGRESS"
	Completed  = "SERVICE_DEPLOYMENT_COMPLETED"
	Failed     = "SERVICE_DEPLOYMENT_FAILED"
)

// The event types ECS gives them.
const (
	TypeInfo  = "INFO"
	TypeWarn  = "WARN"
	TypeError = "ERROR"
)

// Detail is the detail of an "ECS Deployment State Change" event. Only these fields are
// documented; fields ECS may add later are ignored rather than refused, so a new field
// in production does not stop deployments from being recorded.
type Detail struct {
	EventType    string    `json:"eventType"`
	EventName    string    `json:"eventName"`
	DeploymentID string    `json:"deploymentId"`
	UpdatedAt    time.Time `json:"updatedAt"`
	Reason       string    `json:"reason"`
	// ClusterArn is absent from the documented samples but present in some real events.
	ClusterArn string `json:"clusterArn,omitempty"`
}

// DeploymentStateChange is a decoded event: its envelope, the service it is about, and
// its detail.
type DeploymentStateChange struct {
	ecrevent.Envelope
	// ServiceARN is the envelope's resource (arn:aws:ecs:<region>:<account>:service/<cluster>/<name>).
	ServiceARN string
	// Cluster and Service are parsed from ServiceARN; Cluster is "" for an old-format ARN
	// (service/<name>) that names none.
	Cluster, Service string
	Detail           Detail
}

// Decode parses an event that must be an "ECS Deployment State Change" from aws.ecs.
func Decode(b []byte) (*DeploymentStateChange, error) {
	env, err := ecrevent.DecodeEnvelope(b)
	if err != nil {
		return nil, err
	}
	if env.Source != event.SourceECS || env.DetailType != event.TypeECSDeployment {
		return nil, fmt.Errorf("%w: expected source %s detail-type %q, got %s %q", ErrMalformed, event.SourceECS, event.TypeECSDeployment, env.Source, env.DetailType)
	}
	raw := bytes.TrimSpace(env.Detail)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("%w: %s detail is not a JSON object", ErrMalformed, env.DetailType)
	}
	var w struct {
		Detail
		UpdatedAt string `json:"updatedAt"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("%w: %s detail: %w", ErrMalformed, env.DetailType, err)
	}
	d := w.Detail
	if w.UpdatedAt != "" {
		at, err := time.Parse(time.RFC3339Nano, w.UpdatedAt)
		if err != nil {
			return nil, fmt.Errorf("%w: %s detail: updatedAt %q is not an RFC 3339 time", ErrMalformed, env.DetailType, w.UpdatedAt)
		}
		d.UpdatedAt = at
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"eventType", d.EventType}, {"eventName", d.EventName}, {"deploymentId", d.DeploymentID}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if d.UpdatedAt.IsZero() {
		missing = append(missing, "updatedAt")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s detail lacks %s", ErrMalformed, env.DetailType, strings.Join(missing, ", "))
	}
	switch d.EventName {
	case InProgress, Completed, Failed:
	default:
		return nil, fmt.Errorf("%w: eventName %q is not one of %s, %s, %s", ErrMalformed, d.EventName, InProgress, Completed, Failed)
	}
	switch d.EventType {
	case TypeInfo, TypeWarn, TypeError:
	default:
		return nil, fmt.Errorf("%w: eventType %q is not one of INFO, WARN, ERROR", ErrMalformed, d.EventType)
	}
	if len(env.Resources) != 1 {
		return nil, fmt.Errorf("%w: %s names %d resources, want the one service ARN", ErrMalformed, env.DetailType, len(env.Resources))
	}
	cluster, service, err := ParseServiceARN(env.Resources[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return &DeploymentStateChange{Envelope: *env, ServiceARN: env.Resources[0], Cluster: cluster, Service: service, Detail: d}, nil
}

// ParseServiceARN splits arn:aws:ecs:<region>:<account>:service/<cluster>/<service> (or the
// old service/<service>, which names no cluster).
func ParseServiceARN(arn string) (cluster, service string, err error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "ecs" || !strings.HasPrefix(parts[5], "service/") {
		return "", "", fmt.Errorf("resource %q is not an ECS service ARN (arn:aws:ecs:<region>:<account>:service/<cluster>/<service>)", arn)
	}
	names := strings.Split(strings.TrimPrefix(parts[5], "service/"), "/")
	switch {
	case len(names) == 1 && names[0] != "":
		return "", names[0], nil
	case len(names) == 2 && names[0] != "" && names[1] != "":
		return names[0], names[1], nil
	}
	return "", "", fmt.Errorf("resource %q is not an ECS service ARN (arn:aws:ecs:<region>:<account>:service/<cluster>/<service>)", arn)
}

// Succeeded tells whether the deployment reached its end successfully.
func (e *DeploymentStateChange) Succeeded() bool { return e.Detail.EventName == Completed }

// RollingBack tells an IN_PROGRESS event that the circuit breaker started (ECS says so
// only in the reason).
func (e *DeploymentStateChange) RollingBack() bool {
	return e.Detail.EventName == InProgress && strings.Contains(e.Detail.Reason, "circuit breaker: rolling back")
}
