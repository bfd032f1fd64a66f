package localecr

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// epochTime marshals as ECR's JSON does: epoch seconds with a fraction (1565128275.123).
type epochTime time.Time

func (t epochTime) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return fmt.Appendf(nil, "%d.%03d", ms/1000, ms%1000), nil
}

func epochPtr(t time.Time) *epochTime {
	if t.IsZero() {
		return nil
	}
	e := epochTime(t)
	return &e
}

type scanningConfig struct {
	ScanOnPush bool `json:"scanOnPush"`
}

type encryptionConfig struct {
	EncryptionType string `json:"encryptionType"`
	KmsKey         string `json:"kmsKey,omitempty"`
}

type repositoryOut struct {
	RepositoryArn                      string            `json:"repositoryArn"`
	RegistryID                         string            `json:"registryId"`
	RepositoryName                     string            `json:"repositoryName"`
	RepositoryURI                      string            `json:"repositoryUri"`
	CreatedAt                          *epochTime        `json:"createdAt"`
	ImageTagMutability                 string            `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []ExclusionFilter `json:"imageTagMutabilityExclusionFilters,omitempty"`
	ImageScanningConfiguration         scanningConfig    `json:"imageScanningConfiguration"`
	EncryptionConfiguration            encryptionConfig  `json:"encryptionConfiguration"`
}

type scanStatusOut struct {
	Status      string `json:"status"`
	Description string `json:"description,omitempty"`
}

type scanSummaryOut struct {
	ImageScanCompletedAt         *epochTime     `json:"imageScanCompletedAt,omitempty"`
	VulnerabilitySourceUpdatedAt *epochTime     `json:"vulnerabilitySourceUpdatedAt,omitempty"`
	FindingSeverityCounts        map[string]int `json:"findingSeverityCounts"`
}

type imageDetailOut struct {
	RegistryID               string          `json:"registryId"`
	RepositoryName           string          `json:"repositoryName"`
	ImageDigest              string          `json:"imageDigest"`
	ImageTags                []string        `json:"imageTags,omitempty"`
	ImageSizeInBytes         int64           `json:"imageSizeInBytes"`
	ImagePushedAt            *epochTime      `json:"imagePushedAt"`
	ImageScanStatus          *scanStatusOut  `json:"imageScanStatus,omitempty"`
	ImageScanFindingsSummary *scanSummaryOut `json:"imageScanFindingsSummary,omitempty"`
	ImageManifestMediaType   string          `json:"imageManifestMediaType,omitempty"`
	ArtifactMediaType        string          `json:"artifactMediaType,omitempty"`
	LastRecordedPullTime     *epochTime      `json:"lastRecordedPullTime,omitempty"`
	SubjectManifestDigest    string          `json:"subjectManifestDigest,omitempty"`
}

type imageOut struct {
	RegistryID             string  `json:"registryId"`
	RepositoryName         string  `json:"repositoryName"`
	ImageID                imageID `json:"imageId"`
	ImageManifest          string  `json:"imageManifest"`
	ImageManifestMediaType string  `json:"imageManifestMediaType,omitempty"`
}

// Page tokens are opaque to clients; inside they are "<seq>" or "<seq>/<tag>",
// positions that stay meaningful when images are added or deleted between pages.
func encodeToken(seq uint64, tag string) string {
	s := strconv.FormatUint(seq, 10)
	if tag != "" {
		s += "/" + tag
	}
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + s))
}

func decodeToken(tok string) (seq uint64, tag string, err *apiError) {
	bad := invalidParameter("Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'")
	raw, derr := base64.RawURLEncoding.DecodeString(tok)
	if derr != nil || !strings.HasPrefix(string(raw), "v1:") {
		return 0, "", bad
	}
	body := strings.TrimPrefix(string(raw), "v1:")
	num, tag, _ := strings.Cut(body, "/")
	seq, perr := strconv.ParseUint(num, 10, 64)
	if perr != nil {
		return 0, "", bad
	}
	return seq, tag, nil
}

func encodeNameToken(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("r1:" + name))
}

func decodeNameToken(tok string) (string, *apiError) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(raw), "r1:") {
		return "", invalidParameter("Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'")
	}
	return strings.TrimPrefix(string(raw), "r1:"), nil
}
