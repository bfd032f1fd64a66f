package awsruntime_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/regflow/regflow/shared/awsruntime"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/local/localruntime"
	"github.com/regflow/regflow/shared/local/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	prodRegistry = "333333333333.dkr.ecr.us-east-1.amazonaws.com"
	oldDigest    = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	newDigest    = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// TestDeployAgainstMoto promotes and rolls back through the real SDK calls against moto's
// ECS, Lambda and SSM: the task definition keeps everything but the image, the alias moves
// to a version of the digest, the parameter holds it, and a redelivery changes nothing.
func TestDeployAgainstMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto")
	}
	ctx := context.Background()
	moto := testenv.MotoServer(t)
	if err := moto.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	awsCfg := testenv.AWSConfig(moto.Endpoint)
	deployScenario(t, awsCfg, func() { testenv.MotoLambdaRole(t, awsCfg, moto.Endpoint, "web-worker") })
}

// TestDeployAgainstLocal runs the same scenario against the local stack's ECS, Lambda and
// SSM, whose Lambda publishes no second version and whose deployments complete.
func TestDeployAgainstLocal(t *testing.T) {
	ctx := context.Background()
	srv, err := localruntime.New(localruntime.Options{Account: "123456789012", DeploymentDelay: 50 * time.Millisecond, UpdateDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	deployScenario(t, testenv.AWSConfig(srv.URL()), func() {})
	versions, err := lambda.NewFromConfig(testenv.AWSConfig(srv.URL())).ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("web-worker")})
	if err != nil {
		t.Fatal(err)
	}
	// $LATEST, the original 1, the promotion's 2 and the rollback's 3: the redelivery added none.
	if len(versions.Versions) != 4 {
		t.Fatalf("%d versions, want $LATEST and 3", len(versions.Versions))
	}
}

