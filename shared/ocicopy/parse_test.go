package ocicopy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regflow/regflow/shared/local/testenv"
)

// Published manifests (see ../../shared/testdata/real/SOURCES.md) parse into what a copy must carry.
func TestParseManifestRealPayloads(t *testing.T) {
	dir := testenv.RealTestdata(t)
	cases := []struct {
		file             string
		wantType         types.MediaType
		manifests, blobs int
		subject          bool
		wantErr          string
	}{
		{"oci-image-index-two-platforms.image-spec.json", types.OCIImageIndex, 2, 0, false, ""},
		{"oci-image-index-nested-index-mixed-media-types.image-spec.json", types.OCIImageIndex, 2, 0, false, ""},
		{"oci-image-index-four-platforms-arm-variants.regclient-testrepo.json", types.OCIImageIndex, 4, 0, false, ""},
		{"oci-image-index-three-platforms-annotations.regclient-testrepo.json", types.OCIImageIndex, 3, 0, false, ""},
		{"oci-image-index-with-subject.regclient-testrepo.json", types.OCIImageIndex, 1, 0, true, ""},
		{"oci-image-manifest-amd64.regclient-testrepo.json", types.OCIManifestSchema1, 0, 4, false, ""},
		{"oci-image-manifest-with-subject.image-spec.json", types.OCIManifestSchema1, 0, 4, true, ""},
		{"oci-artifact-manifest-minimal-empty-config.image-spec.json", types.OCIManifestSchema1, 0, 2, false, ""},
		{"oci-artifact-manifest-with-config.image-spec.json", types.OCIManifestSchema1, 0, 2, false, ""},
		{"oci-artifact-manifest-without-config-single-layer.image-spec.json", types.OCIManifestSchema1, 0, 2, false, ""},
		{"oci-referrer-sbom-artifact-subject-index.regclient-testrepo.json", types.OCIManifestSchema1, 0, 2, true, ""},
		{"oci-referrer-sbom-artifact-with-annotations.regclient-testrepo.json", types.OCIManifestSchema1, 0, 2, true, ""},
		{"oci-referrer-signature-artifact-subject-index.regclient-testrepo.json", types.OCIManifestSchema1, 0, 2, true, ""},
		{"oci-referrers-tag-schema-index.regclient-testdata.json", types.OCIImageIndex, 2, 0, false, ""},
		{"docker-image-manifest-v2-schema2.distribution-spec.json", types.DockerManifestSchema2, 0, 4, false, ""},
		{"docker-manifest-list-v2-two-platforms.distribution-spec.json", types.DockerManifestList, 2, 0, false, ""},
		// Invalid JSON as published (trailing comma): a clear error, no panic.
		{"oci-referrers-api-response-index.distribution-spec.json", "", 0, 0, false, "not valid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseManifest(raw, "")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.mediaType != tc.wantType || len(p.manifests) != tc.manifests || len(p.blobs) != tc.blobs || (p.subject != nil) != tc.subject {
				t.Errorf("got %s, %d manifests, %d blobs, subject %v; want %s, %d, %d, %v",
					p.mediaType, len(p.manifests), len(p.blobs), p.subject != nil, tc.wantType, tc.manifests, tc.blobs, tc.subject)
			}
		})
	}
}

func TestParseManifestEdgeCases(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	cases := []struct {
		name, raw string
		header    types.MediaType
		wantType  types.MediaType
		blobs     int
		wantErr   string
	}{
		{"media type from the header", `{"schemaVersion":2,"config":{"mediaType":"x","digest":"` + d + `","size":1},"layers":[]}`, types.OCIManifestSchema1, types.OCIManifestSchema1, 1, ""},
		{"deprecated OCI artifact manifest blobs", `{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","blobs":[{"mediaType":"x","digest":"` + d + `","size":1}]}`, "", "application/vnd.oci.artifact.manifest.v1+json", 1, ""},
		{"no media type anywhere", `{"schemaVersion":2,"layers":[]}`, "", "", 0, "no mediaType"},
		{"docker schema 1", `{"schemaVersion":1,"name":"x","fsLayers":[{"blobSum":"` + d + `"}]}`, types.DockerManifestSchema1Signed, "", 0, "schema 1"},
		{"descriptor without digest", `{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"x","size":1}]}`, "", "", 0, "without a digest"},
		{"bad digest", `{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:zz","size":1}]}`, "", "", 0, "not valid JSON"},
		{"not JSON", `<html>`, "", "", 0, "not valid JSON"},
		{"empty", ``, "", "", 0, "not valid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseManifest([]byte(tc.raw), tc.header)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.mediaType != tc.wantType || len(p.blobs) != tc.blobs {
				t.Errorf("got %s with %d blobs, want %s with %d", p.mediaType, len(p.blobs), tc.wantType, tc.blobs)
			}
		})
	}
}
