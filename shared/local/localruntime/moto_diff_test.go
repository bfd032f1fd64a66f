package localruntime_test

// Differential tests: the same calls, through the real SDK clients, against moto_server's
// ECS, Lambda and SSM and against the local runtime give the same observable results
// wherever moto implements them. Each place where moto is known to differ from AWS has its
// own TestMotoDiffers_* test, which pins moto's behaviour and checks the local one.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localruntime"
	"github.com/regflow/regflow/shared/local/testenv"
)

// side is one endpoint under test.
type side struct {
	name   string
	ecs    *ecs.Client
	lambda *lambda.Client
	ssm    *ssm.Client
	local  *env // nil for moto
}

func sides(t *testing.T) (moto, local side) {
	t.Helper()
	if testing.Short() {
		t.Skip("differential test against moto_server")
	}
	m := testenv.MotoServer(t)
	cfg := testenv.AWSConfig(m.Endpoint)
	testenv.MotoLambdaRole(t, cfg, m.Endpoint, "fn")
	e := start(t, localruntime.Options{Clock: localecr.NewClock(), DeploymentDelay: 100 * time.Millisecond, UpdateDelay: 100 * time.Millisecond})
	return side{"moto", ecs.NewFromConfig(cfg), lambda.NewFromConfig(cfg), ssm.NewFromConfig(cfg), nil},
		side{"local", e.ecs, e.lambda, e.ssm, e}
}

// rec records outcomes as lines: what a call returned (normalised) or its error code.
type rec struct {
	t     *testing.T
	lines []string
}

func (r *rec) add(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *rec) err(what string, err error) bool {
	if err != nil {
		r.add("%s: %s", what, errCode(err))
		return true
	}
	return false
}

func compare(t *testing.T, moto, local []string) {
	t.Helper()
	if d := cmp.Diff(moto, local); d != "" {
		t.Fatalf("moto (-) and local (+) differ:\n%s", d)
	}
}

func tdTail(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// ecsScenario seeds a cluster and service, updates it, and reads everything regflow reads.
func ecsScenario(t *testing.T, s side) []string {
	ctx := context.Background()
	r := &rec{t: t}
	c := s.ecs
	cl, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")})
	if r.err("CreateCluster", err) {
		return r.lines
	}
	r.add("cluster %s %s %s", aws.ToString(cl.Cluster.ClusterName), aws.ToString(cl.Cluster.ClusterArn), aws.ToString(cl.Cluster.Status))
	td1 := registerTD(t, c, digestA)
	td2 := registerTD(t, c, digestB)
	r.add("registered %s %s", tdTail(td1), tdTail(td2))
	d, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web"), Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags}})
	if !r.err("DescribeTaskDefinition web", err) {
		var imgs []string
		for _, cd := range d.TaskDefinition.ContainerDefinitions {
			imgs = append(imgs, aws.ToString(cd.Name)+"="+aws.ToString(cd.Image)+fmt.Sprint(aws.ToBool(cd.Essential)))
		}
		r.add("latest %s %d %s cpu=%s mem=%s %v", aws.ToString(d.TaskDefinition.Family), d.TaskDefinition.Revision, d.TaskDefinition.Status,
			aws.ToString(d.TaskDefinition.Cpu), aws.ToString(d.TaskDefinition.Memory), imgs)
	}
	_, err = c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:9")})
	r.add("DescribeTaskDefinition web:9: %s", errCode(err))
	_, err = c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox")}}})
	r.add("RegisterTaskDefinition without memory: %s %s", errCode(err), errMessage(err))
	list, err := c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("web")})
	if !r.err("ListTaskDefinitions", err) {
		r.add("task definitions %d", len(list.TaskDefinitionArns))
	}
	sv, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String("web"), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(2)})
	if r.err("CreateService", err) {
		return r.lines
	}
	r.add("service %s %s %s %d %s", aws.ToString(sv.Service.ServiceName), aws.ToString(sv.Service.ServiceArn), aws.ToString(sv.Service.Status), sv.Service.DesiredCount, tdTail(aws.ToString(sv.Service.TaskDefinition)))
	up, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), TaskDefinition: aws.String(td2)})
	if !r.err("UpdateService", err) {
		r.add("updated to %s", tdTail(aws.ToString(up.Service.TaskDefinition)))
	}
	ds, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web", "nope"}})
	if !r.err("DescribeServices", err) {
		r.add("described %d %s; failures %d %s %s", len(ds.Services), tdTail(aws.ToString(ds.Services[0].TaskDefinition)), len(ds.Failures), aws.ToString(ds.Failures[0].Arn), aws.ToString(ds.Failures[0].Reason))
	}
	ls, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("prod")})
	if !r.err("ListServices", err) {
		r.add("services %v", ls.ServiceArns)
	}
	_, err = c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("nope"), Services: []string{"web"}})
	r.add("DescribeServices in a missing cluster: %s", errCode(err))
	_, err = c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("nope"), TaskDefinition: aws.String(td2)})
	r.add("UpdateService of a missing service: %s", errCode(err))
	_, err = c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("nope"), Service: aws.String("web"), TaskDefinition: aws.String(td2)})
	r.add("UpdateService in a missing cluster: %s", errCode(err))
	_, err = c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("nope")})
	r.add("ListTasks in a missing cluster: %s", errCode(err))
	return r.lines
}

