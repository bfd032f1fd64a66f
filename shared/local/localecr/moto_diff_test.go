package localecr_test

// Differential tests: the same control-plane calls, through the real SDK ECR
// client, against moto_server and the local ECR must give the same observable
// results (fields and error codes) wherever moto implements ECR. Each place
// where moto is known to differ from ECR has its own TestMotoDiffers_* test,
// which pins moto's behaviour and checks the local one against AWS's
// published samples in ../shared/testdata/real.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/testenv"
)

// motoAccount is moto's default account; the local ECR takes the same id so results compare as they are.
const motoAccount = "123456789012"

// pair is one ECR endpoint under test.
type pair struct {
	moto, local *ecr.Client
	srv         *localecr.Server
}

func newPair(t *testing.T) pair {
	t.Helper()
	if testing.Short() {
		t.Skip("differential test against moto_server")
	}
	m := testenv.MotoServer(t)
	srv, _ := start(t, localecr.Options{Account: motoAccount})
	cfg := testenv.AWSConfig(m.Endpoint)
	cfg.Retryer = retryClosedConn
	return pair{moto: ecr.NewFromConfig(cfg), local: client(srv), srv: srv}
}

// outcome is the observable result of one call: its normalised output or its error code.
type outcome struct {
	Err string `json:",omitempty"`
	Msg string `json:",omitempty"`
	Out any    `json:",omitempty"`
}

func result(out any, err error, keepMessage bool) outcome {
	if err != nil {
		o := outcome{Err: errCode(err)}
		if keepMessage {
			o.Msg = apiMessage(err)
		}
		return o
	}
	return outcome{Out: out}
}

func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return err.Error()
}

// messagesMatch lists the error codes whose messages moto words exactly as ECR does.
var messagesMatch = map[string]bool{
	"RepositoryNotFoundException":      true,
	"RepositoryAlreadyExistsException": true,
	"RepositoryNotEmptyException":      true,
	"ImageNotFoundException":           true,
}

func normRepo(r types.Repository) map[string]any {
	var filters []string
	for _, f := range r.ImageTagMutabilityExclusionFilters {
		filters = append(filters, string(f.FilterType)+":"+aws.ToString(f.Filter))
	}
	// Not compared: repositoryUri (the local one is a usable loopback reference)
	// and createdAt (a time).
	m := map[string]any{
		"name": aws.ToString(r.RepositoryName), "registry": aws.ToString(r.RegistryId), "arn": aws.ToString(r.RepositoryArn),
		"mutability": string(r.ImageTagMutability), "filters": filters,
	}
	if r.ImageScanningConfiguration != nil {
		m["scanOnPush"] = r.ImageScanningConfiguration.ScanOnPush
	}
	if r.EncryptionConfiguration != nil {
		m["encryption"] = string(r.EncryptionConfiguration.EncryptionType)
	}
	return m
}

func normIDs(ids []types.ImageIdentifier) []string {
	out := []string{}
	for _, id := range ids {
		out = append(out, aws.ToString(id.ImageDigest)+"|"+aws.ToString(id.ImageTag))
	}
	sort.Strings(out)
	return out
}

func normFailures(fs []types.ImageFailure) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, string(f.FailureCode)+"|"+aws.ToString(f.ImageId.ImageDigest)+"|"+aws.ToString(f.ImageId.ImageTag))
	}
	sort.Strings(out)
	return out
}

