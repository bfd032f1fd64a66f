package localruntime_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/regflow/regflow/shared/ecsevent"
	"github.com/regflow/regflow/shared/local/localruntime"
)

// running is "taskDefinition app=digest envoy=digest ×n" of the service's tasks, read
// through ListTasks and DescribeTasks as in-use protection reads them.
func running(t *testing.T, c *ecs.Client) string {
	t.Helper()
	ctx := context.Background()
	list, err := c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("web")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.TaskArns) == 0 {
		return "no tasks"
	}
	out, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: list.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, task := range out.Tasks {
		var parts []string
		td := aws.ToString(task.TaskDefinitionArn)
		parts = append(parts, td[strings.LastIndex(td, "/")+1:])
		for _, ct := range task.Containers {
			parts = append(parts, aws.ToString(ct.Name)+"="+short(aws.ToString(ct.ImageDigest)))
		}
		seen[strings.Join(parts, " ")]++
	}
	var lines []string
	for k, n := range seen {
		lines = append(lines, fmt.Sprintf("%s ×%d", k, n))
	}
	return strings.Join(lines, "; ")
}

func short(d string) string {
	if len(d) > 8 {
		return d[7:11]
	}
	return d
}

func names(evs []*ecsevent.DeploymentStateChange) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Detail.EventName+" "+e.Detail.Reason)
	}
	return out
}

func service(t *testing.T, c *ecs.Client) (taskDef string, rollouts []string) {
	t.Helper()
	out, err := c.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("describe: %v %+v", err, out)
	}
	for _, d := range out.Services[0].Deployments {
		rollouts = append(rollouts, aws.ToString(d.Status)+"/"+string(d.RolloutState))
	}
	td := aws.ToString(out.Services[0].TaskDefinition)
	return td[strings.LastIndex(td, "/")+1:], rollouts
}

// TestDeploymentRunsTheNewDigest: the service's tasks run the new digest only once the
// deployment completes after the delay on the clock; the sidecar's tag resolves through
// the local ECR's callback; the events decode as ECS's.
func TestDeploymentRunsTheNewDigest(t *testing.T) {
	e := start(t, localruntime.Options{DeploymentDelay: time.Minute, TickInterval: time.Hour,
		ResolveImage: func(_ context.Context, image string) (string, error) {
			if image == "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29" {
				return digestS, nil
			}
			return "", fmt.Errorf("%s: no such image", image)
		}})
	ctx := context.Background()
	seedService(t, e.ecs, digestA, true)
	if got := running(t, e.ecs); got != "no tasks" {
		t.Fatalf("before the first deployment completes: %s", got)
	}
	e.clock.Advance(time.Minute)
	e.srv.Tick()
	if got := running(t, e.ecs); got != "web:1 app=aaaa envoy=5555 ×2" {
		t.Fatalf("after the first deployment: %s", got)
	}
	first := e.ev.take(e.srv)
	if len(first) != 2 || first[0].Detail.EventName != ecsevent.InProgress || first[1].Detail.EventName != ecsevent.Completed ||
		first[0].Detail.DeploymentID != first[1].Detail.DeploymentID || first[0].Cluster != "prod" || first[0].Service != "web" || first[0].Account != motoAccount {
		t.Fatalf("events %v", names(first))
	}

	next := registerTD(t, e.ecs, digestB)
	if _, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), TaskDefinition: aws.String(next)}); err != nil {
		t.Fatal(err)
	}
	td, rollouts := service(t, e.ecs)
	if td != "web:2" || strings.Join(rollouts, ",") != "PRIMARY/IN_PROGRESS,ACTIVE/COMPLETED" {
		t.Fatalf("during the deployment: %s %v", td, rollouts)
	}
	e.clock.Advance(59 * time.Second)
	e.srv.Tick()
	if got := running(t, e.ecs); got != "web:1 app=aaaa envoy=5555 ×2" {
		t.Fatalf("before the delay: %s", got)
	}
	e.clock.Advance(time.Second)
	e.srv.Tick()
	if got := running(t, e.ecs); got != "web:2 app=bbbb envoy=5555 ×2" {
		t.Fatalf("after the delay: %s", got)
	}
	if td, rollouts := service(t, e.ecs); td != "web:2" || strings.Join(rollouts, ",") != "PRIMARY/COMPLETED" {
		t.Fatalf("after the deployment: %s %v", td, rollouts)
	}
	evs := e.ev.take(e.srv)
	if len(evs) != 2 || evs[0].Detail.EventName != ecsevent.InProgress || evs[1].Detail.EventName != ecsevent.Completed ||
		!evs[1].Detail.UpdatedAt.Equal(epoch.Add(2*time.Minute)) {
		t.Fatalf("events %v", names(evs))
	}
	// The same task definition again starts no deployment (a redelivery).
	if _, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), TaskDefinition: aws.String(next)}); err != nil {
		t.Fatal(err)
	}
	if evs := e.ev.take(e.srv); len(evs) != 0 {
		t.Fatalf("the same task definition again: %v", names(evs))
	}
}