func TestMotoDiff_ECS(t *testing.T) {
	moto, local := sides(t)
	compare(t, ecsScenario(t, moto), ecsScenario(t, local))
}

// rollout is the service's deployments as "status/rolloutState" after waiting a moment.
func rollout(t *testing.T, c *ecs.Client) []string {
	t.Helper()
	out, err := c.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("describe: %v", err)
	}
	var r []string
	for _, d := range out.Services[0].Deployments {
		r = append(r, aws.ToString(d.Status)+"/"+string(d.RolloutState))
	}
	return r
}

// TestMotoDiffers_DeploymentsStayInProgress: moto never completes an ECS deployment; ECS
// (and the local one) completes it once the tasks run.
func TestMotoDiffers_DeploymentsStayInProgress(t *testing.T) {
	moto, local := sides(t)
	for _, s := range []side{moto, local} {
		seedService(t, s.ecs, digestA, true)
		next := registerTD(t, s.ecs, digestB)
		if _, err := s.ecs.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), TaskDefinition: aws.String(next)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(400 * time.Millisecond)
	m, l := rollout(t, moto.ecs), rollout(t, local.ecs)
	if len(m) == 0 || !strings.HasSuffix(m[0], "/IN_PROGRESS") {
		t.Fatalf("moto's deployments %v: expected the primary to stay IN_PROGRESS (has moto changed?)", m)
	}
	if strings.Join(l, ",") != "PRIMARY/COMPLETED" {
		t.Fatalf("local deployments %v, want the primary COMPLETED and the old one drained", l)
	}
}

// TestMotoDiffers_NoRunningTasks: moto runs no task without container instances, so
// ListTasks is empty; the local ECS runs desiredCount tasks with their images' digests.
func TestMotoDiffers_NoRunningTasks(t *testing.T) {
	moto, local := sides(t)
	for _, s := range []side{moto, local} {
		seedService(t, s.ecs, digestA, true)
	}
	time.Sleep(400 * time.Millisecond)
	ctx := context.Background()
	mt, err := moto.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("web")})
	if err != nil || len(mt.TaskArns) != 0 {
		t.Fatalf("moto ListTasks %v %v: expected no tasks (has moto changed?)", mt, err)
	}
	if got := running(t, local.ecs); got != "web:1 app=aaaa envoy= ×2" {
		t.Fatalf("local tasks: %s", got)
	}
}