func normDetails(ds []types.ImageDetail) []map[string]any {
	out := []map[string]any{}
	for _, d := range ds {
		tags := slices.Clone(d.ImageTags)
		sort.Strings(tags)
		// Not compared: imageSizeInBytes, artifactMediaType, lastRecordedPullTime
		// (see TestMotoDiffers_DescribeImagesDetailFields) and the pushedAt value.
		out = append(out, map[string]any{
			"digest": aws.ToString(d.ImageDigest), "tags": tags, "registry": aws.ToString(d.RegistryId),
			"repo": aws.ToString(d.RepositoryName), "mediaType": aws.ToString(d.ImageManifestMediaType), "pushedAt": d.ImagePushedAt != nil,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["digest"].(string) < out[j]["digest"].(string) })
	return out
}

// diffImage is an image for PutImage, with its manifest, digest and the blobs
// the local ECR needs (moto does not check layers).
type diffImage struct {
	img      v1.Image
	manifest string
	digest   string
}

func newDiffImage(t *testing.T) diffImage {
	img := testImage(t)
	return diffImage{img: img, manifest: rawManifest(t, img), digest: digestOf(t, img)}
}

// TestDifferentialAgainstMoto runs one scenario against both and compares every step.
func TestDifferentialAgainstMoto(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	a := auth(t, p.local)
	A, B, C := newDiffImage(t), newDiffImage(t), newDiffImage(t)

	put := func(repo string, im diffImage, tag string) func(c *ecr.Client) outcome {
		return func(c *ecr.Client) outcome {
			in := &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(im.manifest),
				// moto computes its own digest unless given one (TestMotoDiffers_PutImageDigest).
				ImageDigest: aws.String(im.digest)}
			if tag != "" {
				in.ImageTag = aws.String(tag)
			}
			out, err := c.PutImage(ctx, in)
			if err != nil {
				return result(nil, err, messagesMatch[errCode(err)])
			}
			i := out.Image
			return result(map[string]any{"registry": aws.ToString(i.RegistryId), "repo": aws.ToString(i.RepositoryName),
				"id": normIDs([]types.ImageIdentifier{*i.ImageId}), "manifest": aws.ToString(i.ImageManifest)}, nil, false)
		}
	}
	create := func(name string, mut types.ImageTagMutability, filters ...string) func(c *ecr.Client) outcome {
		return func(c *ecr.Client) outcome {
			out, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(name), ImageTagMutability: mut, ImageTagMutabilityExclusionFilters: wildcard(filters...)})
			if err != nil {
				return result(nil, err, messagesMatch[errCode(err)])
			}
			return result(normRepo(*out.Repository), nil, false)
		}
	}
	describeRepos := func(names ...string) func(c *ecr.Client) outcome {
		return func(c *ecr.Client) outcome {
			out, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: names})
			if err != nil {
				return result(nil, err, messagesMatch[errCode(err)])
			}
			var rs []map[string]any
			for _, r := range out.Repositories {
				rs = append(rs, normRepo(r))
			}
			sort.Slice(rs, func(i, j int) bool { return rs[i]["name"].(string) < rs[j]["name"].(string) })
			return result(rs, nil, false)
		}
	}
	mutability := func(repo string, mut types.ImageTagMutability, filters ...string) func(c *ecr.Client) outcome {
		return func(c *ecr.Client) outcome {
			out, err := c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String(repo), ImageTagMutability: mut, ImageTagMutabilityExclusionFilters: wildcard(filters...)})
			if err != nil {
				return result(nil, err, messagesMatch[errCode(err)])
			}
			// Not compared: imageTagMutabilityExclusionFilters (TestMotoDiffers_PutImageTagMutabilityResponse).
			return result(map[string]any{"registry": aws.ToString(out.RegistryId), "repo": aws.ToString(out.RepositoryName), "mutability": string(out.ImageTagMutability)}, nil, false)
		}
	}
	listImages := func(repo string) func(c *ecr.Client) outcome {
		return func(c *ecr.Client) outcome {
			out, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String(repo)})
			if err != nil {
				return result(nil, err, messagesMatch[errCode(err)])
			}
			return result(normIDs(out.ImageIds), nil, false)
		}
	}
	describeImages := func(repo string, ids ...types.ImageIdentifier) func(c *ecr.Client) outcome {
		return func(c *ecr.Client) outcome {
			out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo), ImageIds: ids})
			if err != nil {
				return result(nil, err, messagesMatch[errCode(err)])
			}
			return result(normDetails(out.ImageDetails), nil, false)
		}
	}
	batchGet := func(repo string, ids ...types.ImageIdentifier) func(c *ecr.Client) outcome {
		return func(c *ecr.Client) outcome {
			out, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String(repo), ImageIds: ids})
			if err != nil {
				return result(nil, err, messagesMatch[errCode(err)])
			}
			var images []string
			for _, im := range out.Images {
				// The echoed imageTag is not compared: moto reports the image's latest tag, ECR the requested one.
				images = append(images, aws.ToString(im.RegistryId)+"|"+aws.ToString(im.RepositoryName)+"|"+aws.ToString(im.ImageId.ImageDigest)+"|"+aws.ToString(im.ImageManifest))
			}
			sort.Strings(images)
			return result(map[string]any{"images": images, "failures": normFailures(out.Failures)}, nil, false)
		}
	}
	batchDelete := func(repo string, ids ...types.ImageIdentifier) func(c *ecr.Client) outcome {
		return func(c *ecr.Client) outcome {
			out, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String(repo), ImageIds: ids})
			if err != nil {
				return result(nil, err, messagesMatch[errCode(err)])
			}
			return result(map[string]any{"deleted": normIDs(out.ImageIds), "failures": normFailures(out.Failures)}, nil, false)
		}
	}
	deleteRepo := func(repo string, force bool) func(c *ecr.Client) outcome {
		return func(c *ecr.Client) outcome {
			out, err := c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String(repo), Force: force})
			if err != nil {
				return result(nil, err, messagesMatch[errCode(err)])
			}
			return result(normRepo(*out.Repository), nil, false)
		}
	}
	tag := func(s string) types.ImageIdentifier { return types.ImageIdentifier{ImageTag: aws.String(s)} }
	dig := func(s string) types.ImageIdentifier { return types.ImageIdentifier{ImageDigest: aws.String(s)} }

	steps := []struct {
		name string
		call func(c *ecr.Client) outcome
		// afterLocal runs against the local ECR only, after the step: the
		// registry-API work moto has no counterpart for (uploading layers).
		afterLocal func()
	}{
		{"create repository", create("diff/app", ""), nil},
		{"create immutable repository", create("diff/immutable", types.ImageTagMutabilityImmutable), nil},
		{"create repository with exclusions", create("diff/excl", types.ImageTagMutabilityImmutableWithExclusion, "dev-*"), func() {
			for _, r := range []string{"diff/app", "diff/immutable", "diff/excl"} {
				for _, im := range []diffImage{A, B, C} {
					uploadBlobs(t, p.srv, a, r, im.img)
				}
			}
		}},
		{"create existing repository", create("diff/app", ""), nil},
		{"create with an invalid name", create("Diff/App", ""), nil},
		{"create with exclusion filters on plain IMMUTABLE", create("diff/bad", types.ImageTagMutabilityImmutable, "dev-*"), nil},
		{"describe all repositories", describeRepos(), nil},
		{"describe named repositories", describeRepos("diff/excl", "diff/app"), nil},
		{"describe a missing repository", describeRepos("diff/app", "diff/missing"), nil},
		{"put A:v1", put("diff/app", A, "v1"), nil},
		{"put A:v2", put("diff/app", A, "v2"), nil},
		{"put A:v2 again", put("diff/app", A, "v2"), nil},
		{"put B:v1 moves v1 in a mutable repository", put("diff/app", B, "v1"), nil},
		{"put A:v3", put("diff/app", A, "v3"), nil},
		{"put C untagged", put("diff/app", C, ""), nil},
		{"list images", listImages("diff/app"), nil},
		{"describe images", describeImages("diff/app"), nil},
		{"describe images by tag and digest", describeImages("diff/app", tag("v1"), dig(A.digest)), nil},
		{"describe a missing image", describeImages("diff/app", tag("nope")), nil},
		{"list images of a missing repository", listImages("diff/missing"), nil},
		{"describe images of a missing repository", describeImages("diff/missing"), nil},
		{"batch get by tag", batchGet("diff/app", tag("v1"), tag("v2"), tag("nope")), nil},
		{"batch get from a missing repository", batchGet("diff/missing", tag("v1")), nil},
		{"put A:rel into the immutable repository", put("diff/immutable", A, "rel"), nil},
		{"put A:rel2, a second tag for the same image", put("diff/immutable", A, "rel2"), nil},
		{"put A:keep into the exclusion repository", put("diff/excl", A, "keep"), nil},
		{"put A:dev-1 into the exclusion repository", put("diff/excl", A, "dev-1"), nil},
		{"put B:dev-1 moves an excluded (mutable) tag", put("diff/excl", B, "dev-1"), nil},
		{"describe the exclusion repository's images", describeImages("diff/excl"), nil},
		{"make diff/app immutable", mutability("diff/app", types.ImageTagMutabilityImmutable), nil},
		{"make diff/app IMMUTABLE_WITH_EXCLUSION", mutability("diff/app", types.ImageTagMutabilityImmutableWithExclusion, "latest", "dev-*"), nil},
		{"mutability of a missing repository", mutability("diff/missing", types.ImageTagMutabilityMutable), nil},
		{"describe after mutability changes", describeRepos("diff/app"), nil},
		{"delete a tag that is not the last", batchDelete("diff/app", tag("v2")), nil},
		{"delete by digest removes every tag", batchDelete("diff/app", dig(A.digest)), nil},
		{"delete a missing tag and a missing digest", batchDelete("diff/app", tag("nope"), dig("sha256:"+strings.Repeat("a", 64))), nil},
		{"delete with an invalid digest", batchDelete("diff/app", dig("sha256:xyz")), nil},
		{"delete with neither tag nor digest", batchDelete("diff/app", types.ImageIdentifier{}), nil},
		{"delete the last tag deletes the image", batchDelete("diff/app", tag("v1")), nil},
		{"list after deletes", listImages("diff/app"), nil},
		{"delete from a missing repository", batchDelete("diff/missing", tag("v1")), nil},
		{"delete a non-empty repository", deleteRepo("diff/excl", false), nil},
		{"force-delete a repository", deleteRepo("diff/excl", true), nil},
		{"delete a missing repository", deleteRepo("diff/excl", false), nil},
		{"scan findings before any scan", func(c *ecr.Client) outcome {
			_, err := c.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("diff/immutable"), ImageId: &types.ImageIdentifier{ImageTag: aws.String("rel")}})
			return result("no error", err, false)
		}, nil},
		{"scanning configuration", func(c *ecr.Client) outcome {
			out, err := c.PutImageScanningConfiguration(ctx, &ecr.PutImageScanningConfigurationInput{RepositoryName: aws.String("diff/app"), ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true}})
			if err != nil {
				return result(nil, err, false)
			}
			return result(map[string]any{"registry": aws.ToString(out.RegistryId), "repo": aws.ToString(out.RepositoryName), "scanOnPush": out.ImageScanningConfiguration.ScanOnPush}, nil, false)
		}, nil},
		{"describe after scanning configuration", describeRepos("diff/app"), nil},
	}
	for _, st := range steps {
		m, l := st.call(p.moto), st.call(p.local)
		if diff := cmp.Diff(m, l); diff != "" {
			t.Errorf("step %q: moto and local ECR differ (-moto +local):\n%s", st.name, diff)
		}
		if st.afterLocal != nil {
			st.afterLocal()
		}
	}
}

