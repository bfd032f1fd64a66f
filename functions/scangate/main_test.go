package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store/dynamo"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// manifest is the image the events/scangate samples name (its sha256 is their digest).
const manifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`

// TestUnderLambdaRIE runs the scangate bootstrap under the Runtime Interface Emulator with the
// events/scangate sample: the gate of staging passes and one approval message is posted.
func TestUnderLambdaRIE(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and needs the emulators")
	}
	ctx := context.Background()
	sl := slacklocal.Start(nil)
	defer sl.Stop()
	cfg := `{"pipeline":{"account":"111111111111","table":"regflow-scangate"},"promotionPath":["dev","staging"],
"environments":{"dev":{"account":"111111111111"},"staging":{"account":"222222222222","promotionRole":"arn:aws:iam::222222222222:role/p","externalId":"xid",
"slackChannel":"C0STAGING","gate":{"CRITICAL":0},"approvers":{"users":["U0BOB"]}}},"alerts":{"slackChannel":"C0ALERTS"}}`
	fenv := testenv.NewFunctionEnv(t, cfg, "regflow-scangate", sl.APIURL())
	// The sample's image, under its SHA tag, in the dev registry (moto).
	api := ecrsdk.NewFromConfig(testenv.AWSConfig(fenv.Moto.Endpoint))
	if _, err := api.CreateRepository(ctx, &ecrsdk.CreateRepositoryInput{RepositoryName: aws.String("demo/app")}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PutImage(ctx, &ecrsdk.PutImageInput{RepositoryName: aws.String("demo/app"), ImageManifest: aws.String(manifest),
		ImageTag: aws.String("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"), ImageDigest: aws.String("sha256:7c7cc26684ee2764744fa61f4d41b53f45c0e726cef1cbc12c0acadcb0449942")}); err != nil {
		t.Fatal(err)
	}
	rie := testenv.LambdaRIE(t, testenv.BuildBootstrap(t, "."), fenv.Vars)

	event, err := os.ReadFile(filepath.Join("..", "..", "events", "scangate", "ecr-scan-complete.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	for i := range 2 { // the same event twice
		body, err := rie.Invoke(ctx, event)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(body, &res); err != nil || res["errorMessage"] != nil {
			t.Fatalf("delivery %d: %s\n%s", i+1, body, rie.Log())
		}
	}
	if res["status"] != regflow.StatusPending || res["next"] != "staging" {
		t.Fatalf("result = %v", res)
	}
	msgs := sl.Messages()
	if len(msgs) != 1 || msgs[0].Channel != "C0STAGING" || !strings.Contains(msgs[0].Text, "HIGH 2") {
		t.Fatalf("Slack got %+v, want one approval message in C0STAGING", msgs)
	}
	req, err := dynamo.New(fenv.DynamoDB, fenv.Table).GetRequest(ctx, res["requestId"].(string))
	if err != nil || req.SlackTS != msgs[0].TS || req.Tag != "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b" {
		t.Fatalf("stored request = %+v, %v", req, err)
	}
	body, err := rie.Invoke(ctx, []byte(`{"detail-type":"ECR Image Scan","source":"aws.ecr","detail":{}}`))
	if err != nil || !strings.Contains(string(body), "malformed event") {
		t.Fatalf("malformed event: %s, %v", body, err)
	}
	t.Logf("RIE init duration: %s", rie.InitDuration())
}