func lambdaScenario(t *testing.T, s side) []string {
	ctx := context.Background()
	r := &rec{t: t}
	c := s.lambda
	role := aws.String("arn:aws:iam::123456789012:role/fn")
	cf, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("web-worker"), PackageType: lambdatypes.PackageTypeImage,
		Role: role, Code: &lambdatypes.FunctionCode{ImageUri: aws.String(repo + "@" + digestA)}, Publish: true})
	if r.err("CreateFunction", err) {
		return r.lines
	}
	r.add("created %s %s %s %s", aws.ToString(cf.FunctionName), aws.ToString(cf.FunctionArn), aws.ToString(cf.Version), cf.PackageType)
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("web-worker"), PackageType: lambdatypes.PackageTypeImage,
		Role: role, Code: &lambdatypes.FunctionCode{ImageUri: aws.String(repo + "@" + digestA)}})
	r.add("CreateFunction again: %s", errCode(err))
	al, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("web-worker"), Name: aws.String("live"), FunctionVersion: aws.String("1")})
	if !r.err("CreateAlias", err) {
		r.add("alias %s %s %s", aws.ToString(al.Name), aws.ToString(al.AliasArn), aws.ToString(al.FunctionVersion))
	}
	ga, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("web-worker"), Name: aws.String("live")})
	if !r.err("GetAlias", err) {
		r.add("get alias %s", aws.ToString(ga.FunctionVersion))
	}
	_, err = c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("web-worker"), Name: aws.String("nope")})
	r.add("GetAlias missing: %s", errCode(err))
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("nope")})
	r.add("GetFunction missing: %s %s", errCode(err), errMessage(err))
	gf, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("web-worker"), Qualifier: aws.String("1")})
	if !r.err("GetFunction :1", err) {
		r.add("version 1 runs %s (%s)", aws.ToString(gf.Code.ImageUri), aws.ToString(gf.Code.RepositoryType))
	}
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("web-worker"), ImageUri: aws.String(repo + "@" + digestB)}); r.err("UpdateFunctionCode", err) {
		return r.lines
	}
	w := lambda.NewFunctionUpdatedV2Waiter(c, func(o *lambda.FunctionUpdatedV2WaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 200 * time.Millisecond
	})
	if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("web-worker")}, 10*time.Second); err != nil {
		r.add("wait: %v", err)
	}
	// Lambda publishes no new version of an unchanged $LATEST: moto 5.2.1 agrees.
	for range 2 {
		pv, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("web-worker")})
		if !r.err("PublishVersion", err) {
			r.add("published %s %s", aws.ToString(pv.Version), aws.ToString(pv.FunctionArn))
		}
	}
	if _, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("web-worker"), Name: aws.String("live"), FunctionVersion: aws.String("2")}); !r.err("UpdateAlias", err) {
		la, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("web-worker")})
		if !r.err("ListAliases", err) {
			r.add("aliases %d %s→%s", len(la.Aliases), aws.ToString(la.Aliases[0].Name), aws.ToString(la.Aliases[0].FunctionVersion))
		}
	}
	gf, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("web-worker"), Qualifier: aws.String("live")})
	if !r.err("GetFunction :live", err) {
		r.add("live runs %s, version %s", aws.ToString(gf.Code.ImageUri), aws.ToString(gf.Configuration.Version))
	}
	lf, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if !r.err("ListFunctions", err) {
		r.add("functions %d %s", len(lf.Functions), aws.ToString(lf.Functions[0].FunctionName))
	}
	return r.lines
}

func TestMotoDiff_Lambda(t *testing.T) {
	moto, local := sides(t)
	compare(t, lambdaScenario(t, moto), lambdaScenario(t, local))
}

func createImageFunction(t *testing.T, c *lambda.Client) {
	t.Helper()
	if _, err := c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{FunctionName: aws.String("web-worker"), PackageType: lambdatypes.PackageTypeImage,
		Role: aws.String("arn:aws:iam::123456789012:role/fn"), Code: &lambdatypes.FunctionCode{ImageUri: aws.String(repo + "@" + digestA)}, Publish: true}); err != nil {
		t.Fatal(err)
	}
}

// TestMotoDiffers_ResolvedImageUri: moto's ResolvedImageUri repeats the algorithm
// (…@sha256@sha256:<hex>); Lambda's, and the local one, is repo@digest.
func TestMotoDiffers_ResolvedImageUri(t *testing.T) {
	moto, local := sides(t)
	ctx := context.Background()
	got := map[string]string{}
	for _, s := range []side{moto, local} {
		createImageFunction(t, s.lambda)
		out, err := s.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("web-worker")})
		if err != nil {
			t.Fatal(err)
		}
		got[s.name] = aws.ToString(out.Code.ResolvedImageUri)
	}
	if !strings.Contains(got["moto"], "@sha256@sha256:") {
		t.Fatalf("moto's ResolvedImageUri %q: expected the malformed …@sha256@sha256:… (has moto changed?)", got["moto"])
	}
	if got["local"] != repo+"@"+digestA {
		t.Fatalf("local ResolvedImageUri %q", got["local"])
	}
}

// TestMotoDiffers_UpdateServiceAddsNoDeployment: moto's UpdateService sets the service's
// task definition but keeps the old deployment as PRIMARY; ECS, and the local one, starts a
// PRIMARY deployment of the new task definition and keeps the old one ACTIVE until it drains.
func TestMotoDiffers_UpdateServiceAddsNoDeployment(t *testing.T) {
	moto, local := sides(t)
	got := map[string]string{}
	for _, s := range []side{moto, local} {
		seedService(t, s.ecs, digestA, true)
		next := registerTD(t, s.ecs, digestB)
		out, err := s.ecs.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), TaskDefinition: aws.String(next)})
		if err != nil {
			t.Fatal(err)
		}
		var deps []string
		for _, d := range out.Service.Deployments {
			deps = append(deps, aws.ToString(d.Status)+" "+tdTail(aws.ToString(d.TaskDefinition)))
		}
		got[s.name] = strings.Join(deps, ", ")
	}
	if got["moto"] != "PRIMARY web:1" {
		t.Fatalf("moto's deployments after UpdateService: %s; expected the old one only (has moto changed?)", got["moto"])
	}
	if got["local"] != "PRIMARY web:2, ACTIVE web:1" {
		t.Fatalf("local deployments after UpdateService: %s", got["local"])
	}
}

