package localbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/route"
)

// Rule selects events by source and detail-type, as an EventBridge rule's pattern does.
// Empty fields match anything.
type Rule struct {
	Name        string
	Sources     []string
	DetailTypes []string
	// Match, when set, inspects the whole event for finer patterns (detail fields).
	Match func(event []byte) bool
	// Pattern, when set, must match too, with EventBridge's semantics (see route.Pattern).
	Pattern *route.Pattern
}

type target struct {
	rule Rule
	h    Handler
	// function marks regflow's functions (SubscribeRoutes): only they get the bus's
	// Delivery; observers such as tests see each event once.
	function bool
}

// Bus is an in-process event bus. Publish delivers to every matching target in
// order on the publisher's goroutine, so a test sees the effects when Publish returns.
type Bus struct {
	log      *slog.Logger
	mu       sync.RWMutex
	targets  []target
	inflight sync.WaitGroup
	// onError observes handler failures (the demo shows them; EventBridge would retry).
	onError func(rule string, err error)
	// account is what PutEvents would stamp on events that carry none (see AssignAccount).
	account string
	region  string
	// delivery and chance shape deliveries (see SetDelivery); chance is nil by default.
	delivery Delivery
	chance   *chance
}

// NewBus returns an empty bus.
func NewBus(log *slog.Logger, onError func(rule string, err error)) *Bus {
	return &Bus{log: log, onError: onError}
}

// Subscribe adds a target for events matching r.
func (b *Bus) Subscribe(r Rule, h Handler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.targets = append(b.targets, target{rule: r, h: h})
}

// SubscribeRoutes subscribes handlers[r.Function] for every route in routes that an
// event on the regflow bus can reach (route.Functions): the same patterns infra deploys.
// Scheduled and forwarding rules are left out: the local stack runs the sweep itself and
// every local registry publishes straight onto this bus. It subscribes nothing and names
// the route when a route's function has no handler.
func (b *Bus) SubscribeRoutes(routes []route.Route, handlers map[string]Handler) error {
	if err := route.Validate(routes); err != nil {
		return fmt.Errorf("subscribe routes: %w", err)
	}
	fns := route.Functions(routes)
	for _, r := range fns {
		if handlers[r.Function] == nil {
			return fmt.Errorf("subscribe routes: route %s (%s) targets function %q, which has no handler on the local bus", r.ID, r.Name, r.Function)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range fns {
		b.targets = append(b.targets, target{rule: Rule{Name: r.Name, Pattern: r.Pattern}, h: handlers[r.Function], function: true})
	}
	return nil
}

// AssignAccount makes Publish stamp account (and region, when given) on events that carry
// none, as EventBridge's PutEvents assigns the caller's account and the bus's region: the
// local stack's functions publish as the pipeline account, and the routes that check the
// account see it.
func (b *Bus) AssignAccount(account string, region ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.account = account
	if len(region) > 0 {
		b.region = region[0]
	}
}

type envelope struct {
	Source     string `json:"source"`
	DetailType string `json:"detail-type"`
	Account    string `json:"account"`
	Region     string `json:"region"`
}

// stamp sets the event's account and region where it has none.
func stamp(event []byte, account, region string) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(event, &fields); err != nil {
		return nil, fmt.Errorf("publish: event is not a JSON object: %w", err)
	}
	for k, v := range map[string]string{"account": account, "region": region} {
		var cur string
		if v == "" || (json.Unmarshal(fields[k], &cur) == nil && cur != "") {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		fields[k] = b
	}
	return json.Marshal(fields)
}

// Publish delivers event to every matching target and returns their errors joined.
func (b *Bus) Publish(ctx context.Context, event []byte) error {
	var env envelope
	if err := json.Unmarshal(event, &env); err != nil {
		return fmt.Errorf("publish: event is not JSON: %w", err)
	}
	b.mu.RLock()
	targets := append([]target(nil), b.targets...)
	account, region, delivery, chance := b.account, b.region, b.delivery, b.chance
	b.mu.RUnlock()
	if (env.Account == "" && account != "") || (env.Region == "" && region != "") {
		stamped, err := stamp(event, account, region)
		if err != nil {
			return err
		}
		event = stamped
		if env.Account == "" {
			env.Account = account
		}
	}
	// Decoded once for every pattern; an event that is not an object matches no pattern.
	decoded, _ := route.Decode(event)
	var errs []error
	for _, t := range targets {
		if !matches(t.rule, env, event, decoded) {
			continue
		}
		d, c := delivery, chance
		if !t.function {
			d, c = Delivery{}, nil
		}
		if err := b.deliver(ctx, d, c, t.h, event); err != nil {
			b.log.Error("event target failed", "rule", t.rule.Name, "detailType", env.DetailType, "error", err)
			if b.onError != nil {
				b.onError(t.rule.Name, err)
			}
			errs = append(errs, fmt.Errorf("%s: %w", t.rule.Name, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("event %q: %w", env.DetailType, errors.Join(errs...))
	}
	return nil
}

func matches(r Rule, env envelope, event []byte, decoded map[string]any) bool {
	return oneOf(r.Sources, env.Source) && oneOf(r.DetailTypes, env.DetailType) && (r.Match == nil || r.Match(event)) &&
		(r.Pattern == nil || r.Pattern.Matches(decoded))
}

func oneOf(set []string, v string) bool {
	if len(set) == 0 {
		return true
	}
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// PublishAsync delivers on a goroutine of its own, as EventBridge invokes targets
// asynchronously; Wait blocks until such deliveries are done.
func (b *Bus) PublishAsync(ctx context.Context, event []byte) {
	b.inflight.Add(1)
	go func() {
		defer b.inflight.Done()
		_ = b.Publish(context.WithoutCancel(ctx), event)
	}()
}

// Wait blocks until every PublishAsync delivery has finished.
func (b *Bus) Wait() { b.inflight.Wait() }

// Async is a publisher that hands events to a Bus without waiting for the targets,
// as EventBridge does: an approval click is answered before the promotion runs.
type Async struct{ Bus *Bus }

// Publish encodes m as EventBridge delivers it and delivers it in the background.
func (a Async) Publish(ctx context.Context, m event.Message) error {
	b, err := m.Encode()
	if err != nil {
		return fmt.Errorf("publish on the local bus: %w", err)
	}
	a.Bus.PublishAsync(ctx, b)
	return nil
}

// PublishJSON delivers an event already in EventBridge's JSON (what the local
// PutEvents endpoint hands on) in the background; it is a Handler.
func (a Async) PublishJSON(ctx context.Context, ev []byte) error {
	if !json.Valid(ev) {
		return fmt.Errorf("publish: event is not JSON")
	}
	a.Bus.PublishAsync(ctx, ev)
	return nil
}
