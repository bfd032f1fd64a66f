package localruntime_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/regflow/regflow/shared/ecsevent"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localruntime"
	"github.com/regflow/regflow/shared/local/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// events collects what a server emits, decoded by the strict decoder regflow uses.
type events struct {
	t   testing.TB
	mu  sync.Mutex
	raw [][]byte
}

func (e *events) add(_ context.Context, b []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.raw = append(e.raw, b)
}

// take returns "EVENT_NAME reason" lines of the events delivered so far.
func (e *events) take(srv *localruntime.Server) []*ecsevent.DeploymentStateChange {
	e.t.Helper()
	if err := srv.WaitEvents(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*ecsevent.DeploymentStateChange
	for _, b := range e.raw {
		ev, err := ecsevent.Decode(b)
		if err != nil {
			e.t.Fatalf("emitted an event the decoder refuses: %v\n%s", err, b)
		}
		out = append(out, ev)
	}
	e.raw = nil
	return out
}

type env struct {
	srv    *localruntime.Server
	clock  *localecr.Clock
	ev     *events
	ecs    *ecs.Client
	lambda *lambda.Client
	ssm    *ssm.Client
	cfg    aws.Config
}

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func start(t *testing.T, opts localruntime.Options) *env {
	t.Helper()
	ev := &events{t: t}
	if opts.Clock == nil {
		opts.Clock = localecr.FixedClock(epoch)
	}
	if opts.OnEvent == nil {
		opts.OnEvent = ev.add
	}
	if opts.Account == "" {
		opts.Account = motoAccount
	}
	srv, err := localruntime.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	cfg := testenv.AWSConfig(srv.URL())
	return &env{srv: srv, clock: opts.Clock, ev: ev, ecs: ecs.NewFromConfig(cfg), lambda: lambda.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg), cfg: cfg}
}

// motoAccount is moto's default account; the local server takes it too so ARNs compare.
const motoAccount = "123456789012"

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	digestS = "sha256:5555555555555555555555555555555555555555555555555555555555555555"
	repo    = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web"
)

// seedService creates cluster prod and service web (2 tasks, circuit breaker with
// rollback as asked) running repo@digest with a sidecar by tag.
func seedService(t *testing.T, c *ecs.Client, digest string, breaker bool) string {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	arn := registerTD(t, c, digest)
	in := &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String("web"), TaskDefinition: aws.String(arn), DesiredCount: aws.Int32(2)}
	if breaker {
		in.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true}}
	}
	if _, err := c.CreateService(ctx, in); err != nil {
		t.Fatal(err)
	}
	return arn
}

func registerTD(t *testing.T, c *ecs.Client, digest string) string {
	t.Helper()
	out, err := c.RegisterTaskDefinition(context.Background(), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"), Cpu: aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{
			{Name: aws.String("app"), Image: aws.String(repo + "@" + digest), Essential: aws.Bool(true)},
			{Name: aws.String("envoy"), Image: aws.String("public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29"), Essential: aws.Bool(true)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func errMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}
