package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/regflow/regflow/shared/awsapp"
	regconfig "github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store/dynamo"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// awsEnv points the default credential chain at static keys and every service at
// endpoint (empty: none), with no profile or instance metadata to fall back on.
func awsEnv(t *testing.T, endpoint, key string) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": key, "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "", "AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "",
	} {
		t.Setenv(k, v)
	}
}

func cliAWS(config string, args ...string) (string, error) {
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"--config", config}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestAgainstAWSAPIs runs the read commands and verify without --local, through the
// default credential chain to DynamoDB and STS (moto_server standing in for AWS).
func TestAgainstAWSAPIs(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	ctx := context.Background()
	moto := testenv.MotoServer(t)
	awsEnv(t, moto.Endpoint, "testing")
	awsCfg := testenv.AWSConfig(moto.Endpoint)
	db := dynamodb.NewFromConfig(awsCfg)
	if err := dynamo.CreateTable(ctx, db, "regflow"); err != nil {
		t.Fatal(err)
	}
	st := dynamo.New(db, "regflow")
	digest := "sha256:" + strings.Repeat("e", 64)
	now := time.Now().UTC().Truncate(time.Second)
	if err := st.PutImage(ctx, regflow.Image{Repository: repo, Digest: digest, Tags: []string{shaA}, Commit: shaA, PushedAt: now, RecordedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutRelease(ctx, regflow.Release{Env: "staging", Repository: repo, Digest: digest, Tag: shaA, By: "U0ALICE", At: now, Version: 1}); err != nil {
		t.Fatal(err)
	}
	req := regflow.ApprovalRequest{ID: regflow.RequestID("prod", repo, digest), Env: "prod", Repository: repo, Digest: digest, Tag: shaA,
		Status: regflow.StatusPending, Required: 2, CreatedAt: now, ExpiresAt: now.Add(72 * time.Hour), Version: 1}
	if _, err := st.CreateRequest(ctx, req); err != nil {
		t.Fatal(err)
	}
	const config = "../../regflow.yaml"

	out, err := cliAWS(config, "status", "--json")
	var rels []regflow.Release
	if err != nil || json.Unmarshal([]byte(out), &rels) != nil || len(rels) != 1 || rels[0].Digest != digest {
		t.Fatalf("status: %v\n%s", err, out)
	}
	// Staging's release parameter (in staging's account, through its deployment role) names
	// another digest: status flags the drift.
	cfg, err := regconfig.Load(config)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := awsapp.Adapters(cfg, awsCfg, awsapp.OptionsFromEnv(), nil).Runtimes(ctx, "staging")
	if err != nil {
		t.Fatal(err)
	}
	drifted := "sha256:" + strings.Repeat("f", 64)
	if _, err := rt.Parameters.PutParameter(ctx, "/regflow/"+repo, `{"digest":"`+drifted+`"}`); err != nil {
		t.Fatal(err)
	}
	out, err = cliAWS(config, "status", "--json")
	var rows []struct {
		Digest  string
		Drift   bool
		Targets []struct{ Kind, Target, Digest string }
	}
	if err != nil || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || !rows[0].Drift || len(rows[0].Targets) != 1 || rows[0].Targets[0].Digest != drifted {
		t.Fatalf("status with a drifted parameter: %v\n%s", err, out)
	}
	if out, err = cliAWS(config, "status"); err != nil || !strings.Contains(out, "DRIFT ssm /regflow/"+repo+" runs sha256:ffffffffffff") {
		t.Fatalf("status table: %v\n%s", err, out)
	}
	out, err = cliAWS(config, "approvals")
	if err != nil || !strings.Contains(out, req.ID) || !strings.Contains(out, "0/2") {
		t.Fatalf("approvals: %v\n%s", err, out)
	}
	// Without --as, the report is signed with the caller's identity from STS.
	caller, err := sts.NewFromConfig(awsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	out, err = cliAWS(config, "verify", "staging", repo+"@"+digest, "--passed", "--json")
	var v verified
	if err != nil || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if v.Verification.By != aws.ToString(caller.Arn) || v.Result.RequestID != req.ID || v.Result.Status != regflow.StatusPending {
		t.Fatalf("verify --json: %+v (caller %s)", v, aws.ToString(caller.Arn))
	}
	got, err := st.GetVerification(ctx, "staging", repo, digest)
	if err != nil || !got.Passed || got.By != aws.ToString(caller.Arn) {
		t.Fatalf("stored verification %+v %v", got, err)
	}
	out, err = cliAWS(config, "history", repo+"@"+digest)
	if err != nil || !strings.Contains(out, "verification.passed") || !strings.Contains(out, aws.ToString(caller.Arn)) {
		t.Fatalf("history: %v\n%s", err, out)
	}

	// A table that is not there: say what to deploy or fix.
	raw, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "regflow.yaml")
	if err := os.WriteFile(other, bytes.Replace(raw, []byte("table: regflow"), []byte("table: regflow-missing"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cliAWS(other, "status"); err == nil || !strings.Contains(err.Error(), `table "regflow-missing" is not in us-east-1`) {
		t.Fatalf("missing table: %v", err)
	}
}

// TestNoAWSCredentials: without credentials the CLI says how to provide them, or to use --local.
func TestNoAWSCredentials(t *testing.T) {
	awsEnv(t, "http://127.0.0.1:1", "")
	_, err := cliAWS("../../regflow.yaml", "status")
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials") || !strings.Contains(err.Error(), "--local") {
		t.Fatalf("status without credentials: %v", err)
	}
}