// TestMotoDiffers_SelectorMissing: GetParameter by version or label returns the Selector
// (":2", as AWS's sample shows); moto leaves it out.
func TestMotoDiffers_SelectorMissing(t *testing.T) {
	moto, local := sides(t)
	ctx := context.Background()
	got := map[string]string{}
	for _, s := range []side{moto, local} {
		if _, err := s.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/p"), Value: aws.String("v"), Type: ssmtypes.ParameterTypeString}); err != nil {
			t.Fatal(err)
		}
		out, err := s.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/p:1")})
		if err != nil {
			t.Fatal(err)
		}
		got[s.name] = aws.ToString(out.Parameter.Selector)
	}
	if got["moto"] != "" {
		t.Fatalf("moto's Selector %q: expected none (has moto changed?)", got["moto"])
	}
	if got["local"] != ":1" {
		t.Fatalf("local Selector %q", got["local"])
	}
}

// TestMotoDiffers_UpdateStatus: moto's UpdateFunctionCode is done at once; Lambda's, and the
// local one, is InProgress first (the adapter waits for Successful).
func TestMotoDiffers_UpdateStatus(t *testing.T) {
	moto, local := sides(t)
	ctx := context.Background()
	got := map[string]string{}
	for _, s := range []side{moto, local} {
		createImageFunction(t, s.lambda)
		out, err := s.lambda.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("web-worker"), ImageUri: aws.String(repo + "@" + digestB)})
		if err != nil {
			t.Fatal(err)
		}
		got[s.name] = string(out.LastUpdateStatus)
	}
	if got["moto"] == string(lambdatypes.LastUpdateStatusInProgress) {
		t.Fatalf("moto's update is %s: expected it done at once (has moto changed?)", got["moto"])
	}
	if got["local"] != string(lambdatypes.LastUpdateStatusInProgress) {
		t.Fatalf("local update status %q", got["local"])
	}
}

func ssmScenario(t *testing.T, s side) []string {
	ctx := context.Background()
	r := &rec{t: t}
	c := s.ssm
	name := aws.String("/regflow/shop/web")
	_, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: name})
	r.add("GetParameter before: %s", errCode(err))
	for i, v := range []string{`{"digest":"a"}`, `{"digest":"b"}`, `{"digest":"b"}`} {
		out, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: name, Value: aws.String(v), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(i > 0), Description: aws.String("release")})
		if !r.err("PutParameter", err) {
			r.add("put v%d %s", out.Version, out.Tier)
		}
	}
	_, err = c.PutParameter(ctx, &ssm.PutParameterInput{Name: name, Value: aws.String("x"), Type: ssmtypes.ParameterTypeString})
	r.add("PutParameter without overwrite: %s %s", errCode(err), errMessage(err))
	g, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: name})
	if !r.err("GetParameter", err) {
		p := g.Parameter
		r.add("get %s %s %s v%d %s %s", aws.ToString(p.Name), p.Type, aws.ToString(p.Value), p.Version, aws.ToString(p.ARN), aws.ToString(p.DataType))
	}
	g, err = c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/regflow/shop/web:1")})
	if !r.err("GetParameter :1", err) {
		r.add("get :1 %s v%d", aws.ToString(g.Parameter.Value), g.Parameter.Version)
	}
	_, err = c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/regflow/shop/web:9")})
	r.add("GetParameter :9: %s", errCode(err))
	lb, err := c.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: name, ParameterVersion: aws.Int64(2), Labels: []string{"good"}})
	if !r.err("LabelParameterVersion", err) {
		r.add("labelled v%d invalid %v", lb.ParameterVersion, lb.InvalidLabels)
	}
	g, err = c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/regflow/shop/web:good")})
	if !r.err("GetParameter :good", err) {
		r.add("get :good v%d", g.Parameter.Version)
	}
	h, err := c.GetParameterHistory(ctx, &ssm.GetParameterHistoryInput{Name: name})
	if !r.err("GetParameterHistory", err) {
		for _, p := range h.Parameters {
			r.add("history v%d %s %s labels %v %s", p.Version, aws.ToString(p.Value), aws.ToString(p.Description), p.Labels, p.Tier)
		}
	}
	_, err = c.GetParameterHistory(ctx, &ssm.GetParameterHistoryInput{Name: aws.String("/regflow/none")})
	r.add("GetParameterHistory missing: %s", errCode(err))
	return r.lines
}

func TestMotoDiff_SSM(t *testing.T) {
	moto, local := sides(t)
	compare(t, ssmScenario(t, moto), ssmScenario(t, local))
}