func TestMotoDiffers_MaxResultsIgnored(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	for _, c := range []*ecr.Client{p.moto, p.local} {
		createRepo(t, c, "paged")
	}
	if _, err := p.srv.Seed("paged", localecr.SeedImage{Tags: []string{"a"}}, localecr.SeedImage{Tags: []string{"b"}}, localecr.SeedImage{Tags: []string{"c"}}); err != nil {
		t.Fatal(err)
	}
	for _, im := range []diffImage{newDiffImage(t), newDiffImage(t), newDiffImage(t)} {
		if _, err := p.moto.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("paged"), ImageManifest: aws.String(im.manifest), ImageTag: aws.String(im.digest[7:15])}); err != nil {
			t.Fatal(err)
		}
	}
	in := &ecr.DescribeImagesInput{RepositoryName: aws.String("paged"), MaxResults: aws.Int32(2)}
	m, err := p.moto.DescribeImages(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.ImageDetails) != 3 || m.NextToken != nil {
		t.Errorf("moto now honours maxResults (%d images, token %v): fold this case into the differential scenario", len(m.ImageDetails), m.NextToken)
	}
	// ECR: at most maxResults per page and a nextToken while more remain (API reference, DescribeImages).
	l, err := p.local.DescribeImages(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.ImageDetails) != 2 || l.NextToken == nil {
		t.Errorf("local: %d images, token %v; want 2 and a token", len(l.ImageDetails), l.NextToken)
	}
	l2, err := p.local.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("paged"), MaxResults: aws.Int32(2), NextToken: l.NextToken})
	if err != nil || len(l2.ImageDetails) != 1 || l2.NextToken != nil {
		t.Errorf("local second page: %d images, token %v, %v", len(l2.ImageDetails), l2.NextToken, err)
	}
	// Each page has the published response's shape.
	checkDetailKeys(t, p.srv, "paged")
}