func deployScenario(t *testing.T, awsCfg aws.Config, seedRole func()) {
	ctx := context.Background()
	ecsAPI, lambdaAPI, ssmAPI := ecs.NewFromConfig(awsCfg), lambda.NewFromConfig(awsCfg), ssm.NewFromConfig(awsCfg)

	// What runs in prod before regflow: a service with an app and a sidecar, a function
	// with a live alias, both on the old digest.
	oldImage := prodRegistry + "/shop/web@" + oldDigest
	if _, err := ecsAPI.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	td, err := ecsAPI.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"), Cpu: aws.String("256"), Memory: aws.String("512"), NetworkMode: ecstypes.NetworkModeAwsvpc,
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		ExecutionRoleArn:        aws.String("arn:aws:iam::333333333333:role/web-exec"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{
			{Name: aws.String("app"), Image: aws.String(oldImage), Essential: aws.Bool(true),
				Environment: []ecstypes.KeyValuePair{{Name: aws.String("MODE"), Value: aws.String("prod")}}},
			{Name: aws.String("envoy"), Image: aws.String("public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29"), Essential: aws.Bool(true)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ecsAPI.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String("web"),
		TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	seedRole()
	if _, err := lambdaAPI.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("web-worker"), PackageType: lambdatypes.PackageTypeImage,
		Role: aws.String("arn:aws:iam::123456789012:role/web-worker"), Code: &lambdatypes.FunctionCode{ImageUri: aws.String(oldImage)}, Publish: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := lambdaAPI.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("web-worker"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}

	cfg, err := config.Parse([]byte(`
promotionPath: [dev, prod]
environments:
  dev: {account: "111111111111"}
  prod:
    account: "333333333333"
    promotionRole: arn:aws:iam::333333333333:role/promote
    externalId: xid
    deploy:
      targets:
        - {repositories: shop/web, ecs: {cluster: prod, service: web, container: app}}
        - {repositories: shop/web, lambda: {function: web-worker, alias: live}}
`))
	if err != nil {
		t.Fatal(err)
	}
	d := &deploy.Deployer{Config: cfg, Runtimes: func(context.Context, string) (deploy.Runtime, error) { return awsruntime.New(awsCfg), nil }}
	rel := deploy.Release{Env: "prod", Repository: "shop/web", Digest: newDigest, Tag: "c0ffee", RequestID: "req-1", At: time.Now()}
	newImage := prodRegistry + "/shop/web@" + newDigest

	state := func() (taskDef string, images map[string]string, env string, version string, param deploy.Parameter, paramVersion int64) {
		t.Helper()
		svc, err := ecsAPI.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
		if err != nil || len(svc.Services) != 1 {
			t.Fatalf("describe service: %v", err)
		}
		taskDef = aws.ToString(svc.Services[0].TaskDefinition)
		out, err := ecsAPI.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(taskDef)})
		if err != nil {
			t.Fatal(err)
		}
		images = map[string]string{}
		for _, c := range out.TaskDefinition.ContainerDefinitions {
			images[aws.ToString(c.Name)] = aws.ToString(c.Image)
			if aws.ToString(c.Name) == "app" && len(c.Environment) == 1 {
				env = aws.ToString(c.Environment[0].Value)
			}
		}
		alias, err := lambdaAPI.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("web-worker"), Name: aws.String("live")})
		if err != nil {
			t.Fatal(err)
		}
		version = aws.ToString(alias.FunctionVersion)
		p, err := ssmAPI.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/regflow/shop/web")})
		if err == nil {
			_ = json.Unmarshal([]byte(aws.ToString(p.Parameter.Value)), &param)
			paramVersion = p.Parameter.Version
		}
		return
	}

	for i := range 2 { // the second delivery must change nothing
		out, err := d.Deploy(ctx, rel)
		if err != nil {
			t.Fatalf("delivery %d: %v (%+v)", i+1, err, out)
		}
		for _, o := range out {
			if o.Changed != (i == 0) {
				t.Errorf("delivery %d: %s %s changed=%v", i+1, o.Kind, o.Target, o.Changed)
			}
		}
	}
	taskDef, images, env, version, param, pv := state()
	if !strings.HasSuffix(taskDef, ":2") || images["app"] != newImage || images["envoy"] != "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29" || env != "prod" {
		t.Fatalf("service runs %s %v (MODE=%s): want revision 2 with only the app's image changed", taskDef, images, env)
	}
	code, err := lambdaAPI.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("web-worker"), Qualifier: aws.String(version)})
	if err != nil {
		t.Fatal(err)
	}
	if version != "2" || aws.ToString(code.Code.ImageUri) != newImage {
		t.Fatalf("alias live → version %s running %s, want version 2 running %s", version, aws.ToString(code.Code.ImageUri), newImage)
	}
	if param.Digest != newDigest || param.ImageURI != newImage || pv != 1 {
		t.Fatalf("parameter v%d = %+v", pv, param)
	}
	defs, err := ecsAPI.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("web")})
	if err != nil || len(defs.TaskDefinitionArns) != 2 {
		t.Fatalf("task definitions %v %v: want the original and one new revision", defs.TaskDefinitionArns, err)
	}

	// Rollback: the old digest again, to the same targets.
	back := rel
	back.Digest, back.Rollback, back.RequestID = oldDigest, true, "rollback-1"
	if _, err := d.Deploy(ctx, back); err != nil {
		t.Fatal(err)
	}
	_, images, _, version, param, pv = state()
	if images["app"] != oldImage || param.Digest != oldDigest || pv != 2 {
		t.Fatalf("after the rollback: app %s, parameter v%d %s", images["app"], pv, param.Digest)
	}
	code, _ = lambdaAPI.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("web-worker"), Qualifier: aws.String(version)})
	if aws.ToString(code.Code.ImageUri) != oldImage {
		t.Fatalf("alias live → version %s running %s after the rollback", version, aws.ToString(code.Code.ImageUri))
	}
}
