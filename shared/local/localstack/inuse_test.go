package localstack_test

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

	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localruntime"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/retention"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/sweep"
)

// TestSweepKeepsWhatRunsEndToEnd, through the scheduled sweeper's entry point over the
// local stack's ECR, ECS and Lambda: in staging, a tagged image 120 days old that no
// pointer names survives because a service regflow does not deploy runs it (2 tasks), one
// 121 days old because a Lambda alias runs it; both are reported as drift. While ECS
// cannot be read, staging deletes nothing, not even its expired junk. Once the service
// moved to another image the first is deleted; the Lambda's stays.
func TestSweepKeepsWhatRunsEndToEnd(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	st, err := localstack.Start(ctx, localstack.Options{Config: loadConfig(t), Dir: t.TempDir(), Clock: localecr.FixedClock(at)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	staging := st.Config.Environments["staging"]
	seed := func(name string, age time.Duration, tags ...string) string {
		return sweeptest.Seed(t, st.ECR["staging"], "shop/web", localecr.SeedImage{Manifest: sweeptest.Plain(name), PushedAt: at.Add(-age), Tags: tags, SizeBytes: 100})[0]
	}
	runs := seed("runs", 120*24*time.Hour, "v1")
	lambdaRuns := seed("lambda", 121*24*time.Hour, "v0")
	junk := seed("junk", 30*24*time.Hour) // untagged, past untaggedMaxAge 14d
	var young string
	for i := range 5 { // the newest 5 tagged are kept whatever their age (keepNewest)
		young = seed(fmt.Sprint("young", i), 24*time.Hour, fmt.Sprint("y", i))
	}

	cfg := st.RuntimeConfig("staging")
	ecsAPI, lambdaAPI := ecs.NewFromConfig(cfg), lambda.NewFromConfig(cfg)
	if _, err := ecsAPI.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("apps")}); err != nil {
		t.Fatal(err)
	}
	taskDef := func(digest string) *string {
		t.Helper()
		td, err := ecsAPI.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("legacy"), Memory: aws.String("512"),
			ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(staging.Registry + "/shop/web@" + digest)}}})
		if err != nil {
			t.Fatal(err)
		}
		return td.TaskDefinition.TaskDefinitionArn
	}
	if _, err := ecsAPI.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("apps"), ServiceName: aws.String("legacy"), TaskDefinition: taskDef(runs), DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := lambdaAPI.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("reports"), PackageType: lambdatypes.PackageTypeImage, Publish: true,
		Role: aws.String("arn:aws:iam::" + staging.Account + ":role/reports"), Code: &lambdatypes.FunctionCode{ImageUri: aws.String(staging.Registry + "/shop/web:v0")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := lambdaAPI.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("reports"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	// Lambda's $LATEST moves on; version 1 (the alias's) still runs v0.
	if _, err := lambdaAPI.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("reports"), ImageUri: aws.String(staging.Registry + "/shop/web@" + young)}); err != nil {
		t.Fatal(err)
	}
	settle := func() {
		t.Helper()
		st.Clock.Advance(time.Minute)
		if err := st.SettleDeployments(ctx); err != nil {
			t.Fatal(err)
		}
	}
	settle()

	sweepNow := func() *sweep.RegistryReport {
		t.Helper()
		trigger := fmt.Sprintf(`{"detail-type":"Scheduled Event","time":%q,"detail":{}}`, st.Clock.Now().Format(time.RFC3339))
		res, err := st.App.Invoke(ctx, route.Sweeper, []byte(trigger))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := sweep.LoadReport(ctx, st.Store, res.(sweep.Plan).Run.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, rr := range rep.Registries {
			if strings.HasPrefix(rr.Target.Name, "staging") {
				return rr
			}
		}
		t.Fatalf("no staging registry in %+v", rep.Registries)
		return nil
	}
	present := func() map[string]bool {
		t.Helper()
		imgs, err := st.Registry("staging").ListImages(ctx, "shop/web")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, img := range imgs {
			out[img.Digest] = true
		}
		return out
	}
	reason := func(rr *sweep.RegistryReport, digest string) string {
		for _, d := range rr.Report.Decisions {
			if d.Digest == digest {
				return string(d.Code) + " " + d.Reason
			}
		}
		return "no decision"
	}

	// 1. ECS cannot be read: staging deletes nothing, and says why.
	st.Runtimes["staging"].SetFault("ListTasks", localruntime.Fault{ErrorRate: 1})
	rr := sweepNow()
	st.Runtimes["staging"].SetFault("ListTasks", localruntime.Fault{})
	if p := present(); !p[junk] || !p[runs] || rr.Outcome.Removed != 0 {
		t.Fatalf("deleted with what runs unknown: outcome %+v", rr.Outcome)
	}
	if len(rr.Report.Failed) == 0 || !strings.Contains(rr.Report.Failed[0].Error, "deletes nothing") || !strings.Contains(rr.Report.Failed[0].Error, "ecs:ListTasks") {
		t.Fatalf("failures %+v: want shop/web failed, saying why", rr.Report.Failed)
	}

	// 2. What runs stays, with where; the junk goes.
	st.Clock.Advance(time.Minute)
	rr = sweepNow()
	p := present()
	if p[junk] || !p[runs] || !p[lambdaRuns] {
		t.Fatalf("after the sweep: junk %v, ECS's %v, Lambda's %v (want gone, kept, kept)", p[junk], p[runs], p[lambdaRuns])
	}
	if got, want := reason(rr, runs), string(retention.CodeInUse)+" kept: running in ECS service apps/legacy, 2 tasks"; got != want {
		t.Errorf("ECS's image: %q, want %q", got, want)
	}
	if got, want := reason(rr, lambdaRuns), string(retention.CodeInUse)+" kept: running in Lambda function reports:live"; got != want {
		t.Errorf("Lambda's image: %q, want %q", got, want)
	}
	drifted := map[string]bool{}
	for _, d := range rr.Drift {
		drifted[d.Digest] = true
	}
	if !drifted[runs] || !drifted[lambdaRuns] {
		t.Errorf("drift %+v: want both running images", rr.Drift)
	}

	// 3. The service moves on: nothing runs v1 any more, and it goes.
	if _, err := ecsAPI.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("apps"), Service: aws.String("legacy"), TaskDefinition: taskDef(young)}); err != nil {
		t.Fatal(err)
	}
	settle()
	rr = sweepNow()
	p = present()
	if p[runs] || !p[lambdaRuns] {
		t.Fatalf("after the service moved: v1 present %v (want deleted), Lambda's %v (want kept); v1: %s", p[runs], p[lambdaRuns], reason(rr, runs))
	}
}
