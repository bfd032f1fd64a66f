package awsruntime

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	inspectortypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/regflow/regflow/shared/sweep"
)

// InUse is sweep.InUse over an account's ECS and Lambda in one region: every cluster
// (not only the deploy targets: an image may run in a service regflow does not
// deploy), its running tasks and its services' task definitions, and every function
// packaged as an image with its $LATEST and aliased versions.
//
// Calls, for C clusters, S services, T running tasks, D distinct task definitions of the
// services, F functions and V versions they run: ListClusters ⌈C/100⌉, per cluster
// ListTasks ⌈T/100⌉ and ListServices ⌈S/100⌉, DescribeTasks ⌈T/100⌉, DescribeServices
// ⌈S/10⌉, DescribeTaskDefinition D; ListFunctions ⌈F/50⌉, ListAliases F, GetFunction V.
type InUse struct {
	ECS    *ecs.Client
	Lambda *lambda.Client
	// Registry is the registry's host (<account>.dkr.ecr.<region>.amazonaws.com): only
	// its images are returned.
	Registry string
	// Inspector, with Within set (config retention.inUseWithin; enhanced scanning on), adds
	// the images Amazon Inspector saw in use in the account within Within before Now:
	// ListCoverage filtered on the account, ECR images and ecrImageLastInUseAt, so only
	// images in use come back, ⌈N/200⌉ calls for N of them.
	Inspector *inspector2.Client
	Account   string
	Within    time.Duration
	Now       func() time.Time
}

// Running reads what runs now. Any failed call fails the read: the sweep then deletes
// nothing in the registry.
func (u InUse) Running(ctx context.Context) ([]sweep.Use, error) {
	var out []sweep.Use
	if u.ECS != nil {
		uses, err := u.ecsRunning(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, uses...)
	}
	if u.Lambda != nil {
		uses, err := u.lambdaRunning(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, uses...)
	}
	if u.Inspector != nil && u.Within > 0 {
		uses, err := u.inspectorInUse(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, uses...)
	}
	return out, nil
}

// inspectorInUse is every ECR image of the account Inspector saw in use since Now-Within.
func (u InUse) inspectorInUse(ctx context.Context) ([]sweep.Use, error) {
	now := time.Now()
	if u.Now != nil {
		now = u.Now()
	}
	eq := func(v string) []inspectortypes.CoverageStringFilter {
		return []inspectortypes.CoverageStringFilter{{Comparison: inspectortypes.CoverageStringComparisonEquals, Value: aws.String(v)}}
	}
	in := &inspector2.ListCoverageInput{MaxResults: aws.Int32(200), FilterCriteria: &inspectortypes.CoverageFilterCriteria{
		AccountId:           eq(u.Account),
		ResourceType:        eq(string(inspectortypes.CoverageResourceTypeAwsEcrContainerImage)),
		EcrImageLastInUseAt: []inspectortypes.CoverageDateFilter{{StartInclusive: aws.Time(now.Add(-u.Within))}},
	}}
	var out []sweep.Use
	for p := inspector2.NewListCoveragePaginator(u.Inspector, in); p.HasMorePages(); {
		pg, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the images Inspector saw in use (inspector2:ListCoverage): %w", err)
		}
		for _, r := range pg.CoveredResources {
			// arn:aws:ecr:<region>:<account>:repository/<name>/sha256:<hex>
			id := aws.ToString(r.ResourceId)
			i := strings.LastIndexByte(id, '/')
			j := strings.Index(id, ":repository/")
			if i < 0 || j < 0 || j+len(":repository/") > i || !strings.HasPrefix(id[i+1:], "sha256:") {
				continue
			}
			repo, digest := id[j+len(":repository/"):i], id[i+1:]
			where := "ECS or EKS, as Inspector saw it"
			if m := r.ResourceMetadata; m != nil && m.EcrImage != nil && m.EcrImage.LastInUseAt != nil {
				where += " last on " + m.EcrImage.LastInUseAt.UTC().Format("2006-01-02")
				if n := aws.ToInt64(m.EcrImage.InUseCount); n > 0 {
					where += fmt.Sprintf(" (%d now)", n)
				}
			}
			out = append(out, sweep.Use{Repository: repo, Digest: digest, Where: where})
		}
	}
	return out, nil
}

