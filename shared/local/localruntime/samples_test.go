package localruntime_test

// The local responses must have the shapes of AWS's published samples in
// ../shared/testdata/real (field names and JSON types), read in place.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/regflow/regflow/shared/local/localruntime"
	"github.com/regflow/regflow/shared/local/testenv"
)

// loadSample parses a published sample, or says where it is not JSON as published.
func loadSample(path string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := bytes.Count(b[:se.Offset], []byte("\n")) + 1
			return nil, fmt.Errorf("sample %s is not valid JSON as published (line %d): %w", filepath.Base(path), line, err)
		}
		return nil, fmt.Errorf("sample %s: %w", filepath.Base(path), err)
	}
	return v, nil
}

// shape flattens a JSON value to path → type; array elements share the path "[]".
func shape(v any, path string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		out[path] = "object"
		for k, val := range x {
			shape(val, path+"."+k, out)
		}
	case []any:
		out[path] = "array"
		for _, val := range x {
			shape(val, path+"[]", out)
		}
	case string:
		out[path] = "string"
	case float64:
		out[path] = "number"
	case bool:
		out[path] = "bool"
	case nil:
		out[path] = "null"
	}
}

// timeField: aws-cli prints times as ISO strings where the wire has epoch numbers.
func timeField(path string) bool {
	k := path[strings.LastIndex(path, ".")+1:]
	return strings.HasSuffix(k, "At") || strings.HasSuffix(k, "Date")
}

// raw calls the local server without the SDK, returning the response body as sent.
func raw(t *testing.T, srv *localruntime.Server, method, path, target string, body any) any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, srv.URL()+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s %s: HTTP %d %s", method, path, target, resp.StatusCode, out)
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%s: not JSON: %s", target+path, out)
	}
	return v
}

// invalidAsPublished are the samples SOURCES.md lists as invalid JSON.
var invalidAsPublished = map[string]bool{
	"ecs-api-update-service-task-definition.aws-cli-example.json":       true,
	"ssm-api-get-parameter-string.aws-cli-example.json":                 true,
	"ssm-api-get-parameter-securestring-decrypted.aws-cli-example.json": true,
}

