package ecr_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/retention"
)

var day = 24 * time.Hour

func TestSweepListingAgainstLocalECR(t *testing.T) {
	srv := sweeptest.StartECR(t, localecr.Options{})
	c := ecr.New(sweeptest.Client(srv), "")
	ctx := context.Background()
	now := srv.Clock().Now().UTC().Truncate(time.Second)

	// 2,345 images: DescribeImages must be paged (1,000 per page), nothing lost or doubled.
	const n = 2345
	imgs := make([]localecr.SeedImage, n)
	for i := range imgs {
		imgs[i] = localecr.SeedImage{Manifest: sweeptest.Plain(fmt.Sprint(i)), PushedAt: now.Add(-time.Duration(i) * time.Hour), SizeBytes: int64(i)}
		if i%10 == 0 {
			imgs[i].Tags = []string{fmt.Sprintf("v%d", i), fmt.Sprintf("a%d", i)}
		}
		if i%7 == 0 {
			imgs[i].LastPulledAt = now.Add(-day)
		}
	}
	digests := sweeptest.Seed(t, srv, "team/big", imgs...)
	for i := range 3 {
		sweeptest.Seed(t, srv, fmt.Sprintf("other/r%d", i), localecr.SeedImage{Manifest: sweeptest.Plain("o")})
	}
	srv.ResetRequests()

	got, err := c.ListImages(ctx, "team/big")
	if err != nil {
		t.Fatal(err)
	}
	if calls := srv.Requests("DescribeImages"); calls != 3 {
		t.Errorf("DescribeImages calls = %d for %d images, want 3 pages of 1,000", calls, n)
	}
	if len(got) != n {
		t.Fatalf("listed %d images, want %d", len(got), n)
	}
	byDigest := map[string]retention.Image{}
	for _, img := range got {
		byDigest[img.Digest] = img
	}
	for i, d := range digests {
		img, ok := byDigest[d]
		if !ok {
			t.Fatalf("image %d (%s) not listed", i, d)
		}
		if !img.PushedAt.Equal(imgs[i].PushedAt) || img.SizeBytes != int64(i) || img.MediaType != sweeptest.DockerManifest {
			t.Fatalf("image %d listed as %+v", i, img)
		}
		wantTags := slices.Clone(imgs[i].Tags)
		slices.Sort(wantTags)
		if !slices.Equal(img.Tags, wantTags) {
			t.Fatalf("image %d tags %v, want sorted %v", i, img.Tags, wantTags)
		}
		if !img.LastPulledAt.Equal(imgs[i].LastPulledAt) {
			t.Fatalf("image %d last pulled %v, want %v", i, img.LastPulledAt, imgs[i].LastPulledAt)
		}
		if img.Children != nil {
			t.Fatalf("image %d has children before any manifest was read", i)
		}
	}

	repos, err := c.Repositories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"other/r0", "other/r1", "other/r2", "team/big"}; !slices.Equal(repos, want) {
		t.Fatalf("repositories = %v, want %v", repos, want)
	}
	if _, err := c.ListImages(ctx, "no/such"); err == nil || !strings.Contains(err.Error(), "repository not found") {
		t.Fatalf("listing a missing repository: %v", err)
	}
}

