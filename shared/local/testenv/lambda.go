package testenv

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/store/dynamo"
)

// BuildBootstrap builds the Lambda function in pkgDir for this machine, as `make build`
// does for arm64 (lambda.norpc, trimpath, stripped), and returns the binary's path.
func BuildBootstrap(t testing.TB, pkgDir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkgDir, err, b)
	}
	return out
}

// RIE is a function running under the Lambda Runtime Interface Emulator.
type RIE struct {
	url string
	mu  sync.Mutex
	log bytes.Buffer
}

// LambdaRIE starts bootstrap under aws-lambda-rie with the given extra environment.
func LambdaRIE(t testing.TB, bootstrap string, env []string) *RIE {
	t.Helper()
	bin, err := exec.LookPath("aws-lambda-rie")
	if err != nil {
		if root, rerr := RepoRoot(); rerr == nil {
			if p := filepath.Join(root, ".tools", "bin", "aws-lambda-rie"); fileExists(p) {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		Unavailable(t, "aws-lambda-rie not found: run `make tools`")
	}
	p1, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p2, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	r := &RIE{url: fmt.Sprintf("http://127.0.0.1:%d/2015-03-31/functions/function/invocations", p1)}
	cmd := exec.Command(bin, "--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(p1),
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(p2), bootstrap)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &lockedWriter{r}, &lockedWriter{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start aws-lambda-rie: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", p1))
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("aws-lambda-rie did not listen: %s", r.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

type lockedWriter struct{ r *RIE }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.log.Write(p)
}

// Log returns everything the emulator and the function printed.
func (r *RIE) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// Invoke posts an event and returns the function's response body. A function error
// still answers HTTP 200 with errorMessage/errorType, as in Lambda.
func (r *RIE) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("RIE answered HTTP %d: %s", resp.StatusCode, body)
	}
	return body, err
}

var initRE = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// InitDuration returns the init phase duration the emulator reported, if it did.
func (r *RIE) InitDuration() string {
	if m := initRE.FindStringSubmatch(r.Log()); m != nil {
		return m[1] + " ms"
	}
	return "not reported"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// FunctionEnv is what a function under the RIE needs: moto for ECR, STS, Secrets Manager and
// EventBridge, DynamoDB Local with the regflow table, the Slack secret, and the variables
// that point the function's SDK clients at them the standard way.
type FunctionEnv struct {
	Moto     *Moto
	DynamoDB *dynamodb.Client
	Table    string
	// Vars are the environment variables for LambdaRIE.
	Vars []string
}

// NewFunctionEnv prepares moto and DynamoDB Local for a function whose config is cfgJSON
// (its pipeline.table must be table). slackAPI is the Slack stand-in's URL.
func NewFunctionEnv(t testing.TB, cfgJSON, table, slackAPI string) *FunctionEnv {
	t.Helper()
	ctx := context.Background()
	moto := MotoServer(t)
	ddbURL := DynamoDBLocal(t)
	db := dynamodb.NewFromConfig(AWSConfig(ddbURL), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	if err := dynamo.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	SlackSecrets(t, AWSConfig(moto.Endpoint), "s3cr3t", "xoxb-rie")
	// The regflow bus the functions publish to (pipeline.eventBus defaults to "regflow").
	if _, err := eventbridge.NewFromConfig(AWSConfig(moto.Endpoint)).CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("regflow")}); err != nil {
		t.Fatal(err)
	}
	return &FunctionEnv{Moto: moto, DynamoDB: db, Table: table, Vars: []string{
		"REGFLOW_CONFIG_INLINE=" + cfgJSON,
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL=" + moto.Endpoint, // ECR, STS, Secrets Manager, EventBridge
		"AWS_ENDPOINT_URL_DYNAMODB=" + ddbURL,
		"REGFLOW_SLACK_API_URL=" + slackAPI,
	}}
}

// SlackSecrets stores the Slack credentials as the functions read them, under the default
// names: the bot token in regflow/slack and, apart from it, the signing secret in
// regflow/slack-signing.
func SlackSecrets(t testing.TB, cfg aws.Config, signingSecret, botToken string) {
	t.Helper()
	sm := secretsmanager.NewFromConfig(cfg)
	for name, value := range map[string]string{
		"regflow/slack":         `{"botToken":"` + botToken + `"}`,
		"regflow/slack-signing": `{"signingSecret":"` + signingSecret + `"}`,
	} {
		if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatalf("store Slack secret %s in moto: %v", name, err)
		}
	}
}