// checkDetailKeys compares the local DescribeImages JSON with the API reference sample's keys.
func checkDetailKeys(t *testing.T, srv *localecr.Server, repo string) {
	t.Helper()
	var sample struct {
		ImageDetails []map[string]json.RawMessage `json:"imageDetails"`
	}
	readSample(t, "ecr-api-describe-images.apiref-sample-response.json", &sample)
	allowed := map[string]bool{"subjectManifestDigest": true} // in the SDK's ImageDetail, for referrers
	for k := range sample.ImageDetails[0] {
		allowed[k] = true
	}
	var got struct {
		ImageDetails []map[string]json.RawMessage `json:"imageDetails"`
	}
	rawCall(t, srv, "DescribeImages", map[string]any{"repositoryName": repo}, &got)
	for _, d := range got.ImageDetails {
		for k := range d {
			if !allowed[k] {
				t.Errorf("local imageDetail has %q, which the published sample does not", k)
			}
		}
		for _, k := range []string{"registryId", "repositoryName", "imageDigest", "imageSizeInBytes", "imagePushedAt", "imageManifestMediaType"} {
			if _, ok := d[k]; !ok {
				t.Errorf("local imageDetail lacks %q", k)
			}
		}
	}
}

func readSample(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RealTestdata(t), name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// rawCall posts an ECR JSON 1.1 request and decodes the raw response.
func rawCall(t *testing.T, srv *localecr.Server, op string, in any, out any) {
	t.Helper()
	body, _ := json.Marshal(in)
	req, _ := newECRRequest(srv.URL(), op, body)
	resp, err := httpDo(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(resp, out); err != nil {
		t.Fatalf("%s response: %v\n%s", op, err, resp)
	}
}

func TestMotoDiffers_BatchDeleteImage101Ids(t *testing.T) {
	p := newPair(t)
	ids := make([]types.ImageIdentifier, 101)
	for i := range ids {
		ids[i] = types.ImageIdentifier{ImageTag: aws.String(fmt.Sprintf("t%d", i))}
	}
	for _, c := range []*ecr.Client{p.moto, p.local} {
		createRepo(t, c, "app")
	}
	m, err := p.moto.BatchDeleteImage(ctxT(t), &ecr.BatchDeleteImageInput{RepositoryName: aws.String("app"), ImageIds: ids})
	if err != nil || len(m.Failures) != 101 {
		t.Errorf("moto changed: %v, %v failures; fold this case into the differential scenario", err, m)
	}
	// ECR: imageIds has 1 to 100 members (API reference); more is a validation error.
	if _, err := p.local.BatchDeleteImage(ctxT(t), &ecr.BatchDeleteImageInput{RepositoryName: aws.String("app"), ImageIds: ids}); errCode(err) != "InvalidParameterException" {
		t.Errorf("local: %v, want InvalidParameterException", err)
	}
	// The published multi-delete sample has ECR's shape: imageIds and failures.
	var sample map[string]json.RawMessage
	readSample(t, "ecr-api-batch-delete-image-multiple.aws-cli-example.json", &sample)
	var got map[string]json.RawMessage
	rawCall(t, p.srv, "BatchDeleteImage", map[string]any{"repositoryName": "app", "imageIds": []map[string]string{{"imageTag": "t0"}}}, &got)
	if !slices.Equal(sortedJSONKeys(sample), sortedJSONKeys(got)) {
		t.Errorf("local keys %v, sample %v", sortedJSONKeys(got), sortedJSONKeys(sample))
	}
}

func sortedJSONKeys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestMotoDiffers_ImmutableTagError(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	a := auth(t, p.local)
	A, B := newDiffImage(t), newDiffImage(t)
	for _, c := range []*ecr.Client{p.moto, p.local} {
		createRepo(t, c, "imm", func(in *ecr.CreateRepositoryInput) { in.ImageTagMutability = types.ImageTagMutabilityImmutable })
	}
	uploadBlobs(t, p.srv, a, "imm", A.img)
	uploadBlobs(t, p.srv, a, "imm", B.img)
	codes := map[string]string{}
	for name, c := range map[string]*ecr.Client{"moto": p.moto, "local": p.local} {
		if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("imm"), ImageManifest: aws.String(A.manifest), ImageDigest: aws.String(A.digest), ImageTag: aws.String("1.0")}); err != nil {
			t.Fatal(name, err)
		}
		_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("imm"), ImageManifest: aws.String(B.manifest), ImageDigest: aws.String(B.digest), ImageTag: aws.String("1.0")})
		codes[name] = errCode(err)
	}
	if codes["moto"] != "ImageAlreadyExistsException" {
		t.Errorf("moto now answers %q: update TOOLCHAIN.md and this test", codes["moto"])
	}
	// ECR (API reference, PutImage errors): ImageTagAlreadyExistsException,
	// "The specified image is tagged with a tag that already exists. The repository is configured for tag immutability."
	if codes["local"] != "ImageTagAlreadyExistsException" {
		t.Errorf("local: %q, want ImageTagAlreadyExistsException", codes["local"])
	}
}

