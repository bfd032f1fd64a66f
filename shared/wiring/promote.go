package wiring

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/regflow/regflow/shared/bus"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/promoter"
)

// PromotionEndpoint reaches env's registry for one promotion: by assuming the environment's
// promotion role with its external id and a session name that carries the request id
// (CloudTrail shows it), or with the function's own credentials for the source environment.
func (d *Deps) PromotionEndpoint(_ context.Context, env, requestID string) (promoter.Endpoint, error) {
	e, ok := d.Config.Environments[env]
	if !ok {
		return promoter.Endpoint{}, fmt.Errorf("environment %q is not configured", env)
	}
	awsCfg := d.AWS.Copy()
	awsCfg.Region = e.Region
	// The role is assumed whenever one is configured, in the pipeline account too: the
	// promoter's own role may only pull.
	if e.PromotionRole != "" {
		session := "regflow-" + requestID
		if len(session) > 64 {
			session = session[:64]
		}
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(d.AWS), e.PromotionRole,
			func(o *stscreds.AssumeRoleOptions) {
				o.ExternalID = aws.String(e.ExternalID)
				o.RoleSessionName = session
			}))
	}
	return promoter.Endpoint{Registry: ecr.New(ecrsdk.NewFromConfig(awsCfg), ""), Host: e.Registry}, nil
}

// Publisher puts events on the regflow bus.
func (d *Deps) Publisher() *bus.EventBridge {
	return bus.NewEventBridge(eventbridge.NewFromConfig(d.AWS), d.Config.Pipeline.EventBus)
}
