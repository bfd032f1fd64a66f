package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/regflow/regflow/shared/route"
)

// eventPattern renders a routing-table pattern as CDK's EventPattern; the template's
// EventPattern JSON is then exactly route.Pattern.JSON.
func eventPattern(p *route.Pattern) (*awsevents.EventPattern, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	out := &awsevents.EventPattern{}
	if len(p.Sources) > 0 {
		out.Source = jsii.Strings(p.Sources...)
	}
	if len(p.DetailTypes) > 0 {
		out.DetailType = jsii.Strings(p.DetailTypes...)
	}
	if len(p.Accounts) > 0 {
		out.Account = jsii.Strings(p.Accounts...)
	}
	if len(p.Detail) > 0 {
		d, err := p.DetailMap()
		if err != nil {
			return nil, err
		}
		out.Detail = &d
	}
	return out, nil
}

// forwardingRoute is the routing table's rule that sends an account's registry events
// from its default bus to the regflow bus.
func forwardingRoute(p *plan) (route.Route, error) {
	for _, r := range route.Table(p.cfg) {
		if r.Forward {
			return r, nil
		}
	}
	return route.Route{}, fmt.Errorf("the routing table has no forwarding rule")
}

// forwardingRole is the role EventBridge uses to forward registry events to the regflow
// bus: it may put only what the forwarding rule matches (AWS sources regflow consumes).
// The EventBus target would add an unconditioned PutEvents grant of its own, so it gets
// the role without policy updates.
func forwardingRole(stack awscdk.Stack, bus *string, fwd route.Route) awsiam.IRole {
	role := awsiam.NewRole(stack, jsii.String(fwd.ID+"EventsRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil),
		Description: jsii.String("EventBridge forwards registry events to the regflow bus"),
	})
	role.AddToPolicy(putEventsStatement(bus, fwd.Pattern.Sources, fwd.Pattern.DetailTypes))
	return role.WithoutPolicyUpdates(nil)
}
