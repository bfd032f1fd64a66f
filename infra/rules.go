package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
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
