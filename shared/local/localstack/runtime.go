package localstack

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/regflow/regflow/shared/awsruntime"
	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/local/localruntime"
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
		Retryer:      func() aws.Retryer { return retry.NewStandard() },
	}
}
