package scangate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/regflow"
)

// promote finishes what the promoter does after the copy: the tag, the pointer, the event.
func promote(t *testing.T, st *localstack.Stack, repo name.Repository, digest, tag string, write func(name.Reference) error) {
	t.Helper()
	ctx := context.Background()
	if err := write(repo.Tag(tag)); err != nil {
		t.Fatal(err)
	}
	if err := st.Store.PutRelease(ctx, regflow.Release{Env: "staging", Repository: repo.RepositoryStr(), Digest: digest, Tag: tag, By: "U0BOB", At: st.Clock.Now(), Version: 1}); err != nil {
		t.Fatal(err)
	}
	announce(t, st, repo, digest, tag)
}

// announce publishes "Image Promoted" as the promoter does.
func announce(t *testing.T, st *localstack.Stack, repo name.Repository, digest, tag string) {
	t.Helper()
	ctx := context.Background()
	if err := st.Publisher.Publish(ctx, event.Message{Detail: event.ImagePromoted{RequestID: "req-x", Env: "staging", Repository: repo.RepositoryStr(), Digest: digest, Tag: tag},
		Key: "promoted/" + digest, At: st.Clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
}

// The promoter writes a digest before its tag, and a scan on push can finish in between
// (ECR scans a pushed manifest; the local ECR at once). That scan finds an untagged image
// and gates nothing; "Image Promoted" makes the gate look again at the scans it recorded,
// so prod's request opens whatever the order.
func TestScanBeforeTheTagStillOpensTheNextRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		multi bool
	}{{"image", false}, {"index of two platforms", true}} {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := start(t)
			ctx := context.Background()
			repo, _ := name.NewRepository(st.Info().Environments["staging"].Registry+"/shop/web", name.Insecure)
			var digest string
			var scanned []string
			var write func(name.Reference) error
			if tc.multi {
				idx, err := ocitest.RandomIndex(11, 2, 1, 512)
				if err != nil {
					t.Fatal(err)
				}
				desc, _ := partial.Descriptor(idx)
				digest = desc.Digest.String()
				im, _ := idx.IndexManifest()
				for _, m := range im.Manifests {
					scanned = append(scanned, m.Digest.String())
				}
				write = func(r name.Reference) error { return remote.WriteIndex(r, idx) }
			} else {
				img, err := random.Image(512, 1)
				if err != nil {
					t.Fatal(err)
				}
				d, _ := img.Digest()
				digest, scanned = d.String(), []string{d.String()}
				write = func(r name.Reference) error { return remote.Write(r, img) }
			}
			// The copy by digest, and its scans, before the tag.
			if err := write(repo.Digest(digest)); err != nil {
				t.Fatal(err)
			}
			for _, d := range scanned {
				if err := st.ECR["staging"].InjectScan("shop/web", d); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Settle(ctx); err != nil {
				t.Fatal(err)
			}
			id := regflow.RequestID("prod", "shop/web", digest)
			if _, err := st.Store.GetRequest(ctx, id); err == nil {
				t.Fatal("an untagged image was gated")
			}
			promote(t, st, repo, digest, sha, write)
			r, err := st.Store.GetRequest(ctx, id)
			if err != nil || r.Status != regflow.StatusWaiting || r.Tag != sha {
				t.Fatalf("prod's request after the promotion: %+v, %v; want waiting for staging's verification", r, err)
			}
			// Delivered again: the same request, unchanged.
			announce(t, st, repo, digest, sha)
			again, _ := st.Store.GetRequest(ctx, id)
			if again.Version != r.Version {
				t.Fatalf("a redelivered Image Promoted changed the request: %+v", again)
			}
		})
	}
}

// A promotion outrun by a newer approval leaves its copy in place: that digest came by
// promotion (no custody alert), and its recorded scan is gated when the promoter says so.
func TestSupersededCopyIsInCustody(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	repo, _ := name.NewRepository(st.Info().Environments["staging"].Registry+"/shop/web", name.Insecure)
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	digest := d.String()
	if err := remote.Write(repo.Digest(digest), img); err != nil {
		t.Fatal(err)
	}
	if err := st.ECR["staging"].InjectScan("shop/web", digest); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Tag(sha), img); err != nil {
		t.Fatal(err)
	}
	id := regflow.RequestID("staging", "shop/web", digest)
	if _, err := st.Store.CreateRequest(ctx, regflow.ApprovalRequest{ID: id, Env: "staging", Repository: "shop/web", Digest: digest, Tag: sha,
		Status: regflow.StatusSuperseded, Required: 1, CreatedAt: st.Clock.Now(), ExpiresAt: st.Clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.Publisher.Publish(ctx, event.Message{Detail: event.PromotionSuperseded{RequestID: id, Env: "staging", Repository: "shop/web", Digest: digest, Tag: sha},
		Key: "superseded/" + id, At: st.Clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := st.Store.GetRequest(ctx, regflow.RequestID("prod", "shop/web", digest)); err != nil || r.Status != regflow.StatusWaiting {
		t.Fatalf("prod's request for the superseded copy: %+v, %v", r, err)
	}
	for _, m := range messages(st, st.Config.Alerts.SlackChannel) {
		if strings.Contains(m.Text, "pushed directly") {
			t.Fatalf("a custody alert for a promoted copy: %s", m.Text)
		}
	}
}