// image splits an image reference of the registry into repository, digest and tag;
// ok is false for another registry's image.
func (u InUse) image(ref string) (repo, digest, tag string, ok bool) {
	rest, ok := strings.CutPrefix(ref, u.Registry+"/")
	if !ok || rest == "" {
		return "", "", "", false
	}
	if r, d, found := strings.Cut(rest, "@"); found {
		return r, d, "", true
	}
	repo, tag = rest, "latest"
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		repo, tag = rest[:i], rest[i+1:]
	}
	return repo, "", tag, true
}

func lastSegment(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

func (u InUse) ecsRunning(ctx context.Context) ([]sweep.Use, error) {
	var clusters []string
	for p := ecs.NewListClustersPaginator(u.ECS, &ecs.ListClustersInput{MaxResults: aws.Int32(100)}); p.HasMorePages(); {
		pg, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list ECS clusters (ecs:ListClusters): %w", err)
		}
		clusters = append(clusters, pg.ClusterArns...)
	}
	var out []sweep.Use
	defs := map[string]*ecstypes.TaskDefinition{}
	for _, c := range clusters {
		uses, err := u.tasks(ctx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, uses...)
		if uses, err = u.services(ctx, c, defs); err != nil {
			return nil, err
		}
		out = append(out, uses...)
	}
	return out, nil
}

// tasks are a cluster's running tasks, each container by the digest it pulled.
func (u InUse) tasks(ctx context.Context, cluster string) ([]sweep.Use, error) {
	name := lastSegment(cluster)
	var arns []string
	for p := ecs.NewListTasksPaginator(u.ECS, &ecs.ListTasksInput{Cluster: aws.String(cluster), DesiredStatus: ecstypes.DesiredStatusRunning, MaxResults: aws.Int32(100)}); p.HasMorePages(); {
		pg, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the running tasks of ECS cluster %s (ecs:ListTasks): %w", name, err)
		}
		arns = append(arns, pg.TaskArns...)
	}
	var out []sweep.Use
	for chunk := range slices.Chunk(arns, 100) {
		pg, err := u.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: chunk})
		if err != nil {
			return nil, fmt.Errorf("describe the running tasks of ECS cluster %s (ecs:DescribeTasks): %w", name, err)
		}
		for _, t := range pg.Tasks {
			where := "ECS task " + name + "/" + lastSegment(aws.ToString(t.TaskDefinitionArn))
			if svc, ok := strings.CutPrefix(aws.ToString(t.Group), "service:"); ok {
				where = "ECS service " + name + "/" + svc
			} else if fam, ok := strings.CutPrefix(aws.ToString(t.Group), "family:"); ok {
				where = "ECS task " + name + "/" + fam
			}
			for _, c := range t.Containers {
				repo, digest, tag, ok := u.image(aws.ToString(c.Image))
				if !ok {
					continue
				}
				// The digest the task pulled beats what its image reference says now.
				if d := aws.ToString(c.ImageDigest); d != "" {
					digest, tag = d, ""
				}
				out = append(out, sweep.Use{Repository: repo, Digest: digest, Tag: tag, Where: where, Tasks: 1})
			}
		}
		// A task gone between the listing and the description runs no more.
	}
	return out, nil
}