func TestResponsesHaveTheSamplesShapes(t *testing.T) {
	dir := testenv.RealTestdata(t)
	e := start(t, localruntime.Options{ResolveImage: func(context.Context, string) (string, error) { return digestS, nil }})
	ctx := context.Background()
	seedService(t, e.ecs, digestA, true)
	e.clock.Advance(3 * time.Second)
	e.srv.Tick()
	createFunction(t, e.lambda, repo+"@"+digestA)
	for _, v := range []string{"a", "b"} {
		if _, err := e.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/p"), Value: aws.String(v), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	tasks, err := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("prod")})
	if err != nil || len(tasks.TaskArns) == 0 {
		t.Fatalf("no tasks: %v", err)
	}
	const ecsT, ssmT = "AmazonEC2ContainerServiceV20141113.", "AmazonSSM."
	post := func(target string, body any) func() any {
		return func() any { return raw(t, e.srv, http.MethodPost, "/", target, body) }
	}
	lam := func(method, path string, body any) func() any {
		return func() any { return raw(t, e.srv, method, "/2015-03-31/functions"+path, "", body) }
	}
	svc := map[string]any{"cluster": "prod", "services": []string{"web"}}
	describeTasks := post(ecsT+"DescribeTasks", map[string]any{"cluster": "prod", "tasks": tasks.TaskArns})
	cases := []struct {
		sample string
		local  func() any
		// must are paths the local response has to carry because regflow reads them.
		must []string
	}{
		{"ecs-api-describe-services.aws-cli-example.json", post(ecsT+"DescribeServices", svc), []string{".services[].taskDefinition", ".services[].deployments[].status", ".services[].deployments[].id"}},
		{"ecs-api-describe-services.apiref-sample-response.json", post(ecsT+"DescribeServices", svc), []string{".services[].deployments[].taskDefinition"}},
		{"ecs-api-describe-task-definition.aws-cli-example.json", post(ecsT+"DescribeTaskDefinition", map[string]any{"taskDefinition": "web"}), []string{".taskDefinition.containerDefinitions[].image", ".taskDefinition.revision"}},
		{"ecs-api-register-task-definition.aws-cli-example.json", post(ecsT+"RegisterTaskDefinition", map[string]any{"family": "web", "containerDefinitions": []any{map[string]any{"name": "app", "image": "busybox", "cpu": 10, "memory": 10, "command": []string{"sleep", "360"}, "essential": true}}}), []string{".taskDefinition.taskDefinitionArn"}},
		{"ecs-api-describe-tasks-fargate-image-digest.apiref-sample-response.json", describeTasks, []string{".tasks[].containers[].imageDigest", ".tasks[].containers[].image", ".tasks[].taskDefinitionArn", ".tasks[].group"}},
		{"ecs-api-describe-tasks-single-ec2.aws-cli-example.json", describeTasks, []string{".tasks[].containers[].name", ".tasks[].lastStatus"}},
		{"ecs-api-describe-tasks-multiple-fargate.aws-cli-example.json", describeTasks, []string{".tasks[].taskArn"}},
		{"ecs-api-list-tasks.aws-cli-example.json", post(ecsT+"ListTasks", map[string]any{"cluster": "prod"}), []string{".taskArns"}},
		{"ecs-api-list-services.aws-cli-example.json", post(ecsT+"ListServices", map[string]any{"cluster": "prod"}), []string{".serviceArns"}},
		{"ecs-api-list-clusters.aws-cli-example.json", post(ecsT+"ListClusters", map[string]any{}), []string{".clusterArns"}},
		{"ecs-api-update-service-desired-count.aws-cli-example.json", post(ecsT+"UpdateService", map[string]any{"cluster": "prod", "service": "web", "desiredCount": 2}), []string{".service.deployments[].status"}},
		{"ecs-api-update-service-task-definition.aws-cli-example.json", nil, nil},
		{"lambda-api-get-alias.aws-cli-example.json", lam(http.MethodGet, "/web-worker/aliases/live", nil), []string{".FunctionVersion", ".AliasArn"}},
		{"lambda-api-update-alias.aws-cli-example.json", lam(http.MethodPut, "/web-worker/aliases/live", map[string]any{"FunctionVersion": "1"}), []string{".FunctionVersion"}},
		{"lambda-api-publish-version.aws-cli-example.json", lam(http.MethodPost, "/web-worker/versions", map[string]any{}), []string{".Version", ".CodeSha256"}},
		{"lambda-api-get-function-configuration.aws-cli-example.json", lam(http.MethodGet, "/web-worker/configuration", nil), []string{".LastModified", ".RevisionId"}},
		{"lambda-api-list-functions.aws-cli-example.json", lam(http.MethodGet, "/", nil), []string{".Functions[].FunctionName", ".Functions[].FunctionArn"}},
		{"lambda-api-get-function-zip.aws-cli-example.json", lam(http.MethodGet, "/web-worker", nil), []string{".Code.RepositoryType", ".Configuration.Version"}},
		{"lambda-api-update-function-code-zip.aws-cli-example.json", lam(http.MethodPut, "/web-worker/code", map[string]any{"ImageUri": repo + "@" + digestB}), []string{".CodeSha256", ".FunctionArn"}},
		{"ssm-api-put-parameter-overwrite.aws-cli-example.json", post(ssmT+"PutParameter", map[string]any{"Name": "/p", "Value": "c", "Overwrite": true}), []string{".Version", ".Tier"}},
		{"ssm-api-put-parameter-advanced.aws-cli-example.json", post(ssmT+"PutParameter", map[string]any{"Name": "/p", "Value": "d", "Overwrite": true}), []string{".Version"}},
		{"ssm-api-put-parameter.apiref-sample-response.json", post(ssmT+"PutParameter", map[string]any{"Name": "/p", "Value": "e", "Overwrite": true}), []string{".Version"}},
		{"ssm-api-get-parameter-by-version.aws-cli-example.json", post(ssmT+"GetParameter", map[string]any{"Name": "/p:2"}), []string{".Parameter.Value", ".Parameter.Version", ".Parameter.Selector"}},
		{"ssm-api-get-parameter-by-label.aws-cli-example.json", func() any {
			post(ssmT+"LabelParameterVersion", map[string]any{"Name": "/p", "ParameterVersion": 1, "Labels": []string{"Month"}})()
			return post(ssmT+"GetParameter", map[string]any{"Name": "/p:Month"})()
		}, []string{".Parameter.Selector"}},
		{"ssm-api-get-parameter-securestring-encrypted.apiref-sample-response.json", post(ssmT+"GetParameter", map[string]any{"Name": "/p"}), []string{".Parameter.ARN"}},
		{"ssm-api-get-parameter-string.aws-cli-example.json", nil, nil},
		{"ssm-api-get-parameter-securestring-decrypted.aws-cli-example.json", nil, nil},
		{"ssm-api-get-parameter-history.aws-cli-example.json", post(ssmT+"GetParameterHistory", map[string]any{"Name": "/p"}), []string{".Parameters[].Version", ".Parameters[].Labels", ".Parameters[].Value"}},
		{"ssm-api-get-parameter-history.apiref-sample-response.json", post(ssmT+"GetParameterHistory", map[string]any{"Name": "/p"}), []string{".Parameters[].LastModifiedDate"}},
		{"ssm-api-label-parameter-version.apiref-sample-response.json", post(ssmT+"LabelParameterVersion", map[string]any{"Name": "/p", "ParameterVersion": 2, "Labels": []string{"Day"}}), []string{".ParameterVersion"}},
		{"ssm-api-label-parameter-version.aws-cli-example.json", post(ssmT+"LabelParameterVersion", map[string]any{"Name": "/p", "ParameterVersion": 3, "Labels": []string{"Year"}}), []string{".InvalidLabels", ".ParameterVersion"}},
	}
	for _, c := range cases {
		t.Run(c.sample, func(t *testing.T) {
			sample, err := loadSample(filepath.Join(dir, c.sample))
			if invalidAsPublished[c.sample] {
				if err == nil || !strings.Contains(err.Error(), "not valid JSON as published (line ") {
					t.Fatalf("SOURCES.md lists it as invalid JSON; loading it gave %v", err)
				}
				t.Logf("refused as published: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, got := map[string]string{}, map[string]string{}
			shape(sample, "", want)
			shape(c.local(), "", got)
			var bad []string
			for p, wt := range want {
				gt, ok := got[p]
				if !ok || gt == wt || (timeField(p) && (gt == "number" || gt == "string") && (wt == "number" || wt == "string")) {
					continue
				}
				if wt == "null" || gt == "null" {
					continue
				}
				bad = append(bad, fmt.Sprintf("%s: sample %s, local %s", p, wt, gt))
			}
			for _, p := range c.must {
				if _, ok := want[p]; !ok {
					t.Errorf("the sample has no %s (the test's list is wrong)", p)
				}
				if _, ok := got[p]; !ok {
					bad = append(bad, p+": missing locally")
				}
			}
			sort.Strings(bad)
			if len(bad) > 0 {
				t.Fatalf("shape differs from the sample:\n%s", strings.Join(bad, "\n"))
			}
		})
	}
	// Every ECS, Lambda and SSM API sample is covered or named as not applicable.
	files, _ := filepath.Glob(filepath.Join(dir, "*-api-*.json"))
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.sample] = true
	}
	notApplicable := map[string]string{
		"ecs-api-describe-service-deployments.aws-cli-example.json":                   "DescribeServiceDeployments: regflow does not call it",
		"ecs-api-describe-service-revisions.aws-cli-example.json":                     "DescribeServiceRevisions: regflow does not call it",
		"ecs-api-list-service-deployments.aws-cli-example.json":                       "ListServiceDeployments: regflow does not call it",
		"ecs-api-list-tasks-container-instance.aws-cli-example.json":                  "by container instance: the local ECS has none",
		"ecs-api-describe-services-blue-green-pause-hook.apiref-sample-response.json": "blue/green deployments: not simulated",
		"ecs-api-examples-1.botocore.json":                                            "input/output pairs of many operations",
		"lambda-api-examples-1.botocore.json":                                         "input/output pairs of many operations",
	}
	for _, f := range files {
		b := filepath.Base(f)
		if !(strings.HasPrefix(b, "ecs-") || strings.HasPrefix(b, "lambda-") || strings.HasPrefix(b, "ssm-")) {
			continue
		}
		if !covered[b] && notApplicable[b] == "" {
			t.Errorf("%s is neither compared nor named as not applicable", b)
		}
	}
}

// TestEventsHaveTheSamplesShapes: the deployment events the local ECS emits carry exactly
// the fields, and JSON types, of AWS's published ones, for each kind.
func TestEventsHaveTheSamplesShapes(t *testing.T) {
	dir := testenv.RealTestdata(t)
	e := start(t, localruntime.Options{DeploymentDelay: time.Second, TickInterval: time.Hour})
	seedService(t, e.ecs, digestA, true)
	e.clock.Advance(time.Second)
	e.srv.Tick()
	e.srv.MarkBad(digestB)
	next := registerTD(t, e.ecs, digestB)
	if _, err := e.ecs.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), TaskDefinition: aws.String(next)}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e.clock.Advance(time.Second)
		e.srv.Tick()
	}
	if err := e.srv.WaitEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.ev.mu.Lock()
	emitted := e.ev.raw
	e.ev.mu.Unlock()
	// in progress, completed, in progress, failed, rolling back, completed
	samples := []string{"in-progress", "completed", "in-progress", "failed", "in-progress-rollback", "completed"}
	if len(emitted) != len(samples) {
		t.Fatalf("%d events, want %d", len(emitted), len(samples))
	}
	for i, kind := range samples {
		sample, err := loadSample(filepath.Join(dir, "eventbridge-ecs-deployment-state-change-"+kind+".ecs-devguide.json"))
		if err != nil {
			t.Fatal(err)
		}
		var ev any
		if err := json.Unmarshal(emitted[i], &ev); err != nil {
			t.Fatal(err)
		}
		want, got := map[string]string{}, map[string]string{}
		shape(sample, "", want)
		shape(ev, "", got)
		if d := cmpShapes(want, got); d != "" {
			t.Errorf("event %d (%s) differs from the sample:\n%s\n%s", i, kind, d, emitted[i])
		}
	}
}

func cmpShapes(want, got map[string]string) string {
	var out []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			out = append(out, p+": missing")
		} else if g != w {
			out = append(out, fmt.Sprintf("%s: sample %s, local %s", p, w, g))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			out = append(out, p+": not in the sample")
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
