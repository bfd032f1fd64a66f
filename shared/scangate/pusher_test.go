package scangate_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
)

// putImageCall wraps CloudTrail's published PutImage record in the "AWS API Call via
// CloudTrail" event EventBridge delivers, pointed at repo@digest in dev's registry and made
// by principal.
func putImageCall(t *testing.T, repo, digest, principal string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RealTestdata(t), "cloudtrail-ecr-put-image.ecr-userguide.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	rec["userIdentity"].(map[string]any)["arn"] = principal
	rec["awsRegion"], rec["recipientAccountId"] = "us-east-1", "111111111111"
	rec["requestParameters"].(map[string]any)["repositoryName"] = repo
	rec["requestParameters"].(map[string]any)["registryId"] = "111111111111"
	img := rec["responseElements"].(map[string]any)["image"].(map[string]any)
	img["repositoryName"], img["registryId"] = repo, "111111111111"
	img["imageId"].(map[string]any)["imageDigest"] = digest
	out, _ := json.Marshal(map[string]any{"version": "0", "id": "ct-" + digest[7:19], "detail-type": "AWS API Call via CloudTrail", "source": "aws.ecr",
		"account": "111111111111", "time": "2026-11-27T09:00:05Z", "region": "us-east-1", "resources": []string{}, "detail": rec})
	return out
}

// TestRequesterFromCloudTrailPutImage: where approvals.requesters maps the principal that
// pushed an image (CloudTrail's PutImage identity), that Slack user is the requester of its
// first promotion and cannot approve it, whether the push record arrives before or after the scan.
func TestRequesterFromCloudTrailPutImage(t *testing.T) {
	const alice = "arn:aws:sts::111111111111:assumed-role/ci/alice@example.com"
	for _, pushFirst := range []bool{true, false} {
		name := map[bool]string{true: "push record before the scan", false: "push record after the scan"}[pushFirst]
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Load(filepath.Join("..", "..", "regflow.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Approvals.Requesters = []config.RequesterIdentity{{Principal: "arn:aws:sts::111111111111:assumed-role/ci/alice@*", SlackUser: "U0ALICE"}}
			st, err := localstack.Start(context.Background(), localstack.Options{Config: cfg, Dir: t.TempDir(),
				Clock: localecr.FixedClock(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(st.Close)
			ctx := context.Background()
			digest := push(t, st, "dev", "shop/web", sha)
			call := putImageCall(t, "shop/web", digest, alice)
			scan := func() {
				if err := st.ECR["dev"].InjectScan("shop/web", digest); err != nil {
					t.Fatal(err)
				}
				if err := st.Settle(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if !pushFirst {
				scan()
			}
			for range 2 { // redelivered
				if _, err := st.Gate.Invoke(ctx, call); err != nil {
					t.Fatalf("CloudTrail PutImage event: %v", err)
				}
			}
			if pushFirst {
				scan()
			}
			id := regflow.RequestID("staging", "shop/web", digest)
			req, err := st.Store.GetRequest(ctx, id)
			if err != nil || req.Status != regflow.StatusPending || req.RequestedBy != "U0ALICE" {
				t.Fatalf("staging request: %+v, %v", req, err)
			}
			if res, err := st.Click(ctx, "U0ALICE", "regflow_approve", id); err != nil || res.Outcome != "refused" {
				t.Fatalf("the pusher's own approval: %+v, %v", res, err)
			}
			trail, _ := st.Store.Audit(ctx, "shop/web@"+digest)
			var pushedBy int
			for _, e := range trail {
				if e.Action == "image.pushed" && e.Actor == alice {
					pushedBy++
				}
			}
			if pushedBy != 1 {
				t.Fatalf("want one image.pushed entry by %s, trail %+v", alice, trail)
			}
		})
	}
}
