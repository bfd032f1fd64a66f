// Package awsruntime is the deploy package's ports over AWS: SSM parameters, ECS services
// and Lambda functions of one environment account (reached with its deployment role).
package awsruntime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/regflow/regflow/shared/deploy"
)

// New returns an account's runtime from cfg (credentials of the deployment role).
func New(cfg aws.Config) deploy.Runtime {
	return deploy.Runtime{
		Parameters: Parameters{API: ssm.NewFromConfig(cfg)},
		Services:   Services{API: ecs.NewFromConfig(cfg)},
		Functions:  Functions{API: lambda.NewFromConfig(cfg), UpdateTimeout: 5 * time.Minute},
	}
}

// Parameters are SSM parameters.
type Parameters struct{ API *ssm.Client }

// GetParameter returns a parameter's value, or deploy.ErrNotFound.
func (p Parameters) GetParameter(ctx context.Context, name string) (string, error) {
	out, err := p.API.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return "", fmt.Errorf("SSM parameter %s: %w", name, deploy.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read SSM parameter %s: %w", name, err)
	}
	return aws.ToString(out.Parameter.Value), nil
}

// PutParameter writes a new version of a String parameter.
func (p Parameters) PutParameter(ctx context.Context, name, value string) (int64, error) {
	out, err := p.API.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
		Description: aws.String("regflow: the release of this repository in this environment (history: its versions)"),
	})
	if err != nil {
		return 0, fmt.Errorf("write SSM parameter %s: %w", name, err)
	}
	return out.Version, nil
}

// Services are ECS services.
type Services struct{ API *ecs.Client }

// ServiceTaskDefinition is the task definition of the service's primary deployment.
func (s Services) ServiceTaskDefinition(ctx context.Context, cluster, service string) (deploy.TaskDefinition, error) {
	out, err := s.API.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}})
	if err != nil {
		return deploy.TaskDefinition{}, fmt.Errorf("describe ECS service %s/%s: %w", cluster, service, err)
	}
	if len(out.Services) == 0 {
		reason := "MISSING"
		if len(out.Failures) > 0 {
			reason = aws.ToString(out.Failures[0].Reason)
		}
		return deploy.TaskDefinition{}, fmt.Errorf("ECS service %s/%s (%s): %w", cluster, service, reason, deploy.ErrNotFound)
	}
	// The service's task definition is the one UpdateService set (or the deployment
	// circuit breaker restored): what the service is meant to run.
	td, err := s.describe(ctx, aws.ToString(out.Services[0].TaskDefinition))
	if err != nil {
		return td, err
	}
	for _, d := range out.Services[0].Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			td.Deployment = aws.ToString(d.Id)
		}
	}
	return td, nil
}

// LatestTaskDefinition is the newest ACTIVE revision of family (ECS resolves a bare family).
func (s Services) LatestTaskDefinition(ctx context.Context, family string) (deploy.TaskDefinition, error) {
	return s.describe(ctx, family)
}

func (s Services) describe(ctx context.Context, ref string) (deploy.TaskDefinition, error) {
	out, err := s.API.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(ref), Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags},
	})
	if err != nil {
		return deploy.TaskDefinition{}, fmt.Errorf("describe task definition %s: %w", ref, err)
	}
	td := out.TaskDefinition
	images := map[string]string{}
	for _, c := range td.ContainerDefinitions {
		images[aws.ToString(c.Name)] = aws.ToString(c.Image)
	}
	return deploy.TaskDefinition{
		ARN: aws.ToString(td.TaskDefinitionArn), Family: aws.ToString(td.Family), Revision: int(td.Revision),
		Images: images, Source: source{td: *td, tags: out.Tags},
	}, nil
}

type source struct {
	td   ecstypes.TaskDefinition
	tags []ecstypes.Tag
}