func TestMotoDiffers_PutImageDigest(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	a := auth(t, p.local)
	im := newDiffImage(t)
	for _, c := range []*ecr.Client{p.moto, p.local} {
		createRepo(t, c, "app")
	}
	uploadBlobs(t, p.srv, a, "app", im.img)
	m, err := p.moto.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(im.manifest), ImageTag: aws.String("v1")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(m.Image.ImageId.ImageDigest) == im.digest {
		t.Log("moto now reports sha256(manifest) as the PutImage digest: the differential scenario may stop passing imageDigest")
	}
	l, err := p.local.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(im.manifest), ImageTag: aws.String("v1")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(l.Image.ImageId.ImageDigest) != im.digest {
		t.Errorf("local digest %s, want sha256 of the manifest %s", aws.ToString(l.Image.ImageId.ImageDigest), im.digest)
	}
	// In both published BatchGetImage responses the digest is the sha256 of
	// the imageManifest string; the local ECR stores those manifests byte for
	// byte and reports the same digests.
	for _, name := range []string{"ecr-api-batch-get-image.apiref-sample-response.json", "ecr-api-batch-get-image-docker-v2-manifest.aws-cli-example.json"} {
		var sample struct {
			Images []struct {
				ImageID struct {
					ImageDigest string `json:"imageDigest"`
				} `json:"imageId"`
				ImageManifest string `json:"imageManifest"`
			} `json:"images"`
		}
		readSample(t, name, &sample)
		s := sample.Images[0]
		digests, err := p.srv.Seed("samples", localecr.SeedImage{Manifest: []byte(s.ImageManifest), Tags: []string{"t"}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if digests[0] != s.ImageID.ImageDigest {
			t.Errorf("%s: local digest %s, published %s", name, digests[0], s.ImageID.ImageDigest)
		}
		got, err := p.local.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("samples"), ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(s.ImageID.ImageDigest)}}})
		if err != nil || len(got.Images) != 1 || aws.ToString(got.Images[0].ImageManifest) != s.ImageManifest {
			t.Errorf("%s: BatchGetImage did not return the manifest byte for byte: %v", name, err)
		}
	}
}

