package localecr_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/local/localecr"
)

func TestPushDescribeDeleteWithEvents(t *testing.T) {
	srv, log := start(t, localecr.Options{Account: "111111111111"})
	c := client(srv)
	ctx := ctxT(t)
	a := auth(t, c)
	createRepo(t, c, "team/app")

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, srv, "team/app:v1"), img, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(ref(t, srv, "team/app:v1").Context().Tag("latest"), img, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	dig, _ := img.Digest()

	out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("team/app")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.ImageDetails) != 1 {
		t.Fatalf("DescribeImages: %d images, want 1", len(out.ImageDetails))
	}
	d := out.ImageDetails[0]
	if got := aws.ToString(d.ImageDigest); got != dig.String() {
		t.Errorf("digest %s, want %s", got, dig)
	}
	if !slices.Equal(d.ImageTags, []string{"latest", "v1"}) {
		t.Errorf("tags %v", d.ImageTags)
	}
	m, _ := img.Manifest()
	var size int64
	for _, l := range m.Layers {
		size += l.Size
	}
	if d.ImagePushedAt == nil || aws.ToInt64(d.ImageSizeInBytes) != size {
		t.Errorf("pushedAt %v size %v, want size %d (sum of layers)", d.ImagePushedAt, aws.ToInt64(d.ImageSizeInBytes), size)
	}
	if aws.ToString(d.ImageManifestMediaType) != string(m.MediaType) || aws.ToString(d.ArtifactMediaType) != string(m.Config.MediaType) {
		t.Errorf("media types %q %q", aws.ToString(d.ImageManifestMediaType), aws.ToString(d.ArtifactMediaType))
	}

	del, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{
		RepositoryName: aws.String("team/app"),
		ImageIds:       []types.ImageIdentifier{{ImageDigest: aws.String(dig.String())}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.ImageIds) != 2 || len(del.Failures) != 0 {
		t.Fatalf("BatchDeleteImage by digest: %+v", del)
	}
	if _, err := remote.Head(ref(t, srv, "team/app:v1"), remoteOpts(t, a)...); err == nil {
		t.Error("tag v1 still resolves after its digest was deleted")
	}
	if err := srv.WaitEvents(ctx); err != nil {
		t.Fatal(err)
	}
	got := actions(t, log.take())
	want := []string{
		"PUSH team/app v1 " + dig.String(),
		"PUSH team/app latest " + dig.String(),
		"DELETE team/app latest " + dig.String(),
		"DELETE team/app v1 " + dig.String(),
	}
	if !slices.Equal(got, want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}

	_, err = c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("nope")})
	var rnf *types.RepositoryNotFoundException
	if !errors.As(err, &rnf) {
		t.Errorf("DescribeImages of a missing repository: %v, want RepositoryNotFoundException", err)
	}
}
