package localecr_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/testenv"
)

// The SDK reaches the local ECR through the standard endpoint override, as the functions do.
func TestSDKFindsTheServerThroughAWSEndpointURLECR(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	t.Setenv("AWS_ENDPOINT_URL_ECR", srv.URL())
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	cfg, err := config.LoadDefaultConfig(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	c := ecr.NewFromConfig(cfg)
	if _, err := c.CreateRepository(ctxT(t), &ecr.CreateRepositoryInput{RepositoryName: aws.String("via/env")}); err != nil {
		t.Fatal(err)
	}
	if srv.Requests("CreateRepository") != 1 {
		t.Errorf("the server saw %d CreateRepository requests", srv.Requests("CreateRepository"))
	}
}

func TestSeededImagesArePullable(t *testing.T) {
	srv, _ := start(t, localecr.Options{AuthDisabled: true})
	digests, err := srv.Seed("seeded/app", localecr.SeedImage{Tags: []string{"v1"}}, localecr.SeedImage{})
	if err != nil {
		t.Fatal(err)
	}
	if digests[0] == digests[1] {
		t.Fatal("two generated seed images share a digest")
	}
	img, err := remote.Image(ref(t, srv, "seeded/app:v1"), remote.WithContext(ctxT(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("seeded image does not validate: %v", err)
	}
	if digestOf(t, img) != digests[0] {
		t.Errorf("pulled %s, seeded %s", digestOf(t, img), digests[0])
	}
	if _, err := srv.Seed("seeded/app", localecr.SeedImage{Manifest: []byte("{not json")}); err == nil {
		t.Error("Seed accepted an invalid manifest")
	}
	if _, err := srv.Seed("Bad Name", localecr.SeedImage{}); err == nil {
		t.Error("Seed accepted an invalid repository name")
	}
}

// skopeo (containers/image) pushes and pulls unchanged, multi-platform included.
func TestSkopeoCopiesAMultiPlatformIndex(t *testing.T) {
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
	createRepo(t, c, "src/app")
	createRepo(t, c, "dst/app")
	idx := multiPlatformIndex(t)
	if err := remote.WriteIndex(ref(t, srv, "src/app:1.0"), idx, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	user, pw := srv.Credentials()
	creds := user + ":" + pw
	cmd := exec.Command(skopeo, "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
		"--src-creds", creds, "--dest-creds", creds,
		"docker://"+srv.Host()+"/src/app:1.0", "docker://"+srv.Host()+"/dst/app:1.0")
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	got, err := remote.Index(ref(t, srv, "dst/app:1.0"), remoteOpts(t, a)...)
	if err != nil {
		t.Fatal(err)
	}
	// skopeo 1.9 drops the descriptors' artifactType that go-containerregistry
	// writes, so the index digest changes (TOOLCHAIN.md); the platform images
	// must arrive byte for byte.
	platforms := func(i v1.ImageIndex) []string {
		m, err := i.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range m.Manifests {
			out = append(out, d.Digest.String()+" "+d.Platform.String())
		}
		return out
	}
	if a, b := platforms(idx), platforms(got); !slices.Equal(a, b) {
		t.Errorf("skopeo copy changed the platform images: %v, want %v", b, a)
	}
	if err := validate.Index(got); err != nil {
		t.Error(err)
	}
	cmd = exec.Command(skopeo, "list-tags", "--tls-verify=false", "--creds", creds, "docker://"+srv.Host()+"/dst/app")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"1.0"`) {
		t.Errorf("skopeo list-tags: %v\n%s", err, out)
	}
}