func TestMotoDiffers_DescribeImagesDetailFields(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	a := auth(t, p.local)
	im := newDiffImage(t)
	for _, c := range []*ecr.Client{p.moto, p.local} {
		createRepo(t, c, "app")
	}
	uploadBlobs(t, p.srv, a, "app", im.img)
	for _, c := range []*ecr.Client{p.moto, p.local} {
		if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(im.manifest), ImageDigest: aws.String(im.digest), ImageTag: aws.String("v1")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}}); err != nil {
			t.Fatal(err)
		}
	}
	mf, _ := im.img.Manifest()
	var layers int64
	for _, l := range mf.Layers {
		layers += l.Size
	}
	m, err := p.moto.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	md := m.ImageDetails[0]
	if md.LastRecordedPullTime != nil || md.ArtifactMediaType != nil || aws.ToInt64(md.ImageSizeInBytes) != mf.Config.Size {
		t.Errorf("moto changed: lastRecordedPullTime %v artifactMediaType %v size %d (config size %d)", md.LastRecordedPullTime, md.ArtifactMediaType, aws.ToInt64(md.ImageSizeInBytes), mf.Config.Size)
	}
	// ECR: lastRecordedPullTime after a pull, artifactMediaType = the config
	// media type, imageSizeInBytes = the layers (API reference sample has all three).
	l, err := p.local.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	ld := l.ImageDetails[0]
	if ld.LastRecordedPullTime == nil || aws.ToString(ld.ArtifactMediaType) != string(mf.Config.MediaType) || aws.ToInt64(ld.ImageSizeInBytes) != layers {
		t.Errorf("local: lastRecordedPullTime %v artifactMediaType %q size %d (layers %d)", ld.LastRecordedPullTime, aws.ToString(ld.ArtifactMediaType), aws.ToInt64(ld.ImageSizeInBytes), layers)
	}
	checkDetailKeys(t, p.srv, "app")
}