func TestSweepRepositoriesPaged(t *testing.T) {
	srv := sweeptest.StartECR(t, localecr.Options{})
	c := ecr.New(sweeptest.Client(srv), "")
	const n = 1203
	for i := range n {
		sweeptest.Seed(t, srv, fmt.Sprintf("r/%04d", i))
	}
	srv.ResetRequests()
	repos, err := c.Repositories(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != n || repos[0] != "r/0000" || repos[n-1] != fmt.Sprintf("r/%04d", n-1) {
		t.Fatalf("got %d repositories (%v … %v), want %d", len(repos), repos[0], repos[len(repos)-1], n)
	}
	// Two pages of 1,000; under load the SDK may retry one call whose answer it lost.
	if calls := srv.Requests("DescribeRepositories"); calls < 2 || calls > 3 {
		t.Errorf("DescribeRepositories calls = %d, want 2 pages of 1,000", calls)
	}
}

func TestSweepManifests(t *testing.T) {
	srv := sweeptest.StartECR(t, localecr.Options{})
	c := ecr.New(sweeptest.Client(srv), "")
	ctx := context.Background()

	const n = 250
	var bodies [][]byte
	var seeds []localecr.SeedImage
	for i := range n {
		b := sweeptest.OCI(fmt.Sprint(i))
		bodies = append(bodies, b)
		seeds = append(seeds, localecr.SeedImage{Manifest: b})
	}
	docker := sweeptest.Plain("docker")
	idx := sweeptest.Index(bodies[0], bodies[1])
	seeds = append(seeds, localecr.SeedImage{Manifest: docker}, localecr.SeedImage{Manifest: idx, Tags: []string{"multi"}})
	digests := sweeptest.Seed(t, srv, "team/app", seeds...)
	gone := "sha256:" + strings.Repeat("0", 64)
	srv.ResetRequests()

	got, err := c.Manifests(ctx, "team/app", append(slices.Clone(digests), gone))
	if err != nil {
		t.Fatal(err)
	}
	if calls := srv.Requests("BatchGetImage"); calls != 3 {
		t.Errorf("BatchGetImage calls = %d for %d digests, want 3 (100 per call)", calls, len(digests)+1)
	}
	if len(got) != len(digests) {
		t.Fatalf("got %d manifests, want %d (the missing digest left out)", len(got), len(digests))
	}
	// Each comes back as stored, so it hashes to its digest, and ApplyManifest reads it.
	for _, d := range digests {
		img := retention.Image{Digest: d}
		if err := retention.ApplyManifest(&img, got[d]); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	img := retention.Image{Digest: sweeptest.Digest(idx)}
	if err := retention.ApplyManifest(&img, got[img.Digest]); err != nil {
		t.Fatal(err)
	}
	if want := []string{sweeptest.Digest(bodies[0]), sweeptest.Digest(bodies[1])}; !slices.Equal(img.Children, want) {
		t.Fatalf("index children %v, want %v", img.Children, want)
	}
}

func TestSweepDeleteImages(t *testing.T) {
	srv := sweeptest.StartECR(t, localecr.Options{})
	c := ecr.New(sweeptest.Client(srv), "")
	ctx := context.Background()

	childA, childB := sweeptest.OCI("a"), sweeptest.OCI("b")
	idx := sweeptest.Index(childA, childB)
	plain := sweeptest.Plain("p")
	sweeptest.Seed(t, srv, "team/app",
		localecr.SeedImage{Manifest: childA}, localecr.SeedImage{Manifest: childB},
		localecr.SeedImage{Manifest: idx, Tags: []string{"multi"}},
		localecr.SeedImage{Manifest: plain, Tags: []string{"one", "two"}})
	a, b, ix, p := sweeptest.Digest(childA), sweeptest.Digest(childB), sweeptest.Digest(idx), sweeptest.Digest(plain)
	gone := "sha256:" + strings.Repeat("1", 64)

	tests := []struct {
		name    string
		digests []string
		want    ecr.DeleteResult
	}{
		{"a listed child stays, named parent reported; tags count once; gone is not found",
			[]string{a, p, gone},
			ecr.DeleteResult{Deleted: []string{p}, NotFound: []string{gone},
				Referenced: []ecr.Referenced{{Digest: a, Parents: []string{ix}}}}},
		{"the index first, then its children in the same call",
			[]string{ix, a, b},
			ecr.DeleteResult{Deleted: []string{ix, a, b}}},
		{"a second time everything is already gone",
			[]string{ix, a, b, p},
			ecr.DeleteResult{NotFound: []string{ix, a, b, p}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.DeleteImages(ctx, "team/app", tc.digests)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got.Referenced {
				if !strings.Contains(got.Referenced[i].Reason, "manifest list") {
					t.Errorf("reason %q", got.Referenced[i].Reason)
				}
				got.Referenced[i].Reason = ""
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("result\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}

	t.Run("more than 100 ids is refused before any call", func(t *testing.T) {
		srv.ResetRequests()
		ids := make([]string, 101)
		for i := range ids {
			ids[i] = fmt.Sprintf("sha256:%064x", i)
		}
		if _, err := c.DeleteImages(ctx, "team/app", ids); err == nil || !strings.Contains(err.Error(), "at most 100") {
			t.Fatalf("101 ids: %v", err)
		}
		if srv.Requests("BatchDeleteImage") != 0 {
			t.Fatal("a call was made")
		}
		res, err := c.DeleteImages(ctx, "team/app", ids[:100])
		if err != nil || len(res.NotFound) != 100 {
			t.Fatalf("100 ids: %+v, %v", res, err)
		}
	})
	t.Run("missing repository", func(t *testing.T) {
		if _, err := c.DeleteImages(ctx, "no/such", []string{p}); err == nil || !strings.Contains(err.Error(), "repository not found") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestSweepSurvivesThrottling deletes 2,000 images from 8 goroutines sharing one
// client while the local ECR throttles every operation above 20 requests a second.
func TestSweepSurvivesThrottling(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds of throttled calls")
	}
	srv := sweeptest.StartECR(t, localecr.Options{})
	c := ecr.New(sweeptest.Client(srv), "")
	ctx := context.Background()
	const repos, per = 8, 250
	all := map[string][]string{}
	for r := range repos {
		seeds := make([]localecr.SeedImage, per)
		for i := range seeds {
			seeds[i] = localecr.SeedImage{Manifest: sweeptest.Plain(fmt.Sprintf("%d/%d", r, i))}
		}
		all[fmt.Sprintf("r%d", r)] = sweeptest.Seed(t, srv, fmt.Sprintf("r%d", r), seeds...)
	}
	srv.SetFault(localecr.AllOps, localecr.Fault{ThrottleAbove: 20})

	var wg sync.WaitGroup
	errs := make(chan error, repos)
	for repo, digests := range all {
		wg.Go(func() {
			imgs, err := c.ListImages(ctx, repo)
			if err != nil || len(imgs) != per {
				errs <- fmt.Errorf("list %s: %d images, %v", repo, len(imgs), err)
				return
			}
			for chunk := range slices.Chunk(digests, 50) { // more calls, more throttling
				res, err := c.DeleteImages(ctx, repo, chunk)
				if err != nil {
					errs <- err
					return
				}
				// A retried call whose first attempt was applied before its answer was lost
				// reports those images ImageNotFound: gone either way, as ECR would say.
				if len(res.Deleted)+len(res.NotFound) != len(chunk) || len(res.Failed)+len(res.Referenced) > 0 {
					errs <- fmt.Errorf("%s: deleted %d of %d: %+v", repo, len(res.Deleted), len(chunk), res)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	calls := srv.Requests("BatchDeleteImage")
	t.Logf("BatchDeleteImage requests: %d for %d successful calls (the rest throttled and retried)", calls, repos*per/50)
	if calls <= repos*per/50 {
		t.Errorf("no throttling happened (%d calls): the test proves nothing", calls)
	}
	srv.ClearFaults()
	for repo := range all {
		if imgs, _ := c.ListImages(ctx, repo); len(imgs) != 0 {
			t.Errorf("%s still has %d images", repo, len(imgs))
		}
	}
}

// TestSweepAgainstMoto runs the operations moto implements. moto ignores maxResults
// (one page) and returns failures for more than 100 ids instead of refusing the call
// (TOOLCHAIN.md), so paging and the cap are proven against the local ECR above.
func TestSweepAgainstMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	moto := testenv.MotoServer(t)
	api := ecrsdk.NewFromConfig(testenv.AWSConfig(moto.Endpoint))
	c := ecr.New(api, "")
	ctx := context.Background()
	d1 := seed(t, api, "sweep/a", 11, "t1")
	d2 := seed(t, api, "sweep/a", 12, "t2", "t3")
	seed(t, api, "sweep/b", 13, "t1")

	repos, err := c.Repositories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(repos, []string{"sweep/a", "sweep/b"}) {
		t.Fatalf("repositories %v", repos)
	}
	imgs, err := c.ListImages(ctx, "sweep/a")
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 {
		t.Fatalf("images %+v", imgs)
	}
	for _, img := range imgs {
		if img.Digest == d2 && !slices.Equal(img.Tags, []string{"t2", "t3"}) || img.PushedAt.IsZero() {
			t.Fatalf("image %+v", img)
		}
	}
	ms, err := c.Manifests(ctx, "sweep/a", []string{d1, d2})
	if err != nil {
		t.Fatal(err)
	}
	if string(ms[d1]) != manifest(11) || string(ms[d2]) != manifest(12) {
		t.Fatalf("manifests %q", ms)
	}
	res, err := c.DeleteImages(ctx, "sweep/a", []string{d2, "sha256:" + strings.Repeat("a", 64)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Deleted, []string{d2}) || len(res.NotFound) != 1 {
		t.Fatalf("delete result %+v", res)
	}
	if imgs, _ := c.ListImages(ctx, "sweep/a"); len(imgs) != 1 || imgs[0].Digest != d1 {
		t.Fatalf("after delete: %+v", imgs)
	}
}
