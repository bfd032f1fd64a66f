package ocisig_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/signature"
	"github.com/regflow/regflow/shared/signature/ocisig"
)

type clients struct{ srv *localecr.Server }

func (c clients) Registry(_, region string) (*ecr.Client, error) {
	return ecr.New(ecrsdk.NewFromConfig(aws.Config{Region: region, BaseEndpoint: aws.String(c.srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}), ""), nil
}

// The adapter over the local ECR, reached as the composition root will: an ECR token from
// the environment's client, the configured host, plain HTTP on loopback.
func TestReachECRReadsTheLocalECR(t *testing.T) {
	srv, err := localecr.New(localecr.Options{Account: "111111111111", AutoCreateRepos: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ctx := context.Background()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
promotionPath: [dev]
environments:
  dev: {account: "111111111111", registry: %q}
`, srv.Host())))
	if err != nil {
		t.Fatal(err)
	}
	reg, host, err := ocisig.ReachECR(cfg, clients{srv})(ctx, "dev")
	if err != nil || host != srv.Host() {
		t.Fatalf("reach: %v, %q", err, host)
	}
	if _, _, err := ocisig.ReachECR(cfg, clients{srv})(ctx, "qa"); err == nil || !strings.Contains(err.Error(), `"qa" is not configured`) {
		t.Errorf("unknown environment: %v", err)
	}

	user, pass := srv.Credentials()
	img, err := ocitest.RandomImage(1, v1.Platform{OS: "linux", Architecture: "arm64"}, 1, 4096)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	repo := host + "/team/app"
	ref, err := name.NewDigest(repo + "@" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}))); err != nil {
		t.Fatal(err)
	}
	raw, mt, err := reg.Manifest(ctx, repo, d.String())
	if err != nil || len(raw) == 0 || !strings.Contains(mt, "manifest") {
		t.Fatalf("manifest by digest: %d bytes, %q, %v", len(raw), mt, err)
	}
	if _, _, err := reg.Manifest(ctx, repo, "sha256-"+d.Hex+".sig"); !errors.Is(err, signature.ErrNotFound) {
		t.Errorf("a missing tag must be ErrNotFound, got %v", err)
	}
	refs, err := reg.Referrers(ctx, repo, d)
	if err != nil || len(refs) != 0 {
		t.Errorf("referrers of an unsigned image: %v, %v", refs, err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	if _, err := reg.Blob(ctx, repo, ld, 16); err == nil || !strings.Contains(err.Error(), "larger than 16 bytes") {
		t.Errorf("a blob over the limit must be refused, got %v", err)
	}
	if b, err := reg.Blob(ctx, repo, ld, 1<<20); err != nil || len(b) == 0 {
		t.Errorf("blob: %d bytes, %v", len(b), err)
	}
	missing := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	if _, err := reg.Blob(ctx, repo, missing, 1<<20); !errors.Is(err, signature.ErrNotFound) {
		t.Errorf("a missing blob must be ErrNotFound, got %v", err)
	}
}

func TestCheckerOnlyWhenRequired(t *testing.T) {
	none, err := config.Parse([]byte("promotionPath: [dev]\nenvironments:\n  dev: {account: \"111111111111\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ocisig.Checker(none, clients{}); c != nil || err != nil {
		t.Errorf("no requireSignature anywhere: want no checker, got %v, %v", c, err)
	}
	bad, err := config.Parse([]byte(`
promotionPath: [dev, prod]
environments:
  dev: {account: "111111111111"}
  prod:
    account: "333333333333"
    promotionRole: arn:aws:iam::333333333333:role/promote
    externalId: xid
    requireSignature: {require: [{cosignKey: {kmsKey: "arn:aws:kms:us-east-1:333333333333:alias/ci"}}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ocisig.Checker(bad, clients{}); err == nil || !strings.Contains(err.Error(), "environments.prod.requireSignature.require[0].cosignKey.kmsKey") {
		t.Errorf("a refused policy must name its field, got %v", err)
	}
}
