package retention

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/regflow/regflow/shared/local/testenv"
)

// realManifest reads a published manifest and returns it with its true digest.
func realManifest(t *testing.T, name string) ([]byte, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RealTestdata(t), name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	return raw, "sha256:" + hex.EncodeToString(sum[:])
}

func TestApplyManifestReal(t *testing.T) {
	tests := []struct {
		file         string
		digest       string // known registry digest of byte-exact blobs ("" = image-spec examples)
		mediaType    string
		artifactType string
		children     []string // prefixes
		subject      string   // prefix
	}{
		{file: "oci-image-index-three-platforms-annotations.regclient-testrepo.json", digest: "sha256:dfae8f425735a5e3a72e40d6609e03079995511d48157c74d54801ff4430491e",
			mediaType: mediaTypeOCIIndex, children: []string{"sha256:ee378b79279b5", "sha256:6bed79d0800a0", "sha256:36ed7f4ec4545"}},
		{file: "oci-image-manifest-amd64.regclient-testrepo.json", digest: "sha256:ee378b79279b57eb5ac1f3b892c9ad2a9be9d9ccabe1a29a9cbaed8cad182358",
			mediaType: "application/vnd.oci.image.manifest.v1+json", artifactType: "application/vnd.oci.image.config.v1+json"},
		{file: "oci-referrer-sbom-artifact-subject-index.regclient-testrepo.json", mediaType: "application/vnd.oci.image.manifest.v1+json",
			artifactType: "application/example.sbom", subject: "sha256:dfae8f425735a5e3"},
		{file: "oci-referrer-signature-artifact-subject-index.regclient-testrepo.json", mediaType: "application/vnd.oci.image.manifest.v1+json",
			artifactType: "application/example.signature", subject: "sha256:dfae8f425735a5e3"},
		{file: "oci-image-index-with-subject.regclient-testrepo.json", mediaType: mediaTypeOCIIndex, artifactType: "application/example.loop",
			children: []string{"sha256:8e54c6754f08d22f"}, subject: "sha256:8e54c6754f08d22f"},
		{file: "oci-image-manifest-with-subject.image-spec.json", mediaType: "application/vnd.oci.image.manifest.v1+json",
			artifactType: "application/vnd.oci.image.config.v1+json", subject: "sha256:5b0bcabd1ed22e9f"},
		{file: "oci-image-index-nested-index-mixed-media-types.image-spec.json", mediaType: mediaTypeOCIIndex,
			children: []string{"sha256:e692418e4cbaf", "sha256:601570aaff1b6"}},
		{file: "docker-manifest-list-v2-two-platforms.distribution-spec.json", mediaType: mediaTypeDockerList,
			children: []string{"sha256:e692418e4cbaf", "sha256:5b0bcabd1ed22"}},
		{file: "docker-image-manifest-v2-schema2.distribution-spec.json", mediaType: "application/vnd.docker.distribution.manifest.v2+json",
			artifactType: "application/vnd.docker.container.image.v1+json"},
		{file: "oci-artifact-manifest-minimal-empty-config.image-spec.json", mediaType: "application/vnd.oci.image.manifest.v1+json",
			artifactType: "application/vnd.example+type"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw, dg := realManifest(t, tc.file)
			if tc.digest != "" && dg != tc.digest {
				t.Fatalf("fixture digest %s, SOURCES.md says %s", dg, tc.digest)
			}
			im := Image{Digest: dg}
			if err := ApplyManifest(&im, raw); err != nil {
				t.Fatal(err)
			}
			if im.MediaType != tc.mediaType || im.ArtifactType != tc.artifactType {
				t.Errorf("media type %q artifact type %q, want %q %q", im.MediaType, im.ArtifactType, tc.mediaType, tc.artifactType)
			}
			if len(im.Children) != len(tc.children) || (isIndexMediaType(tc.mediaType) && im.Children == nil) {
				t.Fatalf("children %v, want %v", im.Children, tc.children)
			}
			for k, c := range tc.children {
				if !strings.HasPrefix(im.Children[k], c) {
					t.Errorf("child %d = %s, want %s…", k, im.Children[k], c)
				}
			}
			if (tc.subject == "") != (im.Subject == "") || !strings.HasPrefix(im.Subject, tc.subject) {
				t.Errorf("subject %q, want %s…", im.Subject, tc.subject)
			}
			if !NeedsManifest(Image{MediaType: tc.mediaType}) && (im.Subject != "" || im.Children != nil) {
				t.Errorf("NeedsManifest says skip %s, but it carries references", tc.mediaType)
			}
		})
	}
}

