package localruntime

import (
	"encoding/json"
	"time"

	"github.com/regflow/regflow/shared/ecsevent"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/eventq"
)

func newUUID() string { return eventq.NewID() }

// deploymentDetail is the detail ECS sends, field for field as in its samples.
type deploymentDetail struct {
	EventType    string `json:"eventType"`
	EventName    string `json:"eventName"`
	DeploymentID string `json:"deploymentId"`
	UpdatedAt    string `json:"updatedAt"`
	Reason       string `json:"reason"`
}

// emitDeployment queues an "ECS Deployment State Change" for a service (s.mu held).
func (s *Server) emitDeployment(serviceARN, name, deploymentID, reason string, at time.Time) {
	if s.opts.OnEvent == nil {
		return
	}
	typ := ecsevent.TypeInfo
	if name == ecsevent.Failed {
		typ = ecsevent.TypeError
	}
	d, err := json.Marshal(deploymentDetail{EventType: typ, EventName: name, DeploymentID: deploymentID, UpdatedAt: at.UTC().Format(time.RFC3339), Reason: reason})
	if err != nil {
		s.log.Error("encode ECS event detail", "err", err)
		return
	}
	ev, err := json.Marshal(event.Envelope{
		Version: "0", ID: newUUID(), DetailType: event.TypeECSDeployment, Source: event.SourceECS,
		AccountID: s.account, Time: at.UTC().Truncate(time.Second), Region: s.region,
		Resources: []string{serviceARN}, Detail: d,
	})
	if err != nil {
		s.log.Error("encode ECS event", "err", err)
		return
	}
	s.events.Push(ev)
}
