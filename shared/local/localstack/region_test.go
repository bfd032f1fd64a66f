package localstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/route"
)

// twoRegions is regflow.yaml with staging in dev's account, in another region.
func twoRegions(t *testing.T) *localstack.Stack {
	t.Helper()
	cfg := loadConfig(t)
	staging := cfg.Environments["staging"]
	staging.Account, staging.Region = "111111111111", "eu-west-1"
	staging.PromotionRole = "arn:aws:iam::111111111111:role/regflow-promotion"
	cfg.Environments["staging"] = staging
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := localstack.Start(context.Background(), localstack.Options{Config: cfg, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func pushTo(t *testing.T, st *localstack.Stack, env, repo string, tags ...string) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		ref, err := name.ParseReference(st.Info().Environments[env].Registry+"/"+repo+":"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// TestTagGuardIsRegionCorrect: with two environments in one account (different regions), a
// push is guarded in the registry of its own region, its audit entry names the region, and a
// push from a region no environment lives in is refused rather than "fixed" in another.
func TestTagGuardIsRegionCorrect(t *testing.T) {
	st := twoRegions(t)
	ctx := context.Background()
	const sha = "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd"
	// The same image, tagged latest in both regions' registries.
	devDigest := pushTo(t, st, "dev", "shop/web", sha)
	stagingDigest := pushTo(t, st, "staging", "shop/web", sha, "latest")
	if devDigest == stagingDigest {
		t.Fatal("want two images")
	}
	if _, err := st.Registry("staging").DigestOf(ctx, "shop/web", "latest"); !errors.Is(err, regflow.ErrImageNotFound) {
		t.Fatalf("latest pushed in eu-west-1 should be removed there: %v", err)
	}
	trail, err := st.Store.Audit(ctx, "shop/web@"+stagingDigest)
	if err != nil {
		t.Fatal(err)
	}
	var removed bool
	for _, e := range trail {
		if e.Action == event.ActionTagRemoved {
			removed = true
			if e.Details["region"] != "eu-west-1" || e.Details["account"] != "111111111111" {
				t.Errorf("tag removal entry should name account and region: %+v", e)
			}
		}
	}
	if !removed {
		t.Fatalf("no %s entry: %+v", event.ActionTagRemoved, trail)
	}

	// A push event from a region where no environment lives (us-west-2).
	ev, _ := json.Marshal(map[string]any{"version": "0", "id": "0e3c9b6a-1d4f-4c1b-9c59-2f7a1a0b7e01", "detail-type": event.TypeImageAction, "source": event.SourceECR,
		"account": "111111111111", "time": time.Now().UTC().Format(time.RFC3339), "region": "us-west-2", "resources": []string{},
		"detail": map[string]any{"result": "SUCCESS", "repository-name": "shop/web", "image-digest": devDigest, "action-type": "PUSH", "image-tag": "latest"}})
	_, err = st.App.Invoke(ctx, route.Tagguard, ev)
	if err == nil || !strings.Contains(err.Error(), "us-west-2") {
		t.Errorf("a push from an unconfigured region must be refused, naming it: %v", err)
	}
	trail, _ = st.Store.Audit(ctx, "shop/web@"+devDigest)
	for _, e := range trail {
		if strings.HasPrefix(e.ID, "0e3c9b6a-") {
			t.Errorf("the us-west-2 push was acted on in another region's registry: %+v", e)
		}
	}
}
