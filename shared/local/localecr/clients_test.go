package localecr_test

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/stream"

	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/testenv"
)

// ECR's wording for the two control-plane checks that clients quote in logs and that
// scripts match on:
//   - more than 100 imageIds: "Invalid parameter at 'imageIds' failed to satisfy constraint:
//     'Member must have length less than or equal to 100'" (InvalidParameterException, as
//     reported from ECR in awslabs/ecr-cleanup-lambda#11 and fujiwara/ecrm#3);
//   - an exclusion mutability without filters: "... 'ImageTagMutabilityExclusionFilters can't be
//     null when imageTagMutability is set as IMMUTABLE_WITH_EXCLUSION'" (aws/aws-cdk#35246, a
//     deployment against ECR). For filters on plain MUTABLE no published ECR message was found;
//     the local ECR says they must be null, in the same constraint style.
var (
	msgTooManyIDs       = "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length less than or equal to 100'"
	msgFiltersNeeded    = "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'ImageTagMutabilityExclusionFilters can't be null when imageTagMutability is set as %s'"
	msgFiltersForbidden = "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'ImageTagMutabilityExclusionFilters must be null when imageTagMutability is set as %s'"
)

func TestControlPlaneWording(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	c := client(srv)
	createRepo(t, c, "app")
	ids := make([]types.ImageIdentifier, 101)
	for i := range ids {
		ids[i] = types.ImageIdentifier{ImageTag: aws.String(fmt.Sprintf("t%d", i))}
	}
	_, delErr := c.BatchDeleteImage(ctxT(t), &ecr.BatchDeleteImageInput{RepositoryName: aws.String("app"), ImageIds: ids})
	_, getErr := c.BatchGetImage(ctxT(t), &ecr.BatchGetImageInput{RepositoryName: aws.String("app"), ImageIds: ids})
	filters := wildcard("dev-*")
	_, mutErr := c.PutImageTagMutability(ctxT(t), &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("app"),
		ImageTagMutability: types.ImageTagMutabilityMutable, ImageTagMutabilityExclusionFilters: filters})
	_, immErr := c.PutImageTagMutability(ctxT(t), &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("app"),
		ImageTagMutability: types.ImageTagMutabilityImmutable, ImageTagMutabilityExclusionFilters: filters})
	_, createErr := c.CreateRepository(ctxT(t), &ecr.CreateRepositoryInput{RepositoryName: aws.String("other"),
		ImageTagMutability: types.ImageTagMutabilityMutable, ImageTagMutabilityExclusionFilters: filters})
	_, needErr := c.PutImageTagMutability(ctxT(t), &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("app"),
		ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion})
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"BatchDeleteImage 101 ids", delErr, msgTooManyIDs},
		{"BatchGetImage 101 ids", getErr, msgTooManyIDs},
		{"PutImageTagMutability MUTABLE with filters", mutErr, fmt.Sprintf(msgFiltersForbidden, "MUTABLE")},
		{"PutImageTagMutability IMMUTABLE with filters", immErr, fmt.Sprintf(msgFiltersForbidden, "IMMUTABLE")},
		{"CreateRepository MUTABLE with filters", createErr, fmt.Sprintf(msgFiltersForbidden, "MUTABLE")},
		{"PutImageTagMutability IMMUTABLE_WITH_EXCLUSION without filters", needErr, fmt.Sprintf(msgFiltersNeeded, "IMMUTABLE_WITH_EXCLUSION")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ae smithy.APIError
			if !errors.As(tc.err, &ae) || ae.ErrorCode() != "InvalidParameterException" || ae.ErrorMessage() != tc.want {
				t.Errorf("got %v\nwant InvalidParameterException: %s", tc.err, tc.want)
			}
		})
	}
}