func TestMotoDiffers_UntaggedDeleteByDigest(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	a := auth(t, p.local)
	im := newDiffImage(t)
	for _, c := range []*ecr.Client{p.moto, p.local} {
		createRepo(t, c, "app")
	}
	uploadBlobs(t, p.srv, a, "app", im.img)
	deleted := map[string][]string{}
	for name, c := range map[string]*ecr.Client{"moto": p.moto, "local": p.local} {
		if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(im.manifest), ImageDigest: aws.String(im.digest)}); err != nil {
			t.Fatal(name, err)
		}
		out, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("app"), ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(im.digest)}}})
		if err != nil {
			t.Fatal(name, err)
		}
		deleted[name] = normIDs(out.ImageIds)
	}
	if len(deleted["moto"]) != 0 {
		t.Errorf("moto now reports %v for an untagged delete: fold it into the scenario", deleted["moto"])
	}
	// ECR reports every deleted image; an untagged one by its digest alone.
	if !slices.Equal(deleted["local"], []string{im.digest + "|"}) {
		t.Errorf("local deleted %v", deleted["local"])
	}
}

func TestMotoDiffers_PutImageTagMutabilityResponse(t *testing.T) {
	p := newPair(t)
	got := map[string]int{}
	for name, c := range map[string]*ecr.Client{"moto": p.moto, "local": p.local} {
		createRepo(t, c, "app")
		out, err := c.PutImageTagMutability(ctxT(t), &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("app"),
			ImageTagMutability: types.ImageTagMutabilityMutableWithExclusion, ImageTagMutabilityExclusionFilters: wildcard("release-*")})
		if err != nil {
			t.Fatal(name, err)
		}
		got[name] = len(out.ImageTagMutabilityExclusionFilters)
	}
	if got["moto"] != 0 {
		t.Errorf("moto now echoes the exclusion filters: compare them in the scenario")
	}
	// ECR's PutImageTagMutability response carries imageTagMutabilityExclusionFilters (API reference).
	if got["local"] != 1 {
		t.Errorf("local echoed %d filters, want 1", got["local"])
	}
}

