package localstack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/regflow/regflow/shared/awsruntime"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/local/localruntime"
	"github.com/regflow/regflow/shared/sweep"
)

// startRuntime starts env's local ECS, Lambda and SSM, resolving tags of env's registry
// through its local ECR and publishing the ECS deployment events on the bus.
func (s *Stack) startRuntime(ctx context.Context, name string, o Options) error {
	env := s.Config.Environments[name]
	srv, err := localruntime.New(localruntime.Options{
		Account: env.Account, Region: env.Region, Clock: o.Clock, FaultSeed: o.FaultSeed,
		DeploymentDelay: o.DeploymentDelay,
		ResolveImage:    s.resolver(name),
		OnEvent: func(ctx context.Context, event []byte) {
			s.delivered.Add(1)
			_ = s.Bus.Publish(ctx, event)
		},
	})
	if err != nil {
		return fmt.Errorf("local ECS, Lambda and SSM for %s: %w", name, err)
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("start local ECS, Lambda and SSM for %s: %w", name, err)
	}
	s.Runtimes[name] = srv
	return nil
}

// resolver resolves <env's registry>/<repo>:<tag> to its digest as ECS does when it pulls;
// images of other registries run without a digest.
func (s *Stack) resolver(env string) func(ctx context.Context, image string) (string, error) {
	return func(ctx context.Context, image string) (string, error) {
		srv := s.ECR[env]
		rest, ok := strings.CutPrefix(image, srv.Host()+"/")
		if !ok {
			return "", nil
		}
		repo, tag := rest, "latest"
		if i := strings.LastIndex(rest, ":"); i >= 0 {
			repo, tag = rest[:i], rest[i+1:]
		}
		out, err := s.ECRClient(env).DescribeImages(ctx, &ecrsdk.DescribeImagesInput{
			RepositoryName: aws.String(repo), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}},
		})
		if err != nil {
			return "", fmt.Errorf("CannotPullContainerError: %s: %w", image, err)
		}
		if len(out.ImageDetails) == 0 {
			return "", fmt.Errorf("CannotPullContainerError: %s: not found", image)
		}
		return aws.ToString(out.ImageDetails[0].ImageDigest), nil
	}
}

// SettleDeployments waits until every local ECS deployment has completed or failed (on the
// stack's clock: a stopped clock must be advanced meanwhile), then until every event is
// handled.
func (s *Stack) SettleDeployments(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		n := 0
		for _, rt := range s.Runtimes {
			rt.Tick()
			n += rt.InProgress()
		}
		if n == 0 {
			return s.Settle(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d local ECS deployments still in progress: %w", n, ctx.Err())
		case <-tick.C:
		}
	}
}

// Runtime is env's deployment APIs (SSM, ECS, Lambda) over its local control planes, with
// the same adapter the promoter uses in AWS.
func (s *Stack) Runtime(env string) (deploy.Runtime, error) {
	srv, ok := s.Runtimes[env]
	if !ok {
		return deploy.Runtime{}, fmt.Errorf("environment %q has no local ECS, Lambda and SSM (the source environment is deployed by CI)", env)
	}
	return awsruntime.New(s.runtimeConfig(env, srv.URL())), nil
}

// RuntimeConfig is an SDK config whose ECS, Lambda and SSM calls reach env's local ones.
func (s *Stack) RuntimeConfig(env string) aws.Config {
	url := ""
	if srv, ok := s.Runtimes[env]; ok {
		url = srv.URL()
	}
	return s.runtimeConfig(env, url)
}

func (s *Stack) runtimeConfig(env, url string) aws.Config {
	return aws.Config{
		Region:       s.Config.Environments[env].Region,
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(url),
		Retryer:      localRetryer,
	}
}

