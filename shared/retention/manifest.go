package retention

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// NeedsManifest reports whether selection needs the manifest content of an image
// listed by DescribeImages (imageManifestMediaType), so a sweeper fetches
// (BatchGetImage, up to 100 ids per call) only those: every index, for its children,
// and every OCI manifest, for a possible subject. Even an OCI manifest with an ordinary
// image config may name a subject (image-spec's own example does), so artifact type is
// no safe filter. Docker manifests have no subject field and are skipped.
func NeedsManifest(img Image) bool {
	switch img.MediaType {
	case "application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.v1+prettyjws":
		return false
	}
	return true
}

// ApplyManifest fills in what selection reads from a manifest's content: the children
// of an index, the subject of a referrer, the media type and artifact type. raw is the
// manifest exactly as stored (BatchGetImage imageManifest, asking for the stored media
// type); it must hash to img.Digest, which catches a registry-converted manifest.
func ApplyManifest(img *Image, raw []byte) error {
	if algo, want, ok := strings.Cut(img.Digest, ":"); ok && algo == "sha256" {
		sum := sha256.Sum256(raw)
		if got := hex.EncodeToString(sum[:]); got != want {
			return fmt.Errorf("manifest of %s hashes to sha256:%s: fetch it in its stored media type (acceptedMediaTypes) so the digest matches", img.Digest, got)
		}
	}
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return fmt.Errorf("manifest of %s is not JSON: %w", img.Digest, err)
	}
	mt := probe.MediaType
	if mt == "" {
		mt = img.MediaType // OCI lets a manifest omit mediaType; DescribeImages still reports it
	}
	var subject *v1.Descriptor
	if mt == mediaTypeOCIIndex || mt == mediaTypeDockerList || (mt == "" && probe.Manifests != nil) {
		m, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("index manifest of %s: %w", img.Digest, err)
		}
		if mt == "" {
			mt = mediaTypeOCIIndex
		}
		img.Children = make([]string, 0, len(m.Manifests))
		for _, c := range m.Manifests {
			img.Children = append(img.Children, c.Digest.String())
		}
		if m.ArtifactType != "" {
			img.ArtifactType = m.ArtifactType
		}
		subject = m.Subject
	} else {
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("manifest of %s: %w", img.Digest, err)
		}
		switch {
		case m.ArtifactType != "":
			img.ArtifactType = m.ArtifactType
		case img.ArtifactType == "":
			img.ArtifactType = string(m.Config.MediaType)
		}
		subject = m.Subject
	}
	img.MediaType = mt
	img.Subject = ""
	if subject != nil {
		img.Subject = subject.Digest.String()
	}
	return nil
}
