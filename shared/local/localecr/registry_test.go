package localecr_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/testenv"
)

// multiPlatformIndex is a random OCI index of three platform images.
func multiPlatformIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}, {OS: "linux", Architecture: "s390x"}} {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		img = mutate.MediaType(img, ggcrtypes.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, ggcrtypes.OCIConfigJSON)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, ggcrtypes.OCIImageIndex), adds...)
}

// referrer is an OCI artifact of artifactType about subject.
func referrer(t *testing.T, artifactType string, subject v1.Descriptor) v1.Image {
	t.Helper()
	layer, err := random.Layer(256, ggcrtypes.MediaType("application/vnd.example.data"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, ggcrtypes.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, ggcrtypes.MediaType(artifactType))
	img = mutate.Annotations(img, map[string]string{"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}).(v1.Image)
	return mutate.Subject(img, subject).(v1.Image)
}

func TestMultiPlatformIndexWithReferrers(t *testing.T) {
	srv, log := start(t, localecr.Options{})
	c := client(srv)
	a := auth(t, c)
	ctx := ctxT(t)
	createRepo(t, c, "team/app")
	idx := multiPlatformIndex(t)
	idxRef := ref(t, srv, "team/app:1.0")
	if err := remote.WriteIndex(idxRef, idx, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	idxDigest := digestOf(t, idx)
	desc, err := remote.Head(idxRef, remoteOpts(t, a)...)
	if err != nil {
		t.Fatal(err)
	}
	sbom := referrer(t, "application/vnd.example.sbom+json", *desc)
	sig := referrer(t, "application/vnd.example.signature", *desc)
	for _, r := range []v1.Image{sbom, sig} {
		if err := remote.Write(idxRef.Context().Digest(digestOf(t, r)), r, remoteOpts(t, a)...); err != nil {
			t.Fatal(err)
		}
	}

	// Pull everything back and verify every blob against its digest.
	got, err := remote.Index(idxRef, remoteOpts(t, a)...)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != idxDigest {
		t.Errorf("pulled index %s, pushed %s", digestOf(t, got), idxDigest)
	}
	if err := validate.Index(got); err != nil {
		t.Errorf("pulled index does not validate: %v", err)
	}
	refs, err := remote.Referrers(idxRef.Context().Digest(idxDigest), remoteOpts(t, a)...)
	if err != nil {
		t.Fatal(err)
	}
	rm, _ := refs.IndexManifest()
	var types2 []string
	for _, d := range rm.Manifests {
		types2 = append(types2, d.ArtifactType)
	}
	slices.Sort(types2)
	if !slices.Equal(types2, []string{"application/vnd.example.sbom+json", "application/vnd.example.signature"}) {
		t.Errorf("referrers artifact types %v", types2)
	}

	// The server filters by artifactType itself and says so.
	user, pw := srv.Credentials()
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/v2/team/app/referrers/"+idxDigest+"?artifactType=application/vnd.example.signature", nil)
	req.SetBasicAuth(user, pw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var filtered v1.IndexManifest
	if err := json.NewDecoder(resp.Body).Decode(&filtered); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("OCI-Filters-Applied") != "artifactType" || len(filtered.Manifests) != 1 ||
		filtered.Manifests[0].Digest.String() != digestOf(t, sig) || filtered.Manifests[0].Annotations["org.opencontainers.image.created"] == "" {
		t.Errorf("filtered referrers: header %q, %+v", resp.Header.Get("OCI-Filters-Applied"), filtered.Manifests)
	}

	// ECR bookkeeping: sizes, media types, subject, manifest-list protection.
	out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("team/app")})
	if err != nil {
		t.Fatal(err)
	}
	byDigest := map[string]types.ImageDetail{}
	for _, d := range out.ImageDetails {
		byDigest[aws.ToString(d.ImageDigest)] = d
	}
	if len(byDigest) != 6 {
		t.Fatalf("%d images, want 3 platform images, the index and 2 referrers", len(byDigest))
	}
	im, _ := idx.IndexManifest()
	var maxSize int64
	for _, m := range im.Manifests {
		maxSize = max(maxSize, aws.ToInt64(byDigest[m.Digest.String()].ImageSizeInBytes))
	}
	if d := byDigest[idxDigest]; aws.ToString(d.ImageManifestMediaType) != string(ggcrtypes.OCIImageIndex) || aws.ToInt64(d.ImageSizeInBytes) != maxSize || !slices.Equal(d.ImageTags, []string{"1.0"}) {
		t.Errorf("index detail: %s size %d (want %d) tags %v", aws.ToString(d.ImageManifestMediaType), aws.ToInt64(d.ImageSizeInBytes), maxSize, d.ImageTags)
	}
	if d := byDigest[digestOf(t, sbom)]; aws.ToString(d.ArtifactMediaType) != "application/vnd.example.sbom+json" || aws.ToString(d.SubjectManifestDigest) != idxDigest {
		t.Errorf("referrer detail: artifact %q subject %q", aws.ToString(d.ArtifactMediaType), aws.ToString(d.SubjectManifestDigest))
	}
	child := im.Manifests[0].Digest.String()
	del, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("team/app"), ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(child)}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.Failures) != 1 || del.Failures[0].FailureCode != types.ImageFailureCodeImageReferencedByManifestList || !strings.Contains(aws.ToString(del.Failures[0].FailureReason), idxDigest) {
		t.Errorf("deleting a platform image of a live index: %+v", del)
	}
	// Registry DELETE of the index by digest removes its tag too, then the child can go.
	req, _ = http.NewRequest(http.MethodDelete, srv.URL()+"/v2/team/app/manifests/"+idxDigest, nil)
	req.SetBasicAuth(user, pw)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE index: %v %v", resp, err)
	}
	if _, err := remote.Head(idxRef, remoteOpts(t, a)...); !isStatus(err, http.StatusNotFound) {
		t.Errorf("tag still resolves after its digest was deleted: %v", err)
	}
	del, err = c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("team/app"), ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(child)}}})
	if err != nil || len(del.Failures) != 0 || len(del.ImageIds) != 1 {
		t.Errorf("deleting the platform image after its index: %+v %v", del, err)
	}
	_ = srv.WaitEvents(ctx)
	pushes := 0
	for _, a := range actions(t, log.take()) {
		if strings.HasPrefix(a, "PUSH team/app  ") { // untagged pushes carry no image-tag
			pushes++
		}
	}
	if pushes != 5 {
		t.Errorf("%d untagged PUSH events, want 5 (3 platform images, 2 referrers)", pushes)
	}
}