// Register registers a revision of from with one container's image changed: every field
// RegisterTaskDefinition takes is carried over as described.
func (s Services) Register(ctx context.Context, from deploy.TaskDefinition, container, image string) (deploy.TaskDefinition, error) {
	src, ok := from.Source.(source)
	if !ok {
		return deploy.TaskDefinition{}, fmt.Errorf("task definition %s was not described by this adapter", from.ARN)
	}
	td := src.td
	defs := make([]ecstypes.ContainerDefinition, len(td.ContainerDefinitions))
	copy(defs, td.ContainerDefinitions)
	found := false
	for i := range defs {
		if aws.ToString(defs[i].Name) == container {
			defs[i].Image, found = aws.String(image), true
		}
	}
	if !found {
		return deploy.TaskDefinition{}, fmt.Errorf("task definition %s has no container %q", from.ARN, container)
	}
	in := &ecs.RegisterTaskDefinitionInput{
		Family: td.Family, ContainerDefinitions: defs, Cpu: td.Cpu, Memory: td.Memory, NetworkMode: td.NetworkMode,
		RequiresCompatibilities: td.RequiresCompatibilities, ExecutionRoleArn: td.ExecutionRoleArn, TaskRoleArn: td.TaskRoleArn,
		Volumes: td.Volumes, PlacementConstraints: td.PlacementConstraints, ProxyConfiguration: td.ProxyConfiguration,
		RuntimePlatform: td.RuntimePlatform, EphemeralStorage: td.EphemeralStorage, IpcMode: td.IpcMode, PidMode: td.PidMode,
		EnableFaultInjection: td.EnableFaultInjection,
	}
	if len(src.tags) > 0 {
		in.Tags = src.tags
	}
	out, err := s.API.RegisterTaskDefinition(ctx, in)
	if err != nil {
		return deploy.TaskDefinition{}, fmt.Errorf("register task definition %s: %w", aws.ToString(td.Family), err)
	}
	images := map[string]string{}
	for _, c := range out.TaskDefinition.ContainerDefinitions {
		images[aws.ToString(c.Name)] = aws.ToString(c.Image)
	}
	return deploy.TaskDefinition{
		ARN: aws.ToString(out.TaskDefinition.TaskDefinitionArn), Family: aws.ToString(out.TaskDefinition.Family),
		Revision: int(out.TaskDefinition.Revision), Images: images, Source: source{td: *out.TaskDefinition, tags: out.Tags},
	}, nil
}

// UpdateService deploys taskDefinition to the service (ECS rolls it out; the deployment
// circuit breaker, if on, rolls back and the environment stack forwards the outcome).
func (s Services) UpdateService(ctx context.Context, cluster, service, taskDefinition string) error {
	if _, err := s.API.UpdateService(ctx, &ecs.UpdateServiceInput{
		Cluster: aws.String(cluster), Service: aws.String(service), TaskDefinition: aws.String(taskDefinition),
	}); err != nil {
		return fmt.Errorf("update ECS service %s/%s: %w", cluster, service, err)
	}
	return nil
}

// Functions are Lambda functions packaged as images.
type Functions struct {
	API           *lambda.Client
	UpdateTimeout time.Duration
}

func notFound(err error) bool {
	var nf *lambdatypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

// AliasVersion is the version alias points at.
func (f Functions) AliasVersion(ctx context.Context, function, alias string) (string, error) {
	out, err := f.API.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(function), Name: aws.String(alias)})
	if notFound(err) {
		return "", fmt.Errorf("alias %s of Lambda function %s: %w", alias, function, deploy.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read Lambda alias %s:%s: %w", function, alias, err)
	}
	return aws.ToString(out.FunctionVersion), nil
}

// VersionImage is the image a version runs, resolved to its digest when Lambda says.
func (f Functions) VersionImage(ctx context.Context, function, version string) (string, error) {
	out, err := f.API.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(function), Qualifier: aws.String(version)})
	if err != nil {
		return "", fmt.Errorf("read Lambda function %s:%s: %w", function, version, err)
	}
	if out.Code == nil {
		return "", fmt.Errorf("version %s of Lambda function %s has no code location", version, function)
	}
	// regflow deploys by digest, so ImageUri names it; ResolvedImageUri is Lambda's
	// resolution of a tag (moto's is malformed: see the local stack's differences).
	if u := aws.ToString(out.Code.ImageUri); strings.Contains(u, "@sha256:") {
		return u, nil
	}
	return aws.ToString(out.Code.ResolvedImageUri), nil
}

// UpdateImage points $LATEST at image and waits for the update to finish.
func (f Functions) UpdateImage(ctx context.Context, function, image string) error {
	if _, err := f.API.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(function), ImageUri: aws.String(image)}); err != nil {
		return fmt.Errorf("update Lambda function %s's image: %w", function, err)
	}
	w := lambda.NewFunctionUpdatedV2Waiter(f.API, func(o *lambda.FunctionUpdatedV2WaiterOptions) { o.MinDelay, o.MaxDelay = time.Second, 10*time.Second })
	if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(function)}, f.UpdateTimeout); err != nil {
		return fmt.Errorf("wait for Lambda function %s's update: %w", function, err)
	}
	return nil
}

// PublishVersion publishes $LATEST.
func (f Functions) PublishVersion(ctx context.Context, function string) (string, error) {
	out, err := f.API.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(function), Description: aws.String("regflow")})
	if err != nil {
		return "", fmt.Errorf("publish a version of Lambda function %s: %w", function, err)
	}
	return aws.ToString(out.Version), nil
}

// MoveAlias points alias at version.
func (f Functions) MoveAlias(ctx context.Context, function, alias, version string) error {
	if _, err := f.API.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String(function), Name: aws.String(alias), FunctionVersion: aws.String(version)}); err != nil {
		return fmt.Errorf("move Lambda alias %s:%s to %s: %w", function, alias, version, err)
	}
	return nil
}
