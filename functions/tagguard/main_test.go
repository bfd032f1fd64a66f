package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store/dynamo"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// manifest is the image the events/tagguard samples name; its sha256 is their image-digest.
const manifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "tagguard", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUnderLambdaRIE runs the real bootstrap under the Runtime Interface Emulator with the
// events/ samples, against moto's ECR and Secrets Manager, DynamoDB Local and a Slack stand-in.
func TestUnderLambdaRIE(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and needs the emulators")
	}
	ctx := context.Background()
	sl := slacklocal.Start(nil)
	defer sl.Stop()
	cfg := `{"pipeline":{"account":"111111111111","table":"regflow-rie"},"promotionPath":["dev"],` +
		`"environments":{"dev":{"account":"111111111111"}},"alerts":{"slackChannel":"C0ALERTS"}}`
	fenv := testenv.NewFunctionEnv(t, cfg, "regflow-rie", sl.APIURL())
	db := fenv.DynamoDB

	var ev struct {
		Detail struct {
			Repo   string `json:"repository-name"`
			Digest string `json:"image-digest"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(sample(t, "push-latest.json"), &ev); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(manifest))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if ev.Detail.Digest != digest {
		t.Fatalf("events/tagguard samples must name %s, the digest of this test's manifest", digest)
	}
	const shaTag = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"

	// Seed: a mutable repository holding the image under its SHA tag and latest. ECR is the
	// local ECR: moto deletes the whole image when BatchDeleteImage names a tag and its
	// digest (a known difference, localecr's TestMotoDiffers_TagDigestMismatch), where ECR
	// removes the tag.
	srv := sweeptest.StartECR(t, localecr.Options{Account: "111111111111"})
	fenv.Vars = append(fenv.Vars, "AWS_ENDPOINT_URL_ECR="+srv.URL())
	api := sweeptest.Client(srv)
	if _, err := api.CreateRepository(ctx, &ecrsdk.CreateRepositoryInput{RepositoryName: aws.String(ev.Detail.Repo)}); err != nil {
		t.Fatal(err)
	}
	sweeptest.Seed(t, srv, ev.Detail.Repo, localecr.SeedImage{Manifest: []byte(manifest), Tags: []string{shaTag, "latest"}})
	bootstrap := testenv.BuildBootstrap(t, ".")
	if fi, err := os.Stat(bootstrap); err == nil {
		t.Logf("bootstrap (host arch) size: %.1f MiB", float64(fi.Size())/(1<<20))
	}
	rie := testenv.LambdaRIE(t, bootstrap, fenv.Vars)
	invoke := func(event []byte) map[string]any {
		t.Helper()
		body, err := rie.Invoke(ctx, event)
		if err != nil {
			t.Fatalf("invoke: %v\n%s", err, rie.Log())
		}
		var out map[string]any
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("response %s: %v", body, err)
		}
		if msg, ok := out["errorMessage"]; ok {
			t.Fatalf("function error: %v\n%s", msg, rie.Log())
		}
		return out
	}
	reg := ecr.New(api, "")
	tags := func() []string {
		img, err := reg.DescribeImage(ctx, ev.Detail.Repo, digest)
		if err != nil {
			t.Fatal(err)
		}
		return img.Tags
	}

	// A compliant push is recorded with no removal, and the mutable repository becomes immutable.
	out := invoke(sample(t, "push-sha.json"))
	if out["recorded"] != true || out["tagRemoved"] == true || out["madeImmutable"] != true {
		t.Fatalf("push of the SHA tag: %v", out)
	}
	if m, _ := reg.TagMutability(ctx, ev.Detail.Repo); m.Mode != regflow.Immutable {
		t.Fatalf("repository is %s after the guard, want IMMUTABLE", m.Mode)
	}
	// latest on the same digest: only the SHA tag is left; the same event twice alerts once.
	for i := range 2 {
		out = invoke(sample(t, "push-latest.json"))
		if i == 0 && (out["tagRemoved"] != true || out["alerted"] != true) {
			t.Fatalf("first delivery of push-latest: %v", out)
		}
		if i == 1 && (out["alerted"] == true || out["tagRemoved"] == true) {
			t.Fatalf("second delivery alerted again: %v", out)
		}
	}
	if got := tags(); !slices.Equal(got, []string{shaTag}) {
		t.Fatalf("tags = %v, want only %s", got, shaTag)
	}
	if n := len(sl.Messages()); n != 1 {
		t.Fatalf("Slack got %d alerts, want 1", n)
	}
	if msg := sl.Messages()[0]; msg.Channel != "C0ALERTS" || !strings.Contains(msg.Text, "latest") {
		t.Fatalf("alert = %+v", msg)
	}
	// The violation is counted once, as an EMF document CloudWatch Logs turns into the
	// TagPolicyViolations metric.
	if n := strings.Count(rie.Log(), `"TagPolicyViolations":1`); n != 1 {
		t.Fatalf("%d EMF documents counting the violation in the function's output, want 1:\n%s", n, rie.Log())
	}
	trail, err := dynamo.New(db, "regflow-rie").Audit(ctx, ev.Detail.Repo+"@"+digest)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range trail {
		count[e.Action]++
	}
	if count[event.ActionTagRemoved] != 1 || count[event.ActionImageRecorded] != 2 {
		t.Fatalf("audit entries by action = %v: want one tag removal and one record per event", count)
	}
	// A delete is not the guard's business.
	if out := invoke(sample(t, "delete.json")); out["ignored"] != true {
		t.Fatalf("delete event: %v", out)
	}
	// A malformed event is refused with a clear error, so Lambda retries then keeps it.
	body, err := rie.Invoke(ctx, []byte(`{"detail-type":"ECR Image Action"}`))
	if err != nil || !strings.Contains(string(body), "malformed event") {
		t.Fatalf("malformed event answer: %s, %v", body, err)
	}
	t.Logf("RIE init duration: %s", rie.InitDuration())
	fmt.Fprintln(os.Stderr, rie.Log())
}
