package localecr_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/regflow/regflow/shared/local/localecr"
)

// tagDigestOutcome deletes by tag and digest together on one endpoint: A holds tags a1 and a2,
// B holds b1. A mismatched pair (a1 with B's digest) must be refused and change nothing; a
// matching pair removes just that tag.
func tagDigestOutcome(t *testing.T, c *ecr.Client, A, B diffImage) (mismatch, match []string, tagsLeft []string) {
	t.Helper()
	ctx := ctxT(t)
	for _, put := range []struct {
		im  diffImage
		tag string
	}{{A, "a1"}, {A, "a2"}, {B, "b1"}} {
		if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(put.im.manifest), ImageTag: aws.String(put.tag)}); err != nil {
			t.Fatalf("put %s: %v", put.tag, err)
		}
	}
	del := func(tag, digest string) []string {
		out, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("app"),
			ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tag), ImageDigest: aws.String(digest)}}})
		if err != nil {
			t.Fatal(err)
		}
		return append(normFailures(out.Failures), normIDs(out.ImageIds)...)
	}
	// Digests as each endpoint reports them (moto's need not be sha256 of the manifest).
	digestOf := func(tag string) string {
		out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tag)}}})
		if err != nil || len(out.ImageDetails) != 1 {
			t.Fatalf("describe %s: %v", tag, err)
		}
		return aws.ToString(out.ImageDetails[0].ImageDigest)
	}
	a, b := digestOf("a1"), digestOf("b1")
	mismatch = del("a1", b)
	match = del("a1", a)
	out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(a)}}})
	switch {
	case errCode(err) == "ImageNotFoundException":
		tagsLeft = []string{"(A is gone)"}
	case err != nil || len(out.ImageDetails) != 1:
		t.Fatalf("describe A: %v", err)
	default:
		tagsLeft = out.ImageDetails[0].ImageTags
	}
	// Replace the endpoint's digests by names so the two endpoints compare.
	for _, s := range [][]string{mismatch, match} {
		for i := range s {
			s[i] = replaceAll(s[i], map[string]string{a: "A", b: "B"})
		}
	}
	return mismatch, match, tagsLeft
}

func replaceAll(s string, m map[string]string) string {
	for from, to := range m {
		for i := 0; i+len(from) <= len(s); i++ {
			if s[i:i+len(from)] == from {
				s = s[:i] + to + s[i+len(from):]
				i += len(to) - 1
			}
		}
	}
	return s
}

// TestDeleteByTagAndDigest: ECR refuses a tag removal whose digest the tag no longer names
// (ImageTagDoesNotMatchDigest), which is what lets regflow remove a tag without a race.
func TestDeleteByTagAndDigest(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	c := client(srv)
	a := auth(t, c)
	A, B := newDiffImage(t), newDiffImage(t)
	createRepo(t, c, "app")
	uploadBlobs(t, srv, a, "app", A.img)
	uploadBlobs(t, srv, a, "app", B.img)
	mismatch, match, left := tagDigestOutcome(t, c, A, B)
	if want := []string{"ImageTagDoesNotMatchDigest|B|a1"}; !equal(mismatch, want) {
		t.Errorf("mismatched tag and digest: %q, want %q", mismatch, want)
	}
	if want := []string{"A|a1"}; !equal(match, want) {
		t.Errorf("matching tag and digest: %q, want %q", match, want)
	}
	if !equal(left, []string{"a2"}) {
		t.Errorf("tags left on A: %q, want [a2]", left)
	}
}

// TestMotoDiffers_TagDigestMismatch: moto 5.2.1 reports a tag and digest that disagree as
// ImageNotFound (ECR: ImageTagDoesNotMatchDigest), and deletes the whole image, every tag,
// for a matching pair (the local ECR, as a tag removal checked against the digest, removes
// only that tag). Both leave the mismatched image alone. regflow's RemoveTag is therefore
// tested against the local ECR (shared/ecr TestRemoveTag).
func TestMotoDiffers_TagDigestMismatch(t *testing.T) {
	p := newPair(t)
	A, B := newDiffImage(t), newDiffImage(t)
	createRepo(t, p.moto, "app")
	mismatch, match, left := tagDigestOutcome(t, p.moto, A, B)
	if want := []string{"ImageNotFound|B|a1"}; !equal(mismatch, want) {
		t.Errorf("moto now answers a mismatch with %q (was %q): if it says ImageTagDoesNotMatchDigest, fold this into the differential scenario", mismatch, want)
	}
	if want := []string{"A|a1", "A|a2"}; !equal(match, want) || !equal(left, []string{"(A is gone)"}) {
		t.Errorf("moto's delete by a matching tag and digest now gives %q leaving %q (was: the whole image)", match, left)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