func TestMotoDiffers_ProxyEndpoint(t *testing.T) {
	p := newPair(t)
	var sample struct {
		AuthorizationData []map[string]json.RawMessage `json:"authorizationData"`
	}
	readSample(t, "ecr-api-get-authorization-token.aws-cli-example.json", &sample)
	for name, c := range map[string]*ecr.Client{"moto": p.moto, "local": p.local} {
		out, err := c.GetAuthorizationToken(ctxT(t), &ecr.GetAuthorizationTokenInput{})
		if err != nil {
			t.Fatal(name, err)
		}
		d := out.AuthorizationData[0]
		raw, err := base64.StdEncoding.DecodeString(aws.ToString(d.AuthorizationToken))
		if err != nil || !strings.HasPrefix(string(raw), "AWS:") || d.ExpiresAt == nil {
			t.Errorf("%s: token %q (%v), expiresAt %v", name, raw, err, d.ExpiresAt)
		}
		endpoint := aws.ToString(d.ProxyEndpoint)
		switch name {
		case "moto":
			// Like ECR, and like the published sample: https://<account>.dkr.ecr.<region>.amazonaws.com, which does not exist here.
			if endpoint != "https://"+motoAccount+".dkr.ecr.us-east-1.amazonaws.com" {
				t.Errorf("moto proxyEndpoint %q", endpoint)
			}
		case "local":
			// The local registry: a client that follows proxyEndpoint reaches it.
			if endpoint != p.srv.URL() {
				t.Errorf("local proxyEndpoint %q, want %q", endpoint, p.srv.URL())
			}
		}
	}
	var got struct {
		AuthorizationData []map[string]json.RawMessage `json:"authorizationData"`
	}
	rawCall(t, p.srv, "GetAuthorizationToken", map[string]any{}, &got)
	if !slices.Equal(sortedJSONKeys(got.AuthorizationData[0]), sortedJSONKeys(sample.AuthorizationData[0])) {
		t.Errorf("local keys %v, sample %v", sortedJSONKeys(got.AuthorizationData[0]), sortedJSONKeys(sample.AuthorizationData[0]))
	}
	var exp float64
	if err := json.Unmarshal(got.AuthorizationData[0]["expiresAt"], &exp); err != nil {
		t.Errorf("expiresAt is not epoch seconds like the sample's 1448875853.241: %s", got.AuthorizationData[0]["expiresAt"])
	}
}

func TestMotoDiffers_MovedTagLeavesTheOldImageUntagged(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	a := auth(t, p.local)
	A, B := newDiffImage(t), newDiffImage(t)
	for _, c := range []*ecr.Client{p.moto, p.local} {
		createRepo(t, c, "app")
	}
	uploadBlobs(t, p.srv, a, "app", A.img)
	uploadBlobs(t, p.srv, a, "app", B.img)
	left := map[string][]string{}
	for name, c := range map[string]*ecr.Client{"moto": p.moto, "local": p.local} {
		for _, im := range []diffImage{A, B} {
			if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(im.manifest), ImageDigest: aws.String(im.digest), ImageTag: aws.String("latest")}); err != nil {
				t.Fatal(name, err)
			}
		}
		out, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("app")})
		if err != nil {
			t.Fatal(name, err)
		}
		left[name] = normIDs(out.ImageIds)
	}
	if !slices.Equal(left["moto"], []string{B.digest + "|latest"}) {
		t.Errorf("moto now keeps %v: fold this case into the scenario", left["moto"])
	}
	// ECR keeps the image the tag moved away from, untagged (what lifecycle
	// rules with tagStatus UNTAGGED and ListImages' UNTAGGED filter are for).
	want := []string{A.digest + "|", B.digest + "|latest"}
	sort.Strings(want)
	if !slices.Equal(left["local"], want) {
		t.Errorf("local left %v, want %v", left["local"], want)
	}
}

func TestMotoDiffers_ExclusionMutabilityWithoutFilters(t *testing.T) {
	p := newPair(t)
	codes := map[string]string{}
	for name, c := range map[string]*ecr.Client{"moto": p.moto, "local": p.local} {
		createRepo(t, c, "app")
		_, err := c.PutImageTagMutability(ctxT(t), &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("app"), ImageTagMutability: types.ImageTagMutabilityMutableWithExclusion})
		codes[name] = errCode(err)
		// CreateRepository refuses the same combination on both.
		_, err = c.CreateRepository(ctxT(t), &ecr.CreateRepositoryInput{RepositoryName: aws.String("other"), ImageTagMutability: types.ImageTagMutabilityMutableWithExclusion})
		if errCode(err) != "InvalidParameterException" {
			t.Errorf("%s CreateRepository MUTABLE_WITH_EXCLUSION without filters: %v", name, err)
		}
	}
	if codes["moto"] != "" {
		t.Errorf("moto now answers %q: fold this case into the scenario", codes["moto"])
	}
	// An exclusion mutability needs its filters: the local ECR applies
	// CreateRepository's rule (ECR's wording, which moto reproduces there) to
	// PutImageTagMutability too.
	if codes["local"] != "InvalidParameterException" {
		t.Errorf("local: %q, want InvalidParameterException", codes["local"])
	}
}