// SeedTargets creates, in env's local ECS and Lambda, what env's deploy targets for repo
// name, running image: each ECS cluster and service (a task definition with the target's
// container, the deployment circuit breaker with rollback on, one task) and each Lambda
// function with version 1 and the alias on it. What already exists is left as it is, so
// it can run at every start; the service's first deployment completes after the delay.
func (s *Stack) SeedTargets(ctx context.Context, env, repo, image string) error {
	if _, ok := s.Runtimes[env]; !ok {
		return fmt.Errorf("environment %q has no local ECS, Lambda and SSM", env)
	}
	cfg := s.RuntimeConfig(env)
	ecsAPI, lambdaAPI := ecs.NewFromConfig(cfg), lambda.NewFromConfig(cfg)
	for _, t := range s.Config.Environments[env].Deploy.TargetsFor(repo) {
		switch {
		case t.ECS != nil:
			if err := seedService(ctx, ecsAPI, *t.ECS, s.Config.Environments[env].Account, image); err != nil {
				return fmt.Errorf("seed ECS service %s/%s in %s: %w", t.ECS.Cluster, t.ECS.Service, env, err)
			}
		case t.Lambda != nil:
			if err := seedFunction(ctx, lambdaAPI, *t.Lambda, s.Config.Environments[env].Account, image); err != nil {
				return fmt.Errorf("seed Lambda function %s:%s in %s: %w", t.Lambda.Function, t.Lambda.Alias, env, err)
			}
		}
	}
	return nil
}

func seedService(ctx context.Context, c *ecs.Client, t config.ECSTarget, account, image string) error {
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(t.Cluster)}); err != nil {
		return err
	}
	have, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(t.Cluster), Services: []string{t.Service}})
	if err != nil {
		return err
	}
	if len(have.Services) > 0 {
		return nil
	}
	td, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(t.Service), Cpu: aws.String("256"), Memory: aws.String("512"), NetworkMode: ecstypes.NetworkModeAwsvpc,
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		ExecutionRoleArn:        aws.String("arn:aws:iam::" + account + ":role/" + t.Service + "-execution"),
		ContainerDefinitions:    []ecstypes.ContainerDefinition{{Name: aws.String(t.Container), Image: aws.String(image), Essential: aws.Bool(true)}},
	})
	if err != nil {
		return err
	}
	_, err = c.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String(t.Cluster), ServiceName: aws.String(t.Service), TaskDefinition: td.TaskDefinition.TaskDefinitionArn,
		DesiredCount: aws.Int32(1), LaunchType: ecstypes.LaunchTypeFargate,
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
	})
	return err
}

func seedFunction(ctx context.Context, c *lambda.Client, t config.LambdaTarget, account, image string) error {
	_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(t.Function)})
	var nf *lambdatypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String(t.Function), PackageType: lambdatypes.PackageTypeImage, Publish: true,
			Role: aws.String("arn:aws:iam::" + account + ":role/" + t.Function), Code: &lambdatypes.FunctionCode{ImageUri: aws.String(image)},
		}); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	_, err = c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(t.Function), Name: aws.String(t.Alias)})
	if !errors.As(err, &nf) {
		return err
	}
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(t.Function), Name: aws.String(t.Alias), FunctionVersion: aws.String("1")})
	return err
}

// InUse reads what runs in t's account from the local ECS and Lambda of the environment
// living there, as the sweeper does in AWS; a registry without them (the source
// environment's: CI deploys it) reads nothing, and the sweep report says so.
func (s *Stack) InUse(_ context.Context, t sweep.Target) (sweep.InUse, error) {
	for _, name := range s.Config.PromotionPath {
		e := s.Config.Environments[name]
		srv, ok := s.Runtimes[name]
		if !ok || e.Account != t.Account || e.Region != t.Region {
			continue
		}
		cfg := s.runtimeConfig(name, srv.URL())
		return awsruntime.InUse{ECS: ecs.NewFromConfig(cfg), Lambda: lambda.NewFromConfig(cfg), Registry: s.ECR[name].Host()}, nil
	}
	return nil, fmt.Errorf("%s has no local ECS and Lambda: %w", t, sweep.ErrNoInUse)
}
