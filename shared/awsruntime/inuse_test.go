package awsruntime_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/regflow/regflow/shared/awsruntime"
	"github.com/regflow/regflow/shared/local/localruntime"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/sweep"
)

const tagDigest = "sha256:3333333333333333333333333333333333333333333333333333333333333333"

// TestInUseReadsEveryClusterAndFunction: against the local ECS and Lambda (the real wire
// shapes), the in-use reader finds the running tasks' digests of every cluster (a
// service regflow does not deploy too), the images of the services' task definitions (by
// digest, or by tag for the sweep to resolve), the Lambda function's $LATEST and aliased
// versions, nothing of another registry; paginated; and any failed call fails the read.
func TestInUseReadsEveryClusterAndFunction(t *testing.T) {
	ctx := context.Background()
	srv, err := localruntime.New(localruntime.Options{
		Account: "333333333333", DeploymentDelay: time.Millisecond, UpdateDelay: time.Millisecond,
		ResolveImage: func(_ context.Context, image string) (string, error) {
			if image == prodRegistry+"/shop/api:v2" {
				return tagDigest, nil
			}
			return "", nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	cfg := testenv.AWSConfig(srv.URL())
	ecsAPI, lambdaAPI := ecs.NewFromConfig(cfg), lambda.NewFromConfig(cfg)

	service := func(cluster, name string, count int32, images ...string) {
		t.Helper()
		if _, err := ecsAPI.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
			t.Fatal(err)
		}
		var defs []ecstypes.ContainerDefinition
		for i, img := range images {
			defs = append(defs, ecstypes.ContainerDefinition{Name: aws.String(string(rune('a' + i))), Image: aws.String(img), Essential: aws.Bool(true), Memory: aws.Int32(128)})
		}
		td, err := ecsAPI.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(name), ContainerDefinitions: defs})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ecsAPI.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String(name),
			TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(count)}); err != nil {
			t.Fatal(err)
		}
	}
	service("prod", "web", 3, prodRegistry+"/shop/web@"+oldDigest, "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29")
	service("prod", "api", 1, prodRegistry+"/shop/api:v2")
	// Eleven services in another cluster: DescribeServices takes at most 10.
	for i := range 11 {
		service("ops", "job"+string(rune('a'+i)), 0, prodRegistry+"/ops/job@"+newDigest)
	}
	if _, err := lambdaAPI.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("worker"), PackageType: lambdatypes.PackageTypeImage,
		Role: aws.String("arn:aws:iam::333333333333:role/worker"), Code: &lambdatypes.FunctionCode{ImageUri: aws.String(prodRegistry + "/shop/web@" + newDigest)}, Publish: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := lambdaAPI.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("worker"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.InProgress() > 0 && time.Now().Before(deadline) {
		srv.Tick()
		time.Sleep(5 * time.Millisecond)
	}

	u := awsruntime.InUse{ECS: ecsAPI, Lambda: lambdaAPI, Registry: prodRegistry}
	uses, err := u.Running(ctx)
	if err != nil {
		t.Fatal(err)
	}
	count := map[sweep.Use]int{}
	for _, x := range uses {
		count[x]++
	}
	want := map[sweep.Use]int{
		{Repository: "shop/web", Digest: oldDigest, Where: "ECS service prod/web", Tasks: 1}:   3,
		{Repository: "shop/web", Digest: oldDigest, Where: "ECS service prod/web"}:             1,
		{Repository: "shop/api", Digest: tagDigest, Where: "ECS service prod/api", Tasks: 1}:   1,
		{Repository: "shop/api", Tag: "v2", Where: "ECS service prod/api"}:                     1,
		{Repository: "shop/web", Digest: newDigest, Where: "Lambda function worker ($LATEST)"}: 1,
		{Repository: "shop/web", Digest: newDigest, Where: "Lambda function worker:live"}:      1,
	}
	for i := range 11 {
		want[sweep.Use{Repository: "ops/job", Digest: newDigest, Where: "ECS service ops/job" + string(rune('a'+i))}] = 1
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%+v: %d times, want %d", k, count[k], n)
		}
	}
	for k := range count {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected use %+v", k)
		}
	}
	if n := srv.Requests("DescribeServices"); n != 3 {
		t.Errorf("DescribeServices %d calls, want 3 (1 in prod, 2 for 11 in ops)", n)
	}

	for _, op := range []string{"ListTasks", "DescribeTaskDefinition", "ListAliases", "GetFunction"} {
		srv.SetFault(op, localruntime.Fault{ErrorRate: 1})
		_, err := u.Running(ctx)
		srv.SetFault(op, localruntime.Fault{})
		if err == nil || !strings.Contains(err.Error(), op) {
			t.Errorf("%s failing: err = %v, want the read failed naming it", op, err)
		}
	}
	if slices.ContainsFunc(uses, func(x sweep.Use) bool { return strings.Contains(x.Repository, "envoy") }) {
		t.Error("another registry's image was returned")
	}
}
