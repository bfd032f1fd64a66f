package localstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/ecsevent"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localbus"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
)

// TestRuntimesPerEnvironment: staging and prod get their own ECS, Lambda and SSM, named in
// local.json; a service's tag resolves through the environment's local ECR; Runtime
// deploys a digest with the promoter's adapter; the ECS deployment events reach the bus.
func TestRuntimesPerEnvironment(t *testing.T) {
	ctx := context.Background()
	clock := localecr.NewClock()
	dir := t.TempDir()
	st, err := localstack.Start(ctx, localstack.Options{Config: loadConfig(t), Dir: dir, Clock: clock, DeploymentDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	var got []*ecsevent.DeploymentStateChange
	st.Bus.Subscribe(localbus.Rule{Name: "test-ecs", Sources: []string{event.SourceECS}, DetailTypes: []string{event.TypeECSDeployment}},
		func(_ context.Context, b []byte) error {
			ev, err := ecsevent.Decode(b)
			if err != nil {
				t.Errorf("bus carried an ECS event the decoder refuses: %v", err)
				return nil
			}
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
			return nil
		})

	var info localstack.Info
	b, err := os.ReadFile(filepath.Join(dir, "local.json"))
	if err != nil || json.Unmarshal(b, &info) != nil {
		t.Fatalf("local.json: %v", err)
	}
	if info.Environments["dev"].ECSEndpoint != "" || info.Environments["staging"].ECSEndpoint == "" ||
		info.Environments["prod"].SSMEndpoint == info.Environments["staging"].SSMEndpoint || info.Environments["prod"].LambdaEndpoint == "" {
		t.Fatalf("endpoints %+v", info.Environments)
	}
	if _, err := st.Runtime("dev"); err == nil {
		t.Fatal("the source environment has a runtime")
	}

	staging := info.Environments["staging"]
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(staging.Registry+"/shop/web:v1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	c := ecs.NewFromConfig(st.RuntimeConfig("staging"))
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("staging")}); err != nil {
		t.Fatal(err)
	}
	td, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"), Memory: aws.String("512"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(staging.Registry + "/shop/web:v1")}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("staging"), ServiceName: aws.String("web"), TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(1),
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true}}}); err != nil {
		t.Fatal(err)
	}
	waitRuns := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			svcs := st.Runtimes["staging"].Services()
			if len(svcs) == 1 && svcs[0].Tasks == 1 && svcs[0].Digests["app"] == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("staging's service runs %+v, want %s", svcs, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitRuns(digest.String()) // the tag, resolved through staging's local ECR

	// The promoter's adapter, over the same endpoints.
	rt, err := st.Runtime("staging")
	if err != nil {
		t.Fatal(err)
	}
	const next = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	cur, err := rt.Services.ServiceTaskDefinition(ctx, "staging", "web")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := rt.Services.Register(ctx, cur, "app", staging.Registry+"/shop/web@"+next)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Services.UpdateService(ctx, "staging", "web", reg.ARN); err != nil {
		t.Fatal(err)
	}
	waitRuns(next)
	if _, err := rt.Parameters.PutParameter(ctx, "/regflow/shop/web", `{"digest":"`+next+`"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Parameters.GetParameter(ctx, "/regflow/none"); err == nil || !errors.Is(err, deploy.ErrNotFound) {
		t.Fatalf("missing parameter: %v", err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var names []string
	for _, ev := range got {
		names = append(names, ev.Detail.EventName)
		if ev.Account != staging.Account || ev.Cluster != "staging" || ev.Service != "web" {
			t.Errorf("event of %s %s/%s", ev.Account, ev.Cluster, ev.Service)
		}
	}
	want := []string{ecsevent.InProgress, ecsevent.Completed, ecsevent.InProgress, ecsevent.Completed}
	if len(names) != len(want) {
		t.Fatalf("ECS events on the bus: %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("ECS events on the bus: %v, want %v", names, want)
		}
	}
}

// TestDeployToSeededTargets: the Deployer over Stack.Runtime promotes a digest to seeded
// ECS and Lambda targets (a redelivery changes nothing), and a digest marked bad fails its
// ECS deployment, which the circuit breaker rolls back to what ran before.
func TestDeployToSeededTargets(t *testing.T) {
	ctx := context.Background()
	cfg := loadConfig(t)
	stg := cfg.Environments["staging"]
	stg.Deploy.Targets = []config.DeployTarget{
		{Repositories: "shop/*", ECS: &config.ECSTarget{Cluster: "staging", Service: "web", Container: "app"}},
		{Repositories: "shop/web", Lambda: &config.LambdaTarget{Function: "web-worker", Alias: "live"}},
	}
	cfg.Environments["staging"] = stg
	st, err := localstack.Start(ctx, localstack.Options{Config: cfg, Dir: t.TempDir(), DeploymentDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := st.Config.Environments["staging"].Registry
	const (
		d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
		d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
		d3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	)
	for range 2 { // seeding again leaves what exists
		if err := st.SeedTargets(ctx, "staging", "shop/web", reg+"/shop/web@"+d1); err != nil {
			t.Fatal(err)
		}
	}
	rt := st.Runtimes["staging"]
	wait := func(digest string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			svcs := rt.Services()
			if len(svcs) == 1 && svcs[0].Tasks == 1 && svcs[0].Digests["app"] == digest {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("service runs %+v, want %s", svcs, digest)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait(d1)
	d := &deploy.Deployer{Config: st.Config, Runtimes: func(_ context.Context, env string) (deploy.Runtime, error) { return st.Runtime(env) }}
	for i := range 2 {
		out, err := d.Deploy(ctx, deploy.Release{Env: "staging", Repository: "shop/web", Digest: d2, RequestID: "r1", At: time.Now()})
		if err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		for _, o := range out {
			if o.Changed != (i == 0) {
				t.Fatalf("delivery %d: %+v", i+1, o)
			}
		}
	}
	wait(d2)
	if fns := rt.Functions(); len(fns) != 1 || fns[0].Version != "2" || fns[0].Image != reg+"/shop/web@"+d2 {
		t.Fatalf("functions %+v", fns)
	}
	rt.MarkBad(d3)
	if _, err := d.Deploy(ctx, deploy.Release{Env: "staging", Repository: "shop/web", Digest: d3, RequestID: "r2", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.SettleDeployments(ctx); err != nil {
		t.Fatal(err)
	}
	if svcs := rt.Services(); svcs[0].Digests["app"] != d2 {
		t.Fatalf("after the failed deployment the service runs %+v, want %s", svcs, d2)
	}
	if svcs := rt.Services(); !strings.HasSuffix(svcs[0].TaskDefinition, "web:2") {
		t.Fatalf("after the rollback the service's task definition is %s", svcs[0].TaskDefinition)
	}
}
