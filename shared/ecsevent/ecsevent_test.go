package ecsevent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/local/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestPublishedSamples decodes AWS's four published deployment events as they are.
func TestPublishedSamples(t *testing.T) {
	dir := testenv.RealTestdata(t)
	for _, c := range []struct {
		file, name, typ string
		rollingBack     bool
	}{
		{"eventbridge-ecs-deployment-state-change-in-progress.ecs-devguide.json", InProgress, TypeInfo, false},
		{"eventbridge-ecs-deployment-state-change-in-progress-rollback.ecs-devguide.json", InProgress, TypeInfo, true},
		{"eventbridge-ecs-deployment-state-change-completed.ecs-devguide.json", Completed, TypeInfo, false},
		{"eventbridge-ecs-deployment-state-change-failed.ecs-devguide.json", Failed, TypeError, false},
	} {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Detail.EventName != c.name || ev.Detail.EventType != c.typ || ev.RollingBack() != c.rollingBack {
				t.Fatalf("decoded %+v, rollingBack %v", ev.Detail, ev.RollingBack())
			}
			if ev.Cluster != "default" || ev.Service != "servicetest" || ev.Detail.DeploymentID != "ecs-svc/123" || ev.Account != "111122223333" {
				t.Fatalf("service %s/%s deployment %s account %s", ev.Cluster, ev.Service, ev.Detail.DeploymentID, ev.Account)
			}
			if !ev.Detail.UpdatedAt.Equal(time.Date(2020, 5, 23, 11, 11, 11, 0, time.UTC)) {
				t.Fatalf("updatedAt %v", ev.Detail.UpdatedAt)
			}
			if ev.Succeeded() != (c.name == Completed) {
				t.Fatal("Succeeded")
			}
		})
	}
}

// TestOtherECSEventsRefused: the other ECS samples are not deployment state changes.
func TestOtherECSEventsRefused(t *testing.T) {
	dir := testenv.RealTestdata(t)
	files, _ := filepath.Glob(filepath.Join(dir, "eventbridge-ecs-*.json"))
	n := 0
	for _, f := range files {
		if strings.Contains(f, "deployment-state-change") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "ECS Deployment State Change") {
			t.Errorf("%s: %v, want a refusal naming the expected detail-type", filepath.Base(f), err)
		}
	}
	if n == 0 {
		t.Fatal("no other ECS samples found")
	}
}

const good = `{"version":"0","id":"1","detail-type":"ECS Deployment State Change","source":"aws.ecs","account":"111122223333",
"time":"2020-05-23T12:31:14Z","region":"us-west-2","resources":["arn:aws:ecs:us-west-2:111122223333:service/default/web"],
"detail":{"eventType":"INFO","eventName":"SERVICE_DEPLOYMENT_COMPLETED","deploymentId":"ecs-svc/1","updatedAt":"2020-05-23T11:11:11Z","reason":"done"}}`

func TestMalformed(t *testing.T) {
	for _, c := range []struct{ name, old, new, want string }{
		{"not JSON", good, `{"version":`, "not a JSON EventBridge event"},
		{"other detail-type", "ECS Deployment State Change", "ECS Service Action", `expected source aws.ecs detail-type "ECS Deployment State Change"`},
		{"other source", `"aws.ecs"`, `"aws.ecr"`, "expected source aws.ecs"},
		{"detail not object", `"detail":{"eventType":"INFO","eventName":"SERVICE_DEPLOYMENT_COMPLETED","deploymentId":"ecs-svc/1","updatedAt":"2020-05-23T11:11:11Z","reason":"done"}`, `"detail":[1]`, "detail is not a JSON object"},
		{"no deploymentId", `"deploymentId":"ecs-svc/1",`, ``, "lacks deploymentId"},
		{"bad updatedAt", `"2020-05-23T11:11:11Z"`, `"yesterday"`, "updatedAt"},
		{"unknown eventName", "SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_STEADY_STATE", `eventName "SERVICE_STEADY_STATE"`},
		{"unknown eventType", `"INFO"`, `"DEBUG"`, `eventType "DEBUG"`},
		{"no resource", `["arn:aws:ecs:us-west-2:111122223333:service/default/web"]`, `[]`, "names 0 resources"},
		{"not a service ARN", "service/default/web", "task/default/abc", "not an ECS service ARN"},
		{"empty service name", "service/default/web", "service/default/", "not an ECS service ARN"},
		{"eventName a number", `"SERVICE_DEPLOYMENT_COMPLETED"`, `7`, "eventName"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := strings.Replace(good, c.old, c.new, 1)
			_, err := Decode([]byte(b))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrMalformed mentioning %q", err, c.want)
			}
		})
	}
	if _, err := Decode([]byte(good)); err != nil {
		t.Fatal(err)
	}
}

func TestParseServiceARN(t *testing.T) {
	for _, c := range []struct{ arn, cluster, service string }{
		{"arn:aws:ecs:us-east-1:111122223333:service/prod/web", "prod", "web"},
		{"arn:aws:ecs:us-east-1:111122223333:service/web", "", "web"},
		{"arn:aws-cn:ecs:cn-north-1:111122223333:service/a/b", "a", "b"},
	} {
		cl, svc, err := ParseServiceARN(c.arn)
		if err != nil || cl != c.cluster || svc != c.service {
			t.Errorf("%s: %q %q %v", c.arn, cl, svc, err)
		}
	}
	for _, bad := range []string{"", "arn:aws:ecs:r:a:service/", "arn:aws:ecs:r:a:service/a/b/c", "arn:aws:ecr:r:a:service/a/b"} {
		if _, _, err := ParseServiceARN(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzDecode feeds mutations of the published samples; nothing panics, every refusal wraps
// ErrMalformed, every acceptance names a service and a known event.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(good))
	if root, err := testenv.RepoRoot(); err == nil {
		files, _ := filepath.Glob(filepath.Join(root, "..", "shared", "testdata", "real", "eventbridge-ecs-*.json"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if ev.Service == "" || ev.Detail.DeploymentID == "" || ev.Detail.UpdatedAt.IsZero() {
			t.Fatalf("accepted %+v", ev)
		}
	})
}
