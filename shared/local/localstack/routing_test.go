package localstack_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/regflow"
)

// TestPushOutsideTheSourceEnvKeepsItsTag: the tag guard polices CI's pushes into the
// source environment only, as the AWS rule does (account of promotionPath[0]). Before the
// local bus subscribed from the routing table it guarded every account, so a user's
// push of v1.0 into staging lost its tag and, as it was the last one, the image.
func TestPushOutsideTheSourceEnvKeepsItsTag(t *testing.T) {
	ctx := context.Background()
	st, err := localstack.Start(ctx, localstack.Options{Config: loadConfig(t), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		env     string
		guarded bool
	}{
		{"staging", false},
		{"prod", false},
		{"dev", true}, // the source environment: v1.0 is not a commit SHA
	} {
		t.Run(tc.env, func(t *testing.T) {
			img, err := random.Image(512, 1)
			if err != nil {
				t.Fatal(err)
			}
			digest, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			ref, err := name.ParseReference(st.Info().Environments[tc.env].Registry+"/probe/b:v1.0", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
				t.Fatalf("push %s: %v", ref, err)
			}
			if err := st.Settle(ctx); err != nil {
				t.Fatal(err)
			}
			reg := st.Registry(tc.env)
			got, err := reg.DigestOf(ctx, "probe/b", "v1.0")
			switch {
			case tc.guarded && !errors.Is(err, regflow.ErrImageNotFound):
				t.Fatalf("the tag guard left v1.0 in the source environment: digest %q, err %v", got, err)
			case !tc.guarded && err != nil:
				t.Fatalf("v1.0 pushed into %s is gone: %v", tc.env, err)
			case !tc.guarded && got != digest.String():
				t.Fatalf("v1.0 in %s names %s, pushed %s", tc.env, got, digest)
			}
			// The image itself survives outside the source env (its only tag stayed).
			if !tc.guarded {
				if _, err := remote.Head(ref.Context().Digest(digest.String()), remote.WithContext(ctx)); err != nil {
					t.Fatalf("image %s in %s is gone: %v", digest, tc.env, err)
				}
			}
		})
	}
}
