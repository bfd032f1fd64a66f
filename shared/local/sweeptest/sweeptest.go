// Package sweeptest builds sweep fixtures: manifests (plain images, indexes,
// referrers) to Seed into a local ECR, and SDK clients for it configured as the
// sweeper configures its own.
package sweeptest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/local/localecr"
)

// Media types used by the fixtures.
const (
	DockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	OCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	OCIIndex       = "application/vnd.oci.image.index.v1+json"
)

type desc struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     map[string]string `json:"platform,omitempty"`
}

func hexOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Digest returns the sha256 digest of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Plain returns a unique Docker v2 image manifest named by id. Docker manifests
// carry no subject, so the sweeper never needs to fetch them.
func Plain(id string) []byte {
	b, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     DockerManifest,
		"config":        desc{MediaType: "application/vnd.docker.container.image.v1+json", Digest: "sha256:" + hexOf("config "+id), Size: 100},
		"layers":        []desc{{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: "sha256:" + hexOf("layer "+id), Size: 1000}},
	})
	return b
}

// OCI returns a unique OCI image manifest named by id (one the sweeper must fetch,
// since any OCI manifest may carry a subject).
func OCI(id string) []byte {
	b, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     OCIManifest,
		"config":        desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: "sha256:" + hexOf("config "+id), Size: 100},
		"layers":        []desc{{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: "sha256:" + hexOf("layer "+id), Size: 1000}},
	})
	return b
}

// Index returns an OCI image index listing children (OCI image manifests).
func Index(children ...[]byte) []byte {
	ds := make([]desc, len(children))
	for i, c := range children {
		ds[i] = desc{MediaType: OCIManifest, Digest: Digest(c), Size: int64(len(c)),
			Platform: map[string]string{"os": "linux", "architecture": fmt.Sprintf("arch%d", i)}}
	}
	b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": OCIIndex, "manifests": ds})
	return b
}

// Referrer returns an OCI artifact manifest (a signature, say) whose subject is the
// manifest subject.
func Referrer(id string, subject []byte) []byte {
	b, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     OCIManifest,
		"artifactType":  "application/vnd.dev.cosign.artifact.sig.v1+json",
		"config":        desc{MediaType: "application/vnd.oci.empty.v1+json", Digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", Size: 2},
		"layers":        []desc{{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: "sha256:" + hexOf("sig "+id), Size: 200}},
		"subject":       desc{MediaType: OCIManifest, Digest: Digest(subject), Size: int64(len(subject))},
	})
	return b
}

// StartECR runs a local ECR for the test.
func StartECR(t testing.TB, opts localecr.Options) *localecr.Server {
	t.Helper()
	opts.AuthDisabled = true
	srv, err := localecr.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// Client is an SDK client for srv with the sweeper's retry strategy.
func Client(srv *localecr.Server) *ecrsdk.Client { return ClientFor(srv.URL(), srv.Region()) }

// ClientFor is an SDK client for a local ECR at url with the sweeper's retry strategy.
func ClientFor(url, region string) *ecrsdk.Client {
	return ecrsdk.NewFromConfig(aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(url),
		Retryer:      ecr.SweepRetryer,
	})
}

// Seed puts manifests into repo with one SeedImage template each; it fails the test on error.
func Seed(t testing.TB, srv *localecr.Server, repo string, imgs ...localecr.SeedImage) []string {
	t.Helper()
	ds, err := srv.Seed(repo, imgs...)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}