// TestBadImageRollsBack: a deployment of an image marked bad fails, the circuit breaker
// rolls the service back to the last completed task definition, and the events say so in
// ECS's words; without the breaker the deployment stays IN_PROGRESS on the old tasks.
func TestBadImageRollsBack(t *testing.T) {
	for _, breaker := range []bool{true, false} {
		t.Run(fmt.Sprintf("breaker=%v", breaker), func(t *testing.T) {
			e := start(t, localruntime.Options{DeploymentDelay: time.Second, TickInterval: time.Hour})
			ctx := context.Background()
			seedService(t, e.ecs, digestA, breaker)
			e.clock.Advance(time.Second)
			e.srv.Tick()
			first := e.ev.take(e.srv)
			e.srv.MarkBad(digestB)
			next := registerTD(t, e.ecs, digestB)
			if _, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), TaskDefinition: aws.String(next)}); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				e.clock.Advance(time.Second)
				e.srv.Tick()
			}
			evs := e.ev.take(e.srv)
			td, rollouts := service(t, e.ecs)
			if n := e.srv.InProgress(); n != 0 {
				t.Fatalf("%d deployments still in progress", n)
			}
			if got := running(t, e.ecs); got != "web:1 app=aaaa envoy= ×2" {
				t.Fatalf("tasks %s", got)
			}
			if !breaker {
				if td != "web:2" || strings.Join(rollouts, ",") != "PRIMARY/IN_PROGRESS,ACTIVE/COMPLETED" || len(evs) != 1 {
					t.Fatalf("without the breaker: %s %v %v", td, rollouts, names(evs))
				}
				return
			}
			want := []string{
				ecsevent.InProgress + " ECS deployment " + evs[0].Detail.DeploymentID + " in progress.",
				ecsevent.Failed + " ECS deployment circuit breaker: task failed to start.",
				ecsevent.InProgress + " ECS deployment circuit breaker: rolling back to deploymentId " + first[0].Detail.DeploymentID + ".",
				ecsevent.Completed + " ECS deployment " + evs[2].Detail.DeploymentID + " completed.",
			}
			if strings.Join(names(evs), "\n") != strings.Join(want, "\n") {
				t.Fatalf("events\n%s\nwant\n%s", strings.Join(names(evs), "\n"), strings.Join(want, "\n"))
			}
			if evs[1].Detail.EventType != ecsevent.TypeError || !evs[2].RollingBack() || evs[1].Detail.DeploymentID != evs[0].Detail.DeploymentID {
				t.Fatalf("failed event %+v", evs[1].Detail)
			}
			if td != "web:1" || strings.Join(rollouts, ",") != "PRIMARY/COMPLETED" {
				t.Fatalf("after the rollback: %s %v", td, rollouts)
			}
		})
	}
}

// TestECSErrors: the error codes and messages ECS answers with.
func TestECSErrors(t *testing.T) {
	e := start(t, localruntime.Options{})
	ctx := context.Background()
	seedService(t, e.ecs, digestA, false)
	for _, c := range []struct {
		name      string
		call      func() error
		code, msg string
	}{
		{"describe services of a missing cluster", func() error {
			_, err := e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("nope"), Services: []string{"web"}})
			return err
		}, "ClusterNotFoundException", "Cluster not found."},
		{"update a missing service", func() error {
			_, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("nope")})
			return err
		}, "ServiceNotFoundException", "Service not found."},
		{"list tasks of a missing service", func() error {
			_, err := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("nope")})
			return err
		}, "ServiceNotFoundException", "Service not found."},
		{"describe a missing task definition", func() error {
			_, err := e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:9")})
			return err
		}, "ClientException", "Unable to describe task definition."},
		{"update to a missing task definition", func() error {
			_, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), TaskDefinition: aws.String("web:9")})
			return err
		}, "InvalidParameterException", "TaskDefinition not found."},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if errCode(err) != c.code || errMessage(err) != c.msg {
				t.Fatalf("got %s %q, want %s %q", errCode(err), errMessage(err), c.code, c.msg)
			}
		})
	}
	out, err := e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"nope"}})
	if err != nil || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" ||
		aws.ToString(out.Failures[0].Arn) != "arn:aws:ecs:us-east-1:123456789012:service/nope" {
		t.Fatalf("describe a missing service: %v %+v", err, out)
	}
}

// TestListPaginates: ListServices and ListTasks page by nextToken as the SDK's paginators expect.
func TestListPaginates(t *testing.T) {
	e := start(t, localruntime.Options{})
	ctx := context.Background()
	seedService(t, e.ecs, digestA, false)
	td := registerTD(t, e.ecs, digestA)
	for i := range 14 {
		if _, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String(fmt.Sprintf("svc-%02d", i)), TaskDefinition: aws.String(td)}); err != nil {
			t.Fatal(err)
		}
	}
	n, pages := 0, 0
	for p := ecs.NewListServicesPaginator(e.ecs, &ecs.ListServicesInput{Cluster: aws.String("prod")}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n, pages = n+len(out.ServiceArns), pages+1
	}
	if n != 15 || pages != 2 {
		t.Fatalf("%d services in %d pages, want 15 in 2 (10 a page)", n, pages)
	}
}
