package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store/dynamo"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// manifest is the image events/promoter/promotion-approved.json names (its sha256 is the digest there).
const manifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`

// TestUnderLambdaRIE runs the promoter bootstrap under the Runtime Interface Emulator: STS and
// EventBridge in moto, the store in DynamoDB Local, the target account's ECR (API and /v2 with
// token auth) a local ECR, the source a plain OCI registry.
func TestUnderLambdaRIE(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and needs the emulators")
	}
	ctx := context.Background()
	src := httptest.NewServer(registry.New(registry.Logger(discard())))
	defer src.Close()
	srcHost := strings.TrimPrefix(src.URL, "http://")
	staging, err := localecr.New(localecr.Options{Account: "222222222222"})
	if err != nil {
		t.Fatal(err)
	}
	if err := staging.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer staging.Close()

	sample, err := os.ReadFile(filepath.Join("..", "..", "events", "promoter", "promotion-approved.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Detail event.PromotionDecision `json:"detail"`
	}
	if err := json.Unmarshal(sample, &ev); err != nil {
		t.Fatal(err)
	}
	// The source holds the approved image.
	repo, _ := name.NewRepository(srcHost+"/"+ev.Detail.Repository, name.Insecure)
	if err := remote.WriteLayer(repo, static.NewLayer([]byte("{}"), types.OCIConfigJSON)); err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(repo.Tag(ev.Detail.Tag), rawManifest(manifest)); err != nil {
		t.Fatal(err)
	}

	sl := slacklocal.Start(nil)
	defer sl.Stop()
	cfg := `{"pipeline":{"account":"111111111111","table":"regflow-promoter"},"promotionPath":["dev","staging"],
"environments":{"dev":{"account":"111111111111","registry":"` + srcHost + `"},
"staging":{"account":"222222222222","registry":"` + staging.Host() + `","promotionRole":"arn:aws:iam::222222222222:role/regflow-promotion","externalId":"regflow-staging"}}}`
	fenv := testenv.NewFunctionEnv(t, cfg, "regflow-promoter", sl.APIURL())
	st := dynamo.New(fenv.DynamoDB, fenv.Table)
	now := time.Now().UTC()
	if _, err := st.CreateRequest(ctx, regflow.ApprovalRequest{ID: ev.Detail.RequestID, Env: "staging", Repository: ev.Detail.Repository,
		Digest: ev.Detail.Digest, Tag: ev.Detail.Tag, Status: regflow.StatusApproved, Required: 1, Approvals: []regflow.Vote{{User: "U0BOB", At: now}},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	vars := append(fenv.Vars, "AWS_ENDPOINT_URL_ECR="+staging.URL(), "AWS_ENDPOINT_URL_STS="+fenv.Moto.Endpoint)
	rie := testenv.LambdaRIE(t, testenv.BuildBootstrap(t, "."), vars)
	for i, want := range []string{"promoted", "already-promoted"} {
		body, err := rie.Invoke(ctx, sample)
		if err != nil {
			t.Fatal(err)
		}
		var res map[string]any
		if err := json.Unmarshal(body, &res); err != nil || res["outcome"] != want {
			t.Fatalf("delivery %d: %s\n%s", i+1, body, rie.Log())
		}
	}
	ref, _ := name.ParseReference(staging.Host()+"/"+ev.Detail.Repository+":"+ev.Detail.Tag, name.Insecure)
	user, pass := staging.Credentials()
	d, err := remote.Head(ref, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	if err != nil || d.Digest.String() != ev.Detail.Digest {
		t.Fatalf("staging has %v, %v; want %s", d, err, ev.Detail.Digest)
	}
	rel, err := st.GetRelease(ctx, "staging", ev.Detail.Repository)
	if err != nil || rel.Digest != ev.Detail.Digest {
		t.Fatalf("release pointer = %+v, %v", rel, err)
	}
	// One promotion, counted once with its bytes and once with its duration (EMF lines in
	// the function's output); the redelivery promotes nothing and counts nothing.
	for metric, want := range map[string]int{`"Promotions":1`: 1, `"PromotionDuration":`: 1, `"PromotionBytesMoved":`: 1} {
		if n := strings.Count(rie.Log(), metric); n != want {
			t.Fatalf("%d EMF documents with %s, want %d:\n%s", n, metric, want, rie.Log())
		}
	}
	t.Logf("RIE init duration: %s", rie.InitDuration())
}
