// Package bus is the publisher of regflow's events on its EventBridge bus in AWS
// (aws-sdk-go-v2 PutEvents, retried per entry).
package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/regflow/regflow/shared/event"
)

// PutEventsAPI is the part of the EventBridge client the publisher uses.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// EventBridge publishes regflow events to the regflow bus. It takes the same
// event.Message as localbus.Async, so a use case runs unchanged on either.
type EventBridge struct {
	api PutEventsAPI
	bus string
	// attempts bounds tries of an entry EventBridge failed with a transient code.
	attempts int
	backoff  time.Duration
}

// NewEventBridge returns a publisher to the named bus (name or ARN).
func NewEventBridge(api PutEventsAPI, bus string) *EventBridge {
	return &EventBridge{api: api, bus: bus, attempts: 3, backoff: 50 * time.Millisecond}
}

// Publish puts one event. PutEvents can succeed as a call yet fail the entry
// (FailedEntryCount); a throttled or internal failure is retried a few times, any
// other is returned with EventBridge's code.
func (p *EventBridge) Publish(ctx context.Context, m event.Message) error {
	ev, err := m.Envelope()
	if err != nil {
		return fmt.Errorf("publish to EventBridge bus %s: %w", p.bus, err)
	}
	entry := types.PutEventsRequestEntry{
		EventBusName: aws.String(p.bus),
		Source:       aws.String(ev.Source),
		DetailType:   aws.String(ev.DetailType),
		Detail:       aws.String(string(ev.Detail)),
		Resources:    ev.Resources,
	}
	if !ev.Time.IsZero() {
		entry.Time = aws.Time(ev.Time)
	}
	for attempt := 1; ; attempt++ {
		out, err := p.api.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{entry}})
		if err != nil {
			return fmt.Errorf("put %q event on EventBridge bus %s: %w", ev.DetailType, p.bus, err)
		}
		if out.FailedEntryCount == 0 && len(out.Entries) == 1 && out.Entries[0].ErrorCode == nil {
			return nil
		}
		code, msg := "unknown", "EventBridge reported a failed entry without a result"
		if len(out.Entries) > 0 {
			code, msg = aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage)
		}
		if !transient(code) || attempt >= p.attempts {
			return fmt.Errorf("EventBridge bus %s refused the %q event (%s): %s", p.bus, ev.DetailType, code, msg)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("put %q event on EventBridge bus %s: %w (last entry error %s: %s)", ev.DetailType, p.bus, ctx.Err(), code, msg)
		case <-time.After(time.Duration(attempt) * p.backoff):
		}
	}
}

// transient entry error codes are worth another try; the rest (validation, missing
// bus, access denied) will fail the same way again.
func transient(code string) bool {
	switch code {
	case "ThrottlingException", "InternalException", "InternalFailure", "ServiceUnavailable":
		return true
	}
	return false
}