// services are the images of every task definition a cluster's services deploy (their
// current one and those of deployments still running, as during a rollback).
func (u InUse) services(ctx context.Context, cluster string, defs map[string]*ecstypes.TaskDefinition) ([]sweep.Use, error) {
	name := lastSegment(cluster)
	var arns []string
	for p := ecs.NewListServicesPaginator(u.ECS, &ecs.ListServicesInput{Cluster: aws.String(cluster), MaxResults: aws.Int32(100)}); p.HasMorePages(); {
		pg, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the services of ECS cluster %s (ecs:ListServices): %w", name, err)
		}
		arns = append(arns, pg.ServiceArns...)
	}
	var out []sweep.Use
	for chunk := range slices.Chunk(arns, 10) {
		pg, err := u.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: chunk})
		if err != nil {
			return nil, fmt.Errorf("describe the services of ECS cluster %s (ecs:DescribeServices): %w", name, err)
		}
		for _, s := range pg.Services {
			where := "ECS service " + name + "/" + aws.ToString(s.ServiceName)
			tds := []string{aws.ToString(s.TaskDefinition)}
			for _, d := range s.Deployments {
				tds = append(tds, aws.ToString(d.TaskDefinition))
			}
			slices.Sort(tds)
			for _, arn := range slices.Compact(tds) {
				if arn == "" {
					continue
				}
				td, ok := defs[arn]
				if !ok {
					got, err := u.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)})
					if err != nil {
						return nil, fmt.Errorf("describe task definition %s of ECS service %s/%s (ecs:DescribeTaskDefinition): %w", lastSegment(arn), name, aws.ToString(s.ServiceName), err)
					}
					td, defs[arn] = got.TaskDefinition, got.TaskDefinition
				}
				if td == nil {
					continue
				}
				for _, c := range td.ContainerDefinitions {
					if repo, digest, tag, ok := u.image(aws.ToString(c.Image)); ok {
						out = append(out, sweep.Use{Repository: repo, Digest: digest, Tag: tag, Where: where})
					}
				}
			}
		}
	}
	return out, nil
}

// lambdaRunning is the image every function packaged as one runs at $LATEST and at each
// version an alias routes to.
func (u InUse) lambdaRunning(ctx context.Context) ([]sweep.Use, error) {
	var out []sweep.Use
	for p := lambda.NewListFunctionsPaginator(u.Lambda, &lambda.ListFunctionsInput{MaxItems: aws.Int32(50)}); p.HasMorePages(); {
		pg, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list Lambda functions (lambda:ListFunctions): %w", err)
		}
		for _, f := range pg.Functions {
			if f.PackageType != lambdatypes.PackageTypeImage {
				continue
			}
			uses, err := u.function(ctx, aws.ToString(f.FunctionName))
			if err != nil {
				return nil, err
			}
			out = append(out, uses...)
		}
	}
	return out, nil
}

func (u InUse) function(ctx context.Context, fn string) ([]sweep.Use, error) {
	// Version → the names that run it ("$LATEST", "fn:alias").
	at := map[string][]string{"$LATEST": {fn + " ($LATEST)"}}
	for p := lambda.NewListAliasesPaginator(u.Lambda, &lambda.ListAliasesInput{FunctionName: aws.String(fn)}); p.HasMorePages(); {
		pg, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the aliases of Lambda function %s (lambda:ListAliases): %w", fn, err)
		}
		for _, a := range pg.Aliases {
			name := fn + ":" + aws.ToString(a.Name)
			at[aws.ToString(a.FunctionVersion)] = append(at[aws.ToString(a.FunctionVersion)], name)
			if a.RoutingConfig != nil {
				for v := range a.RoutingConfig.AdditionalVersionWeights {
					at[v] = append(at[v], name)
				}
			}
		}
	}
	versions := make([]string, 0, len(at))
	for v := range at {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	var out []sweep.Use
	for _, v := range versions {
		got, err := u.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn), Qualifier: aws.String(v)})
		if err != nil {
			return nil, fmt.Errorf("read the image of Lambda function %s version %s (lambda:GetFunction): %w", fn, v, err)
		}
		if got.Code == nil {
			continue
		}
		ref := aws.ToString(got.Code.ResolvedImageUri)
		if ref == "" {
			ref = aws.ToString(got.Code.ImageUri)
		}
		repo, digest, tag, ok := u.image(ref)
		if !ok {
			continue
		}
		for _, name := range at[v] {
			out = append(out, sweep.Use{Repository: repo, Digest: digest, Tag: tag, Where: "Lambda function " + name})
		}
	}
	return out, nil
}
