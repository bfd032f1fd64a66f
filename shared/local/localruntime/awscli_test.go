package localruntime_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/regflow/regflow/shared/local/localruntime"
	"github.com/regflow/regflow/shared/local/testenv"
)

// TestAWSCLI: aws-cli reaches the local control planes through AWS_ENDPOINT_URL_ECS,
// _LAMBDA and _SSM, unmodified, and reads what regflow's in-use protection reads.
func TestAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs aws-cli")
	}
	bin, err := exec.LookPath("aws")
	if err != nil {
		testenv.Unavailable(t, "aws-cli not found (it is on the machine image)")
	}
	e := start(t, localruntime.Options{DeploymentDelay: time.Second, TickInterval: time.Hour})
	seedService(t, e.ecs, digestA, true)
	e.clock.Advance(time.Second)
	e.srv.Tick()
	createFunction(t, e.lambda, repo+"@"+digestA)
	if _, err := e.ssm.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/regflow/shop/web"), Value: aws.String("v1"), Type: ssmtypes.ParameterTypeString}); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--output", "json")...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1",
			"AWS_ENDPOINT_URL_ECS="+e.srv.URL(), "AWS_ENDPOINT_URL_LAMBDA="+e.srv.URL(), "AWS_ENDPOINT_URL_SSM="+e.srv.URL(),
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return v
	}
	tasks := cli("ecs", "list-tasks", "--cluster", "prod", "--service-name", "web")["taskArns"].([]any)
	if len(tasks) != 2 {
		t.Fatalf("list-tasks: %v", tasks)
	}
	desc := cli("ecs", "describe-tasks", "--cluster", "prod", "--tasks", tasks[0].(string))
	c := desc["tasks"].([]any)[0].(map[string]any)["containers"].([]any)[0].(map[string]any)
	if c["imageDigest"] != digestA {
		t.Fatalf("describe-tasks container %v", c)
	}
	svc := cli("ecs", "describe-services", "--cluster", "prod", "--services", "web")["services"].([]any)[0].(map[string]any)
	if !strings.HasSuffix(svc["taskDefinition"].(string), "web:1") {
		t.Fatalf("describe-services %v", svc["taskDefinition"])
	}
	if a := cli("lambda", "get-alias", "--function-name", "web-worker", "--name", "live"); a["FunctionVersion"] != "1" {
		t.Fatalf("get-alias %v", a)
	}
	if f := cli("lambda", "get-function", "--function-name", "web-worker"); f["Code"].(map[string]any)["ResolvedImageUri"] != repo+"@"+digestA {
		t.Fatalf("get-function %v", f["Code"])
	}
	if h := cli("ssm", "get-parameter-history", "--name", "/regflow/shop/web")["Parameters"].([]any); len(h) != 1 {
		t.Fatalf("get-parameter-history %v", h)
	}
}
