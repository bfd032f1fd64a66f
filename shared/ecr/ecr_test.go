package ecr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const sha = "0123456789abcdef0123456789abcdef01234567"

func manifest(n int) string {
	return fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":"sha256:%064x"},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":"sha256:%064x"}]}`, n, n, n+1, n+1)
}

// seed creates repo and pushes one manifest under the given tags, returning its digest.
func seed(t *testing.T, api *ecrsdk.Client, repo string, n int, tags ...string) string {
	t.Helper()
	ctx := context.Background()
	_, _ = api.CreateRepository(ctx, &ecrsdk.CreateRepositoryInput{RepositoryName: aws.String(repo)})
	var digest string
	for _, tag := range tags {
		out, err := api.PutImage(ctx, &ecrsdk.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(manifest(n)), ImageTag: aws.String(tag)})
		if err != nil {
			t.Fatalf("put %s:%s: %v", repo, tag, err)
		}
		digest = aws.ToString(out.Image.ImageId.ImageDigest)
	}
	return digest
}

func TestAgainstMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	moto := testenv.MotoServer(t)
	api := ecrsdk.NewFromConfig(testenv.AWSConfig(moto.Endpoint))
	c := ecr.New(api, "")
	ctx := context.Background()

	digest := seed(t, api, "team/app", 1, sha, "latest")

	t.Run("mutability", func(t *testing.T) {
		m, err := c.TagMutability(ctx, "team/app")
		if err != nil {
			t.Fatal(err)
		}
		if m.Mode != regflow.Mutable {
			t.Fatalf("new repository is %q, want MUTABLE", m.Mode)
		}
		want := regflow.WantImmutable([]string{"cache-*"})
		if err := c.SetTagMutability(ctx, "team/app", want); err != nil {
			t.Fatal(err)
		}
		got, err := c.TagMutability(ctx, "team/app")
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) {
			t.Fatalf("after set: %+v, want %+v", got, want)
		}
		if err := c.SetTagMutability(ctx, "team/app", regflow.WantImmutable(nil)); err != nil {
			t.Fatal(err)
		}
		if got, _ := c.TagMutability(ctx, "team/app"); got.Mode != regflow.Immutable || len(got.Exclusions) != 0 {
			t.Fatalf("after IMMUTABLE: %+v", got)
		}
	})

	t.Run("describe", func(t *testing.T) {
		img, err := c.DescribeImage(ctx, "team/app", digest)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{sha, "latest"}, img.Tags); diff != "" {
			t.Errorf("tags:\n%s", diff)
		}
		if img.PushedAt.IsZero() {
			t.Error("imagePushedAt missing")
		}
	})

	// RemoveTag deletes by tag and digest together; moto treats that pair as a delete by
	// digest (the whole image) and reports a mismatch as ImageNotFound, so RemoveTag is tested
	// against the local ECR (TestRemoveTag), and moto's difference is pinned in localecr's
	// TestMotoDiffers_TagDigestMismatch.

	t.Run("not found", func(t *testing.T) {
		if _, err := c.TagMutability(ctx, "nope"); !errors.Is(err, regflow.ErrRepositoryNotFound) {
			t.Errorf("missing repository: %v", err)
		}
		if _, err := c.DescribeImage(ctx, "team/app", "sha256:"+fmt.Sprintf("%064x", 7)); !errors.Is(err, regflow.ErrImageNotFound) {
			t.Errorf("missing image: %v", err)
		}
	})
}