func isStatus(err error, code int) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == code
}

func TestRegistryErrorsAndAuth(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	c := client(srv)
	a := auth(t, c)
	img := testImage(t)

	err := remote.Write(ref(t, srv, "nope:v1"), img, remoteOpts(t, a)...)
	var te *transport.Error
	if !errors.As(err, &te) || te.Errors[0].Code != transport.ErrorCode("NAME_UNKNOWN") {
		t.Errorf("push to a missing repository: %v, want NAME_UNKNOWN", err)
	}
	if err := remote.Write(ref(t, srv, "nope:v1"), img, remoteOpts(t, &authn.Basic{Username: "AWS", Password: "wrong"})...); !isStatus(err, http.StatusUnauthorized) {
		t.Errorf("push with a wrong password: %v, want 401", err)
	}

	tests := []struct {
		name       string
		user, pass string
		want       int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong password", "AWS", "x", http.StatusUnauthorized},
		{"wrong user", "root", "", http.StatusUnauthorized},
		{"token from GetAuthorizationToken", "AWS", a.(*authn.Basic).Password, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/v2/", nil)
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if want := `Basic realm="` + srv.URL() + `/",service="ecr.amazonaws.com"`; tc.want == 401 && resp.Header.Get("WWW-Authenticate") != want {
				t.Errorf("WWW-Authenticate %q, want %q", resp.Header.Get("WWW-Authenticate"), want)
			}
		})
	}
	tok, err := c.GetAuthorizationToken(ctxT(t), &ecr.GetAuthorizationTokenInput{})
	if err != nil || aws.ToString(tok.AuthorizationData[0].ProxyEndpoint) != srv.URL() || tok.AuthorizationData[0].ExpiresAt == nil {
		t.Errorf("GetAuthorizationToken: %+v %v", tok, err)
	}

	fixed, _ := start(t, localecr.Options{Password: "s3cret"})
	if got := auth(t, client(fixed)).(*authn.Basic); got.Password != "s3cret" {
		t.Errorf("GetAuthorizationToken with Options.Password: %q", got.Password)
	}

	open, _ := start(t, localecr.Options{AuthDisabled: true, AutoCreateRepos: true})
	if err := remote.Write(ref(t, open, "made/on/push:v1"), img, remote.WithContext(ctxT(t))); err != nil {
		t.Fatalf("anonymous push with AutoCreateRepos: %v", err)
	}
	out, err := client(open).DescribeRepositories(ctxT(t), &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"made/on/push"}})
	if err != nil || out.Repositories[0].ImageTagMutability != types.ImageTagMutabilityMutable {
		t.Errorf("auto-created repository: %+v %v", out, err)
	}
}