// awsCLI runs `aws ecr ...` (aws-cli 1.x) against srv and returns stdout, stderr and the error.
func awsCLI(t *testing.T, srv *localecr.Server, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command("aws", append([]string{"ecr", "--endpoint-url", srv.URL(), "--region", "us-east-1", "--output", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func TestAWSCLIAgainstTheLocalECR(t *testing.T) {
	if testing.Short() {
		t.Skip("runs aws-cli")
	}
	if _, err := exec.LookPath("aws"); err != nil {
		testenv.Unavailable(t, "aws-cli not installed (pip install awscli); CI's machines have it")
	}
	srv, _ := start(t, localecr.Options{})
	a := auth(t, client(srv))
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, err := awsCLI(t, srv, args...)
		if err != nil {
			t.Fatalf("aws ecr %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	fails := func(want string, args ...string) {
		t.Helper()
		_, errOut, err := awsCLI(t, srv, args...)
		if err == nil || !strings.Contains(errOut, want) {
			t.Errorf("aws ecr %s: %v, stderr %q; want it to contain %q", strings.Join(args, " "), err, errOut, want)
		}
	}
	ok("create-repository", "--repository-name", "cli/app")
	img := testImage(t)
	uploadBlobs(t, srv, a, "cli/app", img)
	out := ok("put-image", "--repository-name", "cli/app", "--image-tag", "v1", "--image-manifest", rawManifest(t, img))
	if !strings.Contains(out, digestOf(t, img)) {
		t.Errorf("put-image: %s", out)
	}
	for i := range 3 {
		ok("put-image", "--repository-name", "cli/app", "--image-tag", fmt.Sprintf("t%d", i), "--image-manifest", rawManifest(t, img))
	}
	// The CLI's paginator follows nextToken across pages of one item.
	if out := ok("list-images", "--repository-name", "cli/app", "--page-size", "1", "--query", "length(imageIds)"); strings.TrimSpace(out) != "4" {
		t.Errorf("list-images over pages of 1: %s", out)
	}
	if out := ok("describe-images", "--repository-name", "cli/app", "--image-ids", "imageTag=v1", "--query", "imageDetails[0].imageDigest"); !strings.Contains(out, digestOf(t, img)) {
		t.Errorf("describe-images: %s", out)
	}
	if out := ok("get-authorization-token", "--query", "authorizationData[0].proxyEndpoint"); !strings.Contains(out, srv.URL()) {
		t.Errorf("get-authorization-token: %s", out)
	}
	ids := make([]string, 101)
	for i := range ids {
		ids[i] = fmt.Sprintf("imageTag=x%d", i)
	}
	fails("InvalidParameterException", append([]string{"batch-delete-image", "--repository-name", "cli/app", "--image-ids"}, ids...)...)
	fails(msgTooManyIDs, append([]string{"batch-delete-image", "--repository-name", "cli/app", "--image-ids"}, ids...)...)
	fails(fmt.Sprintf(msgFiltersForbidden, "MUTABLE"), "put-image-tag-mutability", "--repository-name", "cli/app",
		"--image-tag-mutability", "MUTABLE", "--image-tag-mutability-exclusion-filters", "filterType=WILDCARD,filter=dev-*")
	fails("RepositoryNotFoundException", "describe-repositories", "--repository-names", "cli/missing")
	out = ok("batch-delete-image", "--repository-name", "cli/app", "--image-ids", "imageDigest="+digestOf(t, img))
	if !strings.Contains(out, `"imageIds"`) || strings.Count(out, `"imageTag"`) != 4 {
		t.Errorf("batch-delete-image by digest (ECR lists every removed tag): %s", out)
	}
	ok("delete-repository", "--repository-name", "cli/app")
}

const boto3Script = `
import json, sys
import boto3
from botocore.exceptions import ClientError
from botocore.config import Config

ecr = boto3.client("ecr", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing",
                   config=Config(retries={"max_attempts": 1}))
out = {}
ecr.create_repository(repositoryName="py/app", imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                      imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}])
repos = ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 1})
out["repos"] = sorted(r["repositoryName"] for page in repos for r in page["repositories"])
try:
    ecr.batch_delete_image(repositoryName="py/app", imageIds=[{"imageTag": "t%d" % i} for i in range(101)])
except ClientError as e:
    out["batch"] = [e.response["Error"]["Code"], e.response["Error"]["Message"]]
try:
    ecr.put_image_tag_mutability(repositoryName="py/app", imageTagMutability="MUTABLE",
                                 imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "x"}])
except ClientError as e:
    out["mutable"] = [e.response["Error"]["Code"], e.response["Error"]["Message"]]
try:
    ecr.describe_images(repositoryName="py/missing")
except ecr.exceptions.RepositoryNotFoundException as e:
    out["missing"] = e.response["Error"]["Code"]
print(json.dumps(out))
`

func TestBoto3AgainstTheLocalECR(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python3 with boto3")
	}
	py, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(py, "-c", "import boto3").Run()
	}
	if err != nil {
		testenv.Unavailable(t, "python3 with boto3 not available (pip install boto3): %v", err)
	}
	srv, _ := start(t, localecr.Options{})
	createRepo(t, client(srv), "py/first")
	script := filepath.Join(t.TempDir(), "ecr.py")
	if err := os.WriteFile(script, []byte(boto3Script), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, script, srv.URL()).CombinedOutput()
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	want := fmt.Sprintf(`{"repos": ["py/app", "py/first"], "batch": ["InvalidParameterException", %q], "mutable": ["InvalidParameterException", %q], "missing": "RepositoryNotFoundException"}`,
		msgTooManyIDs, fmt.Sprintf(msgFiltersForbidden, "MUTABLE"))
	if got != want {
		t.Errorf("boto3 saw\n%s\nwant\n%s", got, want)
	}
}

// crane (the binary) and go-containerregistry's remote exercise the push paths a raw test
// cannot pretend to be: crane's own uploads, and remote's streamed (PATCH without length) layers.
func TestCraneAndRemoteEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the crane binary")
	}
	crane := craneBinary(t)
	srv, _ := start(t, localecr.Options{})
	c := client(srv)
	a := auth(t, c)
	createRepo(t, c, "crane/app")
	createRepo(t, c, "crane/copy")

	// A streamed layer: go-containerregistry PATCHes it without a length and commits with PUT.
	layer := stream.NewLayer(io.NopCloser(strings.NewReader(strings.Repeat("streamed layer ", 10000))))
	if err := remote.WriteLayer(ref(t, srv, "crane/app:x").Context(), layer, remoteOpts(t, a)...); err != nil {
		t.Fatalf("streamed layer: %v", err)
	}
	srv.ResetRequests()
	if err := remote.WriteLayer(ref(t, srv, "crane/app:x").Context(), layer, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	if srv.Requests(localecr.OpBlobHead) != 1 || srv.Requests(localecr.OpBlobPatch) != 0 {
		t.Errorf("re-push of a present layer: %v, want one HEAD and no upload", srv.RequestCounts())
	}

	env := append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(crane, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	user, pw := srv.Credentials()
	host := srv.Host()
	run("auth", "login", host, "-u", user, "-p", pw)
	tarball := filepath.Join(t.TempDir(), "layer.tar.gz")
	writeTarGz(t, tarball, "hello.txt", strings.Repeat("hello from crane\n", 4000))
	run("append", "-f", tarball, "-t", host+"/crane/app:v1", "--oci-empty-base")
	d := run("digest", host+"/crane/app:v1")
	run("validate", "--remote", host+"/crane/app:v1")
	if m := run("manifest", host+"/crane/app@"+d); !strings.Contains(m, `"layers"`) {
		t.Errorf("crane manifest: %s", m)
	}
	cfg := run("config", host+"/crane/app:v1")
	if !strings.Contains(cfg, `"rootfs"`) {
		t.Errorf("crane config: %s", cfg)
	}
	run("copy", host+"/crane/app:v1", host+"/crane/copy:v1")
	run("tag", host+"/crane/copy:v1", "v2")
	if ls := run("ls", host+"/crane/copy"); ls != "v1\nv2" {
		t.Errorf("crane ls: %q", ls)
	}
	run("delete", host+"/crane/copy@"+d)
	if ls := run("ls", host+"/crane/copy"); ls != "" {
		t.Errorf("tags left after crane delete by digest: %q", ls)
	}
	cmd := exec.Command(crane, "manifest", host+"/crane/copy:v1")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "MANIFEST_UNKNOWN") {
		t.Errorf("crane manifest of a deleted tag: %v %s", err, out)
	}
}

func TestSkopeoEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("runs skopeo")
	}
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		testenv.Unavailable(t, "skopeo not installed (apt-get install skopeo)")
	}
	srv, _ := start(t, localecr.Options{})
	c := client(srv)
	a := auth(t, c)
	createRepo(t, c, "sk/app")
	createRepo(t, c, "sk/copy")
	img := testImage(t)
	if err := remote.Write(ref(t, srv, "sk/app:v1"), img, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	user, pw := srv.Credentials()
	creds := user + ":" + pw
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(skopeo, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	host := "docker://" + srv.Host()
	if raw := run("inspect", "--raw", "--tls-verify=false", "--creds", creds, host+"/sk/app:v1"); raw != rawManifest(t, img) {
		t.Errorf("skopeo inspect --raw differs from the pushed manifest")
	}
	// Pull to a directory (blob GETs), push back to another repository (skopeo's uploads);
	// the dir: transport keeps the manifest byte for byte.
	layout := "dir:" + filepath.Join(dir, "image")
	run("copy", "--src-tls-verify=false", "--src-creds", creds, host+"/sk/app:v1", layout)
	run("copy", "--dest-tls-verify=false", "--dest-creds", creds, layout, host+"/sk/copy:v1")
	if got := run("inspect", "--format", "{{.Digest}}", "--tls-verify=false", "--creds", creds, host+"/sk/copy:v1"); strings.TrimSpace(got) != digestOf(t, img) {
		t.Errorf("skopeo round trip through an OCI layout: %s, want %s", got, digestOf(t, img))
	}
	run("delete", "--tls-verify=false", "--creds", creds, host+"/sk/copy@"+digestOf(t, img))
	if tags := run("list-tags", "--tls-verify=false", "--creds", creds, host+"/sk/copy"); !strings.Contains(tags, `"Tags": []`) {
		t.Errorf("tags after skopeo delete by digest: %s", tags)
	}
}

// craneBinary finds crane on PATH or in .tools/bin (make tools).
func craneBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("crane"); err == nil {
		return p
	}
	root, err := testenv.RepoRoot()
	if err == nil {
		p := filepath.Join(root, ".tools", "bin", "crane")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "crane not found: run `make tools`")
	return ""
}

// writeTarGz writes a gzipped tarball holding one file, a layer for crane append.
func writeTarGz(t *testing.T, path, name, content string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, content); err != nil {
		t.Fatal(err)
	}
	for _, c := range []io.Closer{tw, zw, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
