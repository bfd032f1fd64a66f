package wiring

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/sweep"
	"github.com/regflow/regflow/shared/sweep/sweepsqs"
)

// Environment variables the infrastructure sets on the sweeper functions.
const (
	EnvSweepQueueURL = "REGFLOW_SWEEP_QUEUE_URL"
	EnvSweeperRole   = "REGFLOW_SWEEPER_ROLE"
)

// SweepRegistry adapts the ECR adapter to the sweep's Registry port.
func SweepRegistry(c *ecr.Client) sweep.Registry { return sweepRegistry{c} }

type sweepRegistry struct{ *ecr.Client }

func (r sweepRegistry) DeleteImages(ctx context.Context, repo string, digests []string) (sweep.Deletion, error) {
	res, err := r.Client.DeleteImages(ctx, repo, digests)
	d := sweep.Deletion{Deleted: res.Deleted, NotFound: res.NotFound}
	for _, x := range res.Referenced {
		d.Referenced = append(d.Referenced, sweep.Referenced{Digest: x.Digest, Parents: x.Parents, Reason: x.Reason})
	}
	for _, x := range res.Failed {
		d.Failed = append(d.Failed, sweep.Failure{Digest: x.Digest, Code: x.Code, Reason: x.Reason})
	}
	return d, err
}

// SweepRegistries returns the sweep's way to each registry: in the pipeline account
// with the function's own credentials, elsewhere as role (by name, default
// REGFLOW_SWEEPER_ROLE) in the target's account. One client per registry, with the
// sweep's adaptive retryer, so concurrent repositories share one rate limiter.
func (d *Deps) SweepRegistries(role string) func(context.Context, sweep.Target) (sweep.Registry, error) {
	if role == "" {
		role = os.Getenv(EnvSweeperRole)
	}
	var cache sync.Map // Target.Key() -> sweep.Registry
	return func(_ context.Context, t sweep.Target) (sweep.Registry, error) {
		if r, ok := cache.Load(t.Key()); ok {
			return r.(sweep.Registry), nil
		}
		awsCfg := d.AWS.Copy()
		awsCfg.Region = t.Region
		awsCfg.Retryer = ecr.SweepRetryer
		if t.Account != d.Config.Pipeline.Account {
			if role == "" {
				return nil, fmt.Errorf("registry %s is in another account than the pipeline's (%s): set %s to the role regflow may assume there", t, d.Config.Pipeline.Account, EnvSweeperRole)
			}
			arn := fmt.Sprintf("arn:%s:iam::%s:role/%s", partition(t.Region), t.Account, role)
			awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(d.AWS), arn,
				func(o *stscreds.AssumeRoleOptions) {
					o.RoleSessionName = "regflow-sweep-" + strings.ReplaceAll(t.Name, "+", "-")
					o.Duration = time.Hour
				}))
		}
		r := SweepRegistry(ecr.New(ecrsdk.NewFromConfig(awsCfg), ""))
		actual, _ := cache.LoadOrStore(t.Key(), r)
		return actual.(sweep.Registry), nil
	}
}

func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	default:
		return "aws"
	}
}

// Sweeper is the sweep use case configured from the deployment.
func (d *Deps) Sweeper() *sweep.Sweeper {
	return &sweep.Sweeper{
		Retention:    d.Config.Retention,
		Repositories: d.Config.Repositories,
		Audit:        d.Store,
		Cache:        d.Store,
		Log:          d.Log,
	}
}

// SweepFinisher posts the summary to the alert channel.
func (d *Deps) SweepFinisher() *sweep.Finisher {
	return &sweep.Finisher{Store: d.Store, Notifier: d.AlertNotifier(), Publisher: d.Publisher(), Now: time.Now, Log: d.Log}
}

// SweepWorker is the sweepworker function's use case.
func (d *Deps) SweepWorker() *sweep.Worker {
	return &sweep.Worker{
		Sweeper: d.Sweeper(), Registries: d.SweepRegistries(""), Protection: d.Store,
		Store: d.Store, Finisher: d.SweepFinisher(), Log: d.Log,
	}
}

// SweepPlanner is the sweeper function's use case: batches go to the queue in
// REGFLOW_SWEEP_QUEUE_URL, or, without one, straight to an in-process worker.
func (d *Deps) SweepPlanner() *sweep.Planner {
	var q sweep.Queue
	if url := os.Getenv(EnvSweepQueueURL); url != "" {
		q = &sweepsqs.Queue{API: sqs.NewFromConfig(d.AWS), URL: url}
	} else {
		q = &sweep.InlineQueue{Worker: d.SweepWorker(), Concurrency: 1}
	}
	return &sweep.Planner{
		Targets: sweep.Targets(d.Config), Sweeper: d.Sweeper(), Registries: d.SweepRegistries(""),
		Store: d.Store, Queue: q, Finisher: d.SweepFinisher(), Now: time.Now, Log: d.Log,
	}
}