func TestBlobUploadsAndMount(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	c := client(srv)
	a := auth(t, c)
	createRepo(t, c, "src")
	createRepo(t, c, "dst")
	user, pw := srv.Credentials()
	do := func(method, path string, body []byte, hdr map[string]string) *http.Response {
		t.Helper()
		u := path
		if strings.HasPrefix(path, "/") {
			u = srv.URL() + path
		}
		req, _ := http.NewRequest(method, u, bytes.NewReader(body))
		req.SetBasicAuth(user, pw)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	// Chunked upload: POST, two PATCHes with Content-Range, PUT with the digest.
	blob := bytes.Repeat([]byte("0123456789"), 1000)
	digest, _, _ := v1.SHA256(bytes.NewReader(blob))
	resp := do(http.MethodPost, "/v2/src/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	resp = do(http.MethodPatch, loc, blob[:4000], map[string]string{"Content-Range": "0-3999", "Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH chunk 1: %d", resp.StatusCode)
	}
	resp = do(http.MethodPatch, resp.Header.Get("Location"), blob[4000:], map[string]string{"Content-Range": "4000-9999", "Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH chunk 2: %d", resp.StatusCode)
	}
	resp = do(http.MethodPut, resp.Header.Get("Location")+"?digest="+digest.String(), nil, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT upload: %d", resp.StatusCode)
	}
	if resp := do(http.MethodHead, "/v2/src/blobs/"+digest.String(), nil, nil); resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(blob)) {
		t.Errorf("HEAD blob: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	// Monolithic upload with a wrong digest is refused.
	if resp := do(http.MethodPost, "/v2/src/blobs/uploads/?digest=sha256:"+strings.Repeat("0", 64), []byte("x"), nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("monolithic upload with a wrong digest: %d", resp.StatusCode)
	}
	// Blob deletes are not part of ECR's registry API.
	if resp := do(http.MethodDelete, "/v2/src/blobs/"+digest.String(), nil, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("blob DELETE: %d", resp.StatusCode)
	}

	// Cross-repository mount: copying an image between repositories moves no layer bytes.
	img := testImage(t)
	if err := remote.Write(ref(t, srv, "src:v1"), img, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref(t, srv, "src:v1"), remoteOpts(t, a)...)
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetRequests()
	if err := remote.Write(ref(t, srv, "dst:v1"), pulled, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	if srv.Requests(localecr.OpBlobMount) != 3 || srv.Requests(localecr.OpBlobPatch) != 0 || srv.Requests(localecr.OpBlobGet) != 0 {
		t.Errorf("copy between repositories: requests %v, want 3 mounts (2 layers, config) and no blob transfer", srv.RequestCounts())
	}
	// Tags list paginates as the distribution spec says.
	for _, tag := range []string{"a", "b", "c"} {
		if err := remote.Tag(ref(t, srv, "dst:v1").Context().Tag(tag), pulled, remoteOpts(t, a)...); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/v2/dst/tags/list?n=2&last=a", nil)
	req.SetBasicAuth(user, pw)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tags struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tags)
	resp.Body.Close()
	if tags.Name != "dst" || !slices.Equal(tags.Tags, []string{"b", "c"}) || !strings.Contains(resp.Header.Get("Link"), "last=c") {
		t.Errorf("tags page: %+v, Link %q", tags, resp.Header.Get("Link"))
	}
	all, err := remote.List(ref(t, srv, "dst:v1").Context(), remoteOpts(t, a)...)
	if err != nil || !slices.Equal(all, []string{"a", "b", "c", "v1"}) {
		t.Errorf("remote.List: %v %v", all, err)
	}
}

func TestCraneBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the crane binary")
	}
	crane, err := exec.LookPath("crane")
	if err != nil {
		root, rerr := testenv.RepoRoot()
		if rerr == nil {
			crane = filepath.Join(root, ".tools", "bin", "crane")
		}
		if _, serr := os.Stat(crane); serr != nil {
			testenv.Unavailable(t, "crane not found: run `make tools`")
		}
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
	run("auth", "login", srv.Host(), "-u", user, "-p", pw)
	run("copy", srv.Host()+"/src/app:1.0", srv.Host()+"/dst/app:1.0")
	if got := run("digest", srv.Host()+"/dst/app:1.0"); got != digestOf(t, idx) {
		t.Errorf("crane digest after copy: %s, want %s", got, digestOf(t, idx))
	}
	if got := run("ls", srv.Host()+"/dst/app"); got != "1.0" {
		t.Errorf("crane ls: %q", got)
	}
	run("tag", srv.Host()+"/dst/app:1.0", "stable")
	run("delete", srv.Host()+"/dst/app@"+digestOf(t, idx))
	if got := run("ls", srv.Host()+"/dst/app"); got != "" {
		t.Errorf("tags left after deleting the digest: %q", got)
	}
}
