package ocicopy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/ocicopy"
)

func startECR(t *testing.T, account string) (*localecr.Server, authn.Authenticator) {
	t.Helper()
	s, err := localecr.New(localecr.Options{Account: account, AutoCreateRepos: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	user, pass := s.Credentials()
	return s, authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
}

// The promotion path: dev account's ECR to prod account's ECR, each with its own token.
func TestCopyBetweenLocalECRAccounts(t *testing.T) {
	dev, devAuth := startECR(t, "111111111111")
	prod, prodAuth := startECR(t, "333333333333")
	f := pushFixture(t, dev.Host(), "team/app", 21, pushOpts{platforms: 2, layers: 3, layerSize: 64 << 10, auth: devAuth})
	ctx := context.Background()
	opts := []ocicopy.Option{ocicopy.WithAuth(dev.Host(), devAuth), ocicopy.WithAuth(prod.Host(), prodAuth), ocicopy.WithTag(f.tag)}
	src := f.repo.Digest(f.digest.String()).String()

	res, err := ocicopy.Copy(ctx, src, prod.Host()+"/team/app", opts...)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if res.Digest != f.digest || res.BlobsCopied != len(f.blobs) || res.Referrers != len(f.referrers)+len(f.cosignTags) {
		t.Errorf("result %+v; want digest %s, %d blobs, %d referrers", res, f.digest, len(f.blobs), len(f.referrers)+len(f.cosignTags))
	}
	prodRepo := prod.Host() + "/team/app"
	assertReferrers(t, prodRepo, f.digest, f.referrers[:2], remote.WithAuth(prodAuth))

	again, err := ocicopy.Copy(ctx, src, prod.Host()+"/team/app", opts...)
	if err != nil || again.BytesMoved != 0 || again.ManifestsPushed != 0 {
		t.Errorf("re-copy: %+v, %v; want nothing moved", again, err)
	}

	// Another image under the same tag in prod: refused before anything is written.
	other := pushFixture(t, dev.Host(), "team/other", 22, pushOpts{noReferrers: true, auth: devAuth})
	prod.ResetRequests()
	_, err = ocicopy.Copy(ctx, other.repo.Digest(other.digest.String()).String(), prod.Host()+"/team/app", opts...)
	if !errors.Is(err, ocicopy.ErrTagConflict) {
		t.Fatalf("err = %v, want ErrTagConflict", err)
	}
	for op, n := range prod.RequestCounts() {
		switch op {
		case localecr.OpManifestPut, localecr.OpBlobUpload, localecr.OpBlobPatch, localecr.OpBlobPut, localecr.OpBlobMount:
			if n > 0 {
				t.Errorf("refused copy sent %d %s requests to prod", n, op)
			}
		}
	}
}

// Within one account (one registry), blobs are mounted from the source repository, not re-sent.
func TestCopyWithinLocalECRMounts(t *testing.T) {
	ecr, auth := startECR(t, "111111111111")
	f := pushFixture(t, ecr.Host(), "team/app", 23, pushOpts{noReferrers: true, auth: auth})
	ecr.ResetRequests()
	res, err := ocicopy.Copy(context.Background(), f.ref(), ecr.Host()+"/team/release", ocicopy.WithAuth(ecr.Host(), auth))
	if err != nil {
		t.Fatal(err)
	}
	if res.BytesMoved != 0 || res.BlobsCopied != 0 || res.BlobsMounted != len(f.blobs) {
		t.Errorf("moved %d bytes, copied %d, mounted %d, skipped %d of %d blobs; want all mounted, 0 bytes",
			res.BytesMoved, res.BlobsCopied, res.BlobsMounted, res.BlobsSkipped, len(f.blobs))
	}
	if n := ecr.Requests(localecr.OpBlobMount); n != len(f.blobs) {
		t.Errorf("the registry saw %d mount requests, want %d", n, len(f.blobs))
	}
}
