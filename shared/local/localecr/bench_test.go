package localecr_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/local/localecr"
)

// seedSweepFixture fills srv with repos × perRepo images, half of them old.
func seedSweepFixture(b *testing.B, srv *localecr.Server, repos, perRepo int) {
	b.Helper()
	old := time.Now().Add(-200 * 24 * time.Hour)
	for r := range repos {
		seeds := make([]localecr.SeedImage, perRepo)
		for i := range seeds {
			seeds[i] = localecr.SeedImage{SizeBytes: 1 << 20}
			if i%2 == 0 {
				seeds[i].PushedAt = old
			}
			if i%3 != 0 {
				seeds[i].Tags = []string{fmt.Sprintf("%040d", i)}
			}
		}
		if _, err := srv.Seed(fmt.Sprintf("team%d/app%d", r%10, r), seeds...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeed100k measures building the sweep fixture: 1,000 repositories × 100 images.
func BenchmarkSeed100k(b *testing.B) {
	for b.Loop() {
		srv, err := localecr.New(localecr.Options{})
		if err != nil {
			b.Fatal(err)
		}
		seedSweepFixture(b, srv, 1000, 100)
		_ = srv.Close()
	}
}

// BenchmarkSweepDescribeImages is what a retention sweep costs the local ECR:
// DescribeRepositories, then DescribeImages (maxResults 1000) for each of
// 1,000 repositories × 100 images, through the real SDK client over loopback.
func BenchmarkSweepDescribeImages(b *testing.B) {
	srv, err := localecr.New(localecr.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	seedSweepFixture(b, srv, 1000, 100)
	c := client(srv)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		images := 0
		rp := ecr.NewDescribeRepositoriesPaginator(c, &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(1000)})
		for rp.HasMorePages() {
			page, err := rp.NextPage(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range page.Repositories {
				ip := ecr.NewDescribeImagesPaginator(c, &ecr.DescribeImagesInput{RepositoryName: r.RepositoryName, MaxResults: aws.Int32(1000)})
				for ip.HasMorePages() {
					out, err := ip.NextPage(ctx)
					if err != nil {
						b.Fatal(err)
					}
					images += len(out.ImageDetails)
				}
			}
		}
		if images != 100_000 {
			b.Fatalf("swept %d images", images)
		}
	}
	b.ReportMetric(float64(srv.Requests("DescribeImages"))/float64(b.N), "DescribeImages/op")
}

// BenchmarkPull200MB pulls a 200 MB image (20 × 10 MB layers) from the local
// registry with go-containerregistry, reading every layer.
func BenchmarkPull200MB(b *testing.B) {
	srv, err := localecr.New(localecr.Options{AuthDisabled: true, AutoCreateRepos: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	img, err := random.Image(10<<20, 20)
	if err != nil {
		b.Fatal(err)
	}
	r := refB(b, srv, "big/image:v1")
	if err := remote.Write(r, img); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(200 << 20)
	b.ResetTimer()
	for b.Loop() {
		pulled, err := remote.Image(r)
		if err != nil {
			b.Fatal(err)
		}
		layers, err := pulled.Layers()
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	}
}

// BenchmarkPush200MB pushes a 200 MB image (20 × 10 MB layers) into a fresh
// repository with go-containerregistry (concurrent layer uploads).
func BenchmarkPush200MB(b *testing.B) {
	srv, err := localecr.New(localecr.Options{AuthDisabled: true, AutoCreateRepos: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	img, err := random.Image(10<<20, 20)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(200 << 20)
	i := 0
	for b.Loop() {
		i++
		if err := remote.Write(refB(b, srv, fmt.Sprintf("push/r%d:v1", i)), img); err != nil {
			b.Fatal(err)
		}
	}
}