func TestApplyManifestRejects(t *testing.T) {
	raw, _ := realManifest(t, "oci-image-manifest-amd64.regclient-testrepo.json")
	tests := []struct {
		name, digest string
		raw          []byte
		wantInErr    string
	}{
		{"converted or wrong manifest", d("other"), raw, "stored media type"},
		{"published invalid JSON", "", nil, "not JSON"},
		{"truncated digests", "", nil, "index manifest"},
		{"bad child digest", "", []byte(`{"mediaType":"` + mediaTypeOCIIndex + `","manifests":[{"digest":"sha256:zz"}]}`), "index manifest"},
		{"bad subject digest", "", []byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","subject":{"digest":"md5:1"}}`), "manifest of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.raw
			switch tc.name {
			case "published invalid JSON":
				b, _ = realManifest(t, "oci-referrers-api-response-index.distribution-spec.json")
			case "truncated digests":
				// The referrers response as published, minus its trailing comma: valid JSON
				// whose digests are cut short ("sha256:a1a1a1...").
				b, _ = realManifest(t, "oci-referrers-api-response-index.distribution-spec.json")
				s := string(b)
				i := strings.LastIndex(s, ",")
				b = []byte(s[:i] + s[i+1:])
			}
			im := Image{Digest: tc.digest}
			if im.Digest == "" {
				sum := sha256.Sum256(b)
				im.Digest = "sha256:" + hex.EncodeToString(sum[:])
			}
			err := ApplyManifest(&im, b)
			if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error %v, want one mentioning %q", err, tc.wantInErr)
			}
			if err != nil && !strings.Contains(err.Error(), im.Digest) {
				t.Errorf("error %q does not name the image", err)
			}
		})
	}
}

// TestSelectOverRealManifests runs selection over a repository assembled from the
// published regclient blobs: an index (dfae…) with its amd64 child, an SBOM and a
// signature whose subject is the index.
func TestSelectOverRealManifests(t *testing.T) {
	var images []Image
	for _, f := range []string{
		"oci-image-index-three-platforms-annotations.regclient-testrepo.json",
		"oci-image-manifest-amd64.regclient-testrepo.json",
		"oci-referrer-sbom-artifact-subject-index.regclient-testrepo.json",
		"oci-referrer-signature-artifact-subject-index.regclient-testrepo.json",
	} {
		raw, dg := realManifest(t, f)
		im := Image{Digest: dg, PushedAt: ago(200), SizeBytes: int64(len(raw))}
		if strings.Contains(f, "index") && !strings.Contains(f, "referrer") {
			im.Tags = []string{"v1"}
		}
		if err := ApplyManifest(&im, raw); err != nil {
			t.Fatal(err)
		}
		images = append(images, im)
	}
	const (
		index = "sha256:dfae8f425735a5e3a72e40d6609e03079995511d48157c74d54801ff4430491e"
		amd64 = "sha256:ee378b79279b57eb5ac1f3b892c9ad2a9be9d9ccabe1a29a9cbaed8cad182358"
	)
	reasons := func(res *Result) []string {
		var out []string
		for _, dec := range res.Decisions {
			out = append(out, dec.Reason)
		}
		slices.Sort(out)
		return out
	}

	gone, err := Select(Input{Repository: "regclient", Images: images, Policy: basePolicy(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"delete: SBOM of deleted image sha256:dfae8f425735…",
		"delete: child of deleted index sha256:dfae8f425735…",
		"delete: pushed 200 days ago (policy 90d)",
		"delete: signature of deleted image sha256:dfae8f425735…",
	}
	if got := reasons(gone); !slices.Equal(got, want) {
		t.Errorf("reasons\n got  %q\n want %q", got, want)
	}
	if len(gone.Batches) != 3 || len(gone.Batches[0]) != 2 || gone.Batches[1][0] != index || gone.Batches[2][0] != amd64 {
		t.Errorf("batches %v: want both referrers, then the index, then its child", gone.Batches)
	}

	kept, err := Select(Input{Repository: "regclient", Images: images, Policy: basePolicy(), Now: now,
		Protected: Protected{Releases: []Release{{Env: "prod", Current: index}}}})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"kept: SBOM of kept image sha256:dfae8f425735…",
		"kept: child of kept index sha256:dfae8f425735…",
		"kept: prod current",
		"kept: signature of kept image sha256:dfae8f425735…",
	}
	if got := reasons(kept); !slices.Equal(got, want) {
		t.Errorf("reasons\n got  %q\n want %q", got, want)
	}
}

func TestNeedsManifest(t *testing.T) {
	for mt, want := range map[string]bool{
		mediaTypeOCIIndex: true, mediaTypeDockerList: true,
		"application/vnd.oci.image.manifest.v1+json":                true,
		"application/vnd.docker.distribution.manifest.v2+json":      false,
		"application/vnd.docker.distribution.manifest.v1+prettyjws": false,
		"": true,
	} {
		if got := NeedsManifest(Image{MediaType: mt}); got != want {
			t.Errorf("NeedsManifest(%q) = %v, want %v", mt, got, want)
		}
	}
}
