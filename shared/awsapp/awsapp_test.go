package awsapp_test

import (
	"errors"

	"context"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const cfg = `{"pipeline":{"account":"123456789012"},"promotionPath":["dev","prod"],
"environments":{"dev":{"account":"123456789012"},
"prod":{"account":"333333333333","promotionRole":"arn:aws:iam::333333333333:role/regflow-promotion","externalId":"regflow-prod"}}}`

func env(t *testing.T, endpoint string) {
	t.Setenv("REGFLOW_CONFIG_INLINE", cfg)
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestAssumedRoleActsInTheRolesAccount checks, through moto's STS and ECR, that the promoter's
// credentials for prod act in prod's account and not in the pipeline's.
func TestAssumedRoleActsInTheRolesAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	moto := testenv.MotoServer(t)
	env(t, moto.Endpoint)
	ctx := context.Background()
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	awsCfg, err := awsapp.LoadAWS(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := awsapp.Adapters(cfg, awsCfg, awsapp.OptionsFromEnv(), nil).Registries
	ep, err := d.Promotion(ctx, "prod", "req-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if ep.Host != "333333333333.dkr.ecr.us-east-1.amazonaws.com" {
		t.Errorf("prod registry host = %s", ep.Host)
	}
	created, err := ep.Registry.EnsureRepository(ctx, "shop/web", regflow.RepositorySettings{Mutability: regflow.WantImmutable(nil)})
	if err != nil || !created {
		t.Fatalf("EnsureRepository = %v, %v", created, err)
	}
	if _, err := ep.Registry.EnsureRepository(ctx, "shop/web", regflow.RepositorySettings{Mutability: regflow.WantImmutable(nil)}); err != nil {
		t.Fatalf("second EnsureRepository must find it: %v", err)
	}
	// The pipeline account's own registry does not have it: the repository is in 333333333333.
	own := ecrsdk.NewFromConfig(awsCfg)
	out, err := own.DescribeRepositories(ctx, &ecrsdk.DescribeRepositoriesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Repositories {
		if aws.ToString(r.RepositoryName) == "shop/web" {
			t.Fatalf("repository landed in the caller's account %s", aws.ToString(r.RegistryId))
		}
	}
	a, err := ep.Registry.Authenticator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := a.Authorization()
	if err != nil || cred.Username != "AWS" || cred.Password == "" {
		t.Fatalf("registry credentials = %+v, %v", cred, err)
	}
	reg, err := d.Registry("333333333333", "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := reg.TagMutability(ctx, "shop/web"); err != nil || m.Mode != regflow.Immutable {
		t.Fatalf("through the role the repository is %+v, %v", m, err)
	}
	if _, err := d.Registry("999999999999", "us-east-1"); err == nil || !strings.Contains(err.Error(), "not any configured environment") {
		t.Fatalf("unknown account: %v", err)
	}
}

func TestBadConfigFailsAtStart(t *testing.T) {
	t.Setenv("REGFLOW_CONFIG_INLINE", `{"promotionPath":["dev"],"environments":{"dev":{"account":"12"}}}`)
	_, err := awsapp.FromEnvironment(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "environments.dev.account") {
		t.Fatalf("got %v", err)
	}
}

// TestDeploymentRoleActsInTheEnvironmentsAccount: the promoter's deployments reach prod's
// SSM (and ECS, Lambda) as prod's deployment role, in prod's account.
func TestDeploymentRoleActsInTheEnvironmentsAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	moto := testenv.MotoServer(t)
	env(t, moto.Endpoint)
	ctx := context.Background()
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	awsCfg, err := awsapp.LoadAWS(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := awsapp.Adapters(cfg, awsCfg, awsapp.OptionsFromEnv(), nil)
	rt, err := a.Runtimes(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	name := "/regflow/test/" + strings.ReplaceAll(t.Name(), "/", "-")
	if _, err := rt.Parameters.PutParameter(ctx, name, `{"digest":"sha256:00"}`); err != nil {
		t.Fatal(err)
	}
	out, err := ssm.NewFromConfig(awsCfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if !errors.As(err, &nf) {
		t.Fatalf("the parameter landed in the caller's account: %+v %v", out, err)
	}
	if v, err := rt.Parameters.GetParameter(ctx, name); err != nil || v != `{"digest":"sha256:00"}` {
		t.Fatalf("through the role: %q %v", v, err)
	}
	if _, err := a.Runtimes(ctx, "qa"); err == nil {
		t.Fatal("an unknown environment was reached")
	}
}
