package localruntime_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/regflow/regflow/shared/local/localruntime"
)

func createFunction(t *testing.T, c *lambda.Client, image string) {
	t.Helper()
	if _, err := c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{FunctionName: aws.String("web-worker"), PackageType: lambdatypes.PackageTypeImage,
		Role: aws.String("arn:aws:iam::123456789012:role/web-worker"), Code: &lambdatypes.FunctionCode{ImageUri: aws.String(image)}, Publish: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(context.Background(), &lambda.CreateAliasInput{FunctionName: aws.String("web-worker"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
}

// TestLambdaUpdateAndPublish: UpdateFunctionCode is InProgress until the delay passes on
// the clock (PublishVersion meanwhile conflicts), then Successful; publishing an unchanged
// $LATEST returns the last version, as Lambda does.
func TestLambdaUpdateAndPublish(t *testing.T) {
	e := start(t, localruntime.Options{UpdateDelay: time.Second, TickInterval: time.Hour})
	ctx := context.Background()
	createFunction(t, e.lambda, repo+"@"+digestA)
	up, err := e.lambda.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("web-worker"), ImageUri: aws.String(repo + "@" + digestB)})
	if err != nil {
		t.Fatal(err)
	}
	if up.LastUpdateStatus != lambdatypes.LastUpdateStatusInProgress || up.State != lambdatypes.StateActive {
		t.Fatalf("after UpdateFunctionCode: %s %s", up.State, up.LastUpdateStatus)
	}
	_, err = e.lambda.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("web-worker")})
	if errCode(err) != "ResourceConflictException" {
		t.Fatalf("publish during the update: %v", err)
	}
	e.clock.Advance(time.Second)
	got, err := e.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("web-worker")})
	if err != nil || got.Configuration.LastUpdateStatus != lambdatypes.LastUpdateStatusSuccessful {
		t.Fatalf("after the delay: %v %+v", err, got)
	}
	if aws.ToString(got.Code.ResolvedImageUri) != repo+"@"+digestB || aws.ToString(got.Code.RepositoryType) != "ECR" {
		t.Fatalf("code %+v", got.Code)
	}
	var versions []string
	for range 2 {
		v, err := e.lambda.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("web-worker")})
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, aws.ToString(v.Version))
	}
	if versions[0] != "2" || versions[1] != "2" {
		t.Fatalf("published %v, want 2 twice", versions)
	}
	if _, err := e.lambda.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("web-worker"), Name: aws.String("live"), FunctionVersion: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	aliases, err := e.lambda.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("web-worker")})
	if err != nil || len(aliases.Aliases) != 1 || aws.ToString(aliases.Aliases[0].FunctionVersion) != "2" {
		t.Fatalf("aliases %v %+v", err, aliases)
	}
	fns := e.srv.Functions()
	if len(fns) != 1 || fns[0].Image != repo+"@"+digestB {
		t.Fatalf("Functions() = %+v", fns)
	}
	list, err := e.lambda.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil || len(list.Functions) != 1 || list.Functions[0].PackageType != lambdatypes.PackageTypeImage {
		t.Fatalf("list %v %+v", err, list)
	}
}

func TestLambdaErrors(t *testing.T) {
	e := start(t, localruntime.Options{})
	ctx := context.Background()
	createFunction(t, e.lambda, repo+"@"+digestA)
	for _, c := range []struct {
		name      string
		call      func() error
		code, msg string
	}{
		{"missing function", func() error {
			_, err := e.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("nope")})
			return err
		}, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"},
		{"missing version", func() error {
			_, err := e.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("web-worker"), Qualifier: aws.String("9")})
			return err
		}, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:web-worker:9"},
		{"missing alias", func() error {
			_, err := e.lambda.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("web-worker"), Name: aws.String("nope")})
			return err
		}, "ResourceNotFoundException", "Cannot find alias arn: arn:aws:lambda:us-east-1:123456789012:function:web-worker:nope"},
		{"function exists", func() error {
			_, err := e.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("web-worker"), PackageType: lambdatypes.PackageTypeImage,
				Role: aws.String("arn:aws:iam::123456789012:role/r"), Code: &lambdatypes.FunctionCode{ImageUri: aws.String(repo + "@" + digestA)}})
			return err
		}, "ResourceConflictException", "Function already exist: web-worker"},
		{"alias to a missing version", func() error {
			_, err := e.lambda.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("web-worker"), Name: aws.String("live"), FunctionVersion: aws.String("7")})
			return err
		}, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:web-worker:7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if errCode(err) != c.code || errMessage(err) != c.msg {
				t.Fatalf("got %s %q, want %s %q", errCode(err), errMessage(err), c.code, c.msg)
			}
		})
	}
}

// TestSSMHistoryAndLabels: every PutParameter is a version (an unchanged value too, as
// SSM does), history pages, labels move, selectors read old versions.
func TestSSMHistoryAndLabels(t *testing.T) {
	e := start(t, localruntime.Options{})
	ctx := context.Background()
	name := aws.String("/regflow/shop/web")
	for i, v := range []string{"a", "b", "b"} {
		out, err := e.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: name, Value: aws.String(v), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)})
		if err != nil || out.Version != int64(i+1) || out.Tier != ssmtypes.ParameterTierStandard {
			t.Fatalf("put %d: %v %+v", i, err, out)
		}
	}
	_, err := e.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: name, Value: aws.String("c"), Type: ssmtypes.ParameterTypeString})
	if errCode(err) != "ParameterAlreadyExists" {
		t.Fatalf("put without overwrite: %v", err)
	}
	if _, err := e.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: name, ParameterVersion: aws.Int64(1), Labels: []string{"good"}}); err != nil {
		t.Fatal(err)
	}
	lab, err := e.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: name, ParameterVersion: aws.Int64(2), Labels: []string{"good", "aws-no"}})
	if err != nil || lab.ParameterVersion != 2 || len(lab.InvalidLabels) != 1 {
		t.Fatalf("label: %v %+v", err, lab)
	}
	got, err := e.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/regflow/shop/web:good")})
	if err != nil || aws.ToString(got.Parameter.Value) != "b" || got.Parameter.Version != 2 || aws.ToString(got.Parameter.Selector) != ":good" {
		t.Fatalf("by label: %v %+v", err, got)
	}
	got, err = e.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/regflow/shop/web:1")})
	if err != nil || aws.ToString(got.Parameter.Value) != "a" {
		t.Fatalf("by version: %v %+v", err, got)
	}
	var hist []ssmtypes.ParameterHistory
	for p := ssm.NewGetParameterHistoryPaginator(e.ssm, &ssm.GetParameterHistoryInput{Name: name, MaxResults: aws.Int32(2)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hist = append(hist, out.Parameters...)
	}
	if len(hist) != 3 || len(hist[0].Labels) != 0 || len(hist[1].Labels) != 1 || hist[2].Version != 3 {
		t.Fatalf("history %+v", hist)
	}
	for _, c := range []struct{ name, code, msg string }{
		{"/regflow/none", "ParameterNotFound", ""},
		{"/regflow/shop/web:9", "ParameterVersionNotFound", "Systems Manager could not find version 9 of /regflow/shop/web. Verify the version and try again."},
	} {
		_, err := e.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(c.name)})
		if errCode(err) != c.code || (c.msg != "" && errMessage(err) != c.msg) {
			t.Errorf("%s: %s %q", c.name, errCode(err), errMessage(err))
		}
	}
}
