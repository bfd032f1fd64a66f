package localecr

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
)

// Media types of the manifests the local registry stores, as ECR accepts them.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

func isIndexType(mt string) bool { return mt == MediaTypeOCIIndex || mt == MediaTypeDockerList }

func isManifestType(mt string) bool {
	return mt == MediaTypeOCIManifest || mt == MediaTypeDockerManifest
}

var digestRE = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$`)

// validDigest reports whether d looks like "<algorithm>:<hex>", the shape ECR accepts.
func validDigest(d string) bool { return digestRE.MatchString(d) }

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

type descriptor struct {
	MediaType    string            `json:"mediaType,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// parsedManifest holds the fields of an image manifest or index that ECR's
// bookkeeping needs; unknown fields are ignored.
type parsedManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *descriptor       `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Manifests     []descriptor      `json:"manifests"`
	Subject       *descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// parseManifest decodes body and settles its media type: the declared one
// (Content-Type or imageManifestMediaType) when given, else the body's own.
func parseManifest(body []byte, declared string) (*parsedManifest, string, error) {
	var m parsedManifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, "", errInvalidManifestJSON
	}
	mt := declared
	if mt == "" {
		mt = m.MediaType
	}
	if mt == "" {
		// An OCI manifest may omit mediaType; infer it from the shape.
		switch {
		case m.Manifests != nil:
			mt = MediaTypeOCIIndex
		case m.Config != nil:
			mt = MediaTypeOCIManifest
		}
	}
	if m.MediaType != "" && declared != "" && m.MediaType != declared {
		return nil, "", errMediaTypeMismatch
	}
	if !isIndexType(mt) && !isManifestType(mt) {
		return nil, mt, errUnsupportedMediaType
	}
	if m.SchemaVersion != 2 {
		return nil, mt, errSchemaVersion
	}
	if isManifestType(mt) && (m.Config == nil || !validDigest(m.Config.Digest)) {
		return nil, mt, errMissingConfig
	}
	for _, d := range append(append([]descriptor{}, m.Layers...), m.Manifests...) {
		if !validDigest(d.Digest) {
			return nil, mt, errBadDescriptor
		}
	}
	if m.Subject != nil && !validDigest(m.Subject.Digest) {
		return nil, mt, errBadDescriptor
	}
	return &m, mt, nil
}

type manifestError string

func (e manifestError) Error() string { return string(e) }

const (
	errInvalidManifestJSON  = manifestError("Invalid JSON syntax")
	errMediaTypeMismatch    = manifestError("the manifest's mediaType differs from the declared media type")
	errUnsupportedMediaType = manifestError("unsupported manifest media type")
	errSchemaVersion        = manifestError("schemaVersion must be 2")
	errMissingConfig        = manifestError("an image manifest needs a config descriptor with a valid digest")
	errBadDescriptor        = manifestError("a descriptor has an invalid digest")
)

// artifactMediaType is what ECR reports as artifactMediaType: the artifactType
// when set, else the config's media type; indexes without artifactType have none.
func (m *parsedManifest) artifactMediaType() string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if m.Config != nil {
		return m.Config.MediaType
	}
	return ""
}
