package localecr_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/local/localecr"
)

func wildcard(filters ...string) []types.ImageTagMutabilityExclusionFilter {
	var out []types.ImageTagMutabilityExclusionFilter
	for _, f := range filters {
		out = append(out, types.ImageTagMutabilityExclusionFilter{FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard, Filter: aws.String(f)})
	}
	return out
}

func TestTagMutability(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	c := client(srv)
	a := auth(t, c)
	ctx := ctxT(t)
	tests := []struct {
		mutability types.ImageTagMutability
		filters    []string
		tag        string
		wantPut    string // error code of PutImage moving the tag to another digest
		wantPush   bool   // whether a registry push moving the tag succeeds
	}{
		{types.ImageTagMutabilityMutable, nil, "v1", "", true},
		{types.ImageTagMutabilityImmutable, nil, "v1", "ImageTagAlreadyExistsException", false},
		{types.ImageTagMutabilityImmutableWithExclusion, []string{"dev-*", "latest"}, "dev-1", "", true},
		{types.ImageTagMutabilityImmutableWithExclusion, []string{"dev-*", "latest"}, "latest", "", true},
		{types.ImageTagMutabilityImmutableWithExclusion, []string{"dev-*", "latest"}, "v1", "ImageTagAlreadyExistsException", false},
		{types.ImageTagMutabilityImmutableWithExclusion, []string{"dev-*"}, "devx", "ImageTagAlreadyExistsException", false},
		{types.ImageTagMutabilityMutableWithExclusion, []string{"release-*"}, "release-1", "ImageTagAlreadyExistsException", false},
		{types.ImageTagMutabilityMutableWithExclusion, []string{"release-*"}, "dev", "", true},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%s_%v_%s", tc.mutability, tc.filters, tc.tag), func(t *testing.T) {
			repo := fmt.Sprintf("mut/r%d", i)
			createRepo(t, c, repo)
			if _, err := c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{
				RepositoryName: aws.String(repo), ImageTagMutability: tc.mutability,
				ImageTagMutabilityExclusionFilters: wildcard(tc.filters...),
			}); err != nil {
				t.Fatal(err)
			}
			desc, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
			if err != nil {
				t.Fatal(err)
			}
			if got := desc.Repositories[0]; got.ImageTagMutability != tc.mutability || len(got.ImageTagMutabilityExclusionFilters) != len(tc.filters) {
				t.Fatalf("DescribeRepositories: %s %v", got.ImageTagMutability, got.ImageTagMutabilityExclusionFilters)
			}
			first, second, third := testImage(t), testImage(t), testImage(t)
			uploadBlobs(t, srv, a, repo, first)
			uploadBlobs(t, srv, a, repo, second)
			put := func(img interface{ RawManifest() ([]byte, error) }) error {
				_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageTag: aws.String(tc.tag), ImageManifest: aws.String(rawManifest(t, img))})
				return err
			}
			if err := put(first); err != nil {
				t.Fatal(err)
			}
			if got := errCode(put(first)); got != "ImageAlreadyExistsException" {
				t.Errorf("PutImage of the same manifest and tag again: %q, want ImageAlreadyExistsException", got)
			}
			if got := errCode(put(second)); got != tc.wantPut {
				t.Errorf("PutImage moving tag %q: %q, want %q", tc.tag, got, tc.wantPut)
			}
			wantHolder := digestOf(t, second)
			if tc.wantPut != "" {
				wantHolder = digestOf(t, first)
			}
			err = remote.Write(ref(t, srv, repo+":"+tc.tag), third, remoteOpts(t, a)...)
			if (err == nil) != tc.wantPush {
				t.Errorf("registry push moving tag %q: err %v, want success %v", tc.tag, err, tc.wantPush)
			}
			if tc.wantPush {
				wantHolder = digestOf(t, third)
			}
			got, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tc.tag)}}})
			if err != nil {
				t.Fatal(err)
			}
			if d := aws.ToString(got.ImageDetails[0].ImageDigest); d != wantHolder {
				t.Errorf("tag %q is on %s, want %s", tc.tag, d, wantHolder)
			}
		})
	}
}

func TestPutImageTagMutabilityValidation(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	c := client(srv)
	ctx := ctxT(t)
	createRepo(t, c, "app")
	tests := []struct {
		name       string
		repo       string
		mutability types.ImageTagMutability
		filters    []types.ImageTagMutabilityExclusionFilter
		want       string
	}{
		{"immutable", "app", types.ImageTagMutabilityImmutable, nil, ""},
		{"exclusion without filters", "app", types.ImageTagMutabilityImmutableWithExclusion, nil, "InvalidParameterException"},
		{"filters without exclusion", "app", types.ImageTagMutabilityImmutable, wildcard("dev-*"), "InvalidParameterException"},
		{"bad filter characters", "app", types.ImageTagMutabilityMutableWithExclusion, wildcard("dev/*"), "InvalidParameterException"},
		{"six filters", "app", types.ImageTagMutabilityMutableWithExclusion, wildcard("a", "b", "c", "d", "e", "f"), "InvalidParameterException"},
		{"unknown value", "app", types.ImageTagMutability("SOMETIMES"), nil, "InvalidParameterException"},
		{"missing repository", "nope", types.ImageTagMutabilityImmutable, nil, "RepositoryNotFoundException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{
				RepositoryName: aws.String(tc.repo), ImageTagMutability: tc.mutability, ImageTagMutabilityExclusionFilters: tc.filters,
			})
			if got := errCode(err); got != tc.want {
				t.Errorf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestRepositories(t *testing.T) {
	srv, _ := start(t, localecr.Options{Account: "222222222222", Region: "eu-west-1"})
	c := client(srv)
	ctx := ctxT(t)
	createRepo(t, c, "team/app", func(in *ecr.CreateRepositoryInput) {
		in.ImageTagMutability = types.ImageTagMutabilityImmutableWithExclusion
		in.ImageTagMutabilityExclusionFilters = wildcard("latest")
		in.ImageScanningConfiguration = &types.ImageScanningConfiguration{ScanOnPush: true}
	})
	for i := range 5 {
		createRepo(t, c, fmt.Sprintf("bulk/r%d", i))
	}
	tests := []struct {
		name string
		in   ecr.CreateRepositoryInput
		want string
	}{
		{"exists", ecr.CreateRepositoryInput{RepositoryName: aws.String("team/app")}, "RepositoryAlreadyExistsException"},
		{"upper case", ecr.CreateRepositoryInput{RepositoryName: aws.String("Team/App")}, "InvalidParameterException"},
		{"trailing slash", ecr.CreateRepositoryInput{RepositoryName: aws.String("team/")}, "InvalidParameterException"},
		{"exclusion without filters", ecr.CreateRepositoryInput{RepositoryName: aws.String("x1"), ImageTagMutability: types.ImageTagMutabilityMutableWithExclusion}, "InvalidParameterException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateRepository(ctx, &tc.in)
			if got := errCode(err); got != tc.want {
				t.Errorf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}

	out, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"team/app"}})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Repositories[0]
	if aws.ToString(r.RepositoryArn) != "arn:aws:ecr:eu-west-1:222222222222:repository/team/app" ||
		aws.ToString(r.RegistryId) != "222222222222" ||
		aws.ToString(r.RepositoryUri) != srv.Host()+"/team/app" ||
		r.ImageTagMutability != types.ImageTagMutabilityImmutableWithExclusion ||
		aws.ToString(r.ImageTagMutabilityExclusionFilters[0].Filter) != "latest" ||
		!r.ImageScanningConfiguration.ScanOnPush || r.CreatedAt == nil ||
		r.EncryptionConfiguration.EncryptionType != types.EncryptionTypeAes256 {
		t.Errorf("repository: %+v", r)
	}
	if _, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"team/app", "nope"}}); errCode(err) != "RepositoryNotFoundException" {
		t.Errorf("DescribeRepositories of a missing name: %v", err)
	}

	var names []string
	pages := 0
	p := ecr.NewDescribeRepositoriesPaginator(c, &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page.Repositories {
			names = append(names, aws.ToString(r.RepositoryName))
		}
	}
	if pages != 3 || !slices.Equal(names, []string{"bulk/r0", "bulk/r1", "bulk/r2", "bulk/r3", "bulk/r4", "team/app"}) {
		t.Errorf("paged %d pages: %v", pages, names)
	}

	if _, err := c.PutImageScanningConfiguration(ctx, &ecr.PutImageScanningConfigurationInput{
		RepositoryName: aws.String("bulk/r0"), ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Seed("bulk/r1", localecr.SeedImage{Tags: []string{"v1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("bulk/r1")}); errCode(err) != "RepositoryNotEmptyException" {
		t.Errorf("DeleteRepository of a non-empty repository: %v", err)
	}
	if _, err := c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("bulk/r1"), Force: true}); err != nil {
		t.Error(err)
	}
	if _, err := c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("bulk/r1")}); errCode(err) != "RepositoryNotFoundException" {
		t.Errorf("DeleteRepository twice: %v", err)
	}
}

func TestBatchDeleteImage(t *testing.T) {
	srv, log := start(t, localecr.Options{})
	c := client(srv)
	a := auth(t, c)
	ctx := ctxT(t)
	createRepo(t, c, "app")
	img := testImage(t)
	if err := remote.Write(ref(t, srv, "app:v1"), img, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"v2", "v3"} {
		if err := remote.Tag(ref(t, srv, "app:v1").Context().Tag(tag), img, remoteOpts(t, a)...); err != nil {
			t.Fatal(err)
		}
	}
	dig := digestOf(t, img)
	other := testImage(t)
	if err := remote.Write(ref(t, srv, "app:other"), other, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	otherDig := digestOf(t, other)
	_ = srv.WaitEvents(ctx)
	log.take()

	ids := func(ii ...types.ImageIdentifier) []types.ImageIdentifier { return ii }
	tag := func(t string) types.ImageIdentifier { return types.ImageIdentifier{ImageTag: aws.String(t)} }
	dg := func(d string) types.ImageIdentifier { return types.ImageIdentifier{ImageDigest: aws.String(d)} }
	steps := []struct {
		name         string
		ids          []types.ImageIdentifier
		wantDeleted  []string // "digest tag"
		wantFailures []string // failure codes
		wantTags     []string // tags left on dig; nil when the image is gone
	}{
		{"not the last tag removes only the tag", ids(tag("v1")), []string{dig + " v1"}, nil, []string{"v2", "v3"}},
		{"missing tag", ids(tag("v1")), nil, []string{"ImageNotFound"}, []string{"v2", "v3"}},
		{"missing digest and bad digest", ids(dg("sha256:"+fmt.Sprintf("%064d", 0)), dg("nodigest")), nil, []string{"ImageNotFound", "InvalidImageDigest"}, []string{"v2", "v3"}},
		{"neither tag nor digest", ids(types.ImageIdentifier{}), nil, []string{"MissingDigestAndTag"}, []string{"v2", "v3"}},
		{"tag and digest that disagree", ids(types.ImageIdentifier{ImageTag: aws.String("v2"), ImageDigest: aws.String(otherDig)}), nil, []string{"ImageTagDoesNotMatchDigest"}, []string{"v2", "v3"}},
		{"two tags, the second being the last", ids(tag("v2"), tag("v3")), []string{dig + " v2", dig + " v3"}, nil, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			out, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("app"), ImageIds: st.ids})
			if err != nil {
				t.Fatal(err)
			}
			var deleted, failures []string
			for _, id := range out.ImageIds {
				deleted = append(deleted, aws.ToString(id.ImageDigest)+" "+aws.ToString(id.ImageTag))
			}
			for _, f := range out.Failures {
				failures = append(failures, string(f.FailureCode))
				if aws.ToString(f.FailureReason) == "" {
					t.Errorf("failure %s has no reason", f.FailureCode)
				}
			}
			if !slices.Equal(deleted, st.wantDeleted) || !slices.Equal(failures, st.wantFailures) {
				t.Errorf("deleted %q failures %q, want %q %q", deleted, failures, st.wantDeleted, st.wantFailures)
			}
			d, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), ImageIds: ids(dg(dig))})
			if st.wantTags == nil {
				if errCode(err) != "ImageNotFoundException" {
					t.Errorf("image still described after its last tag went: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := d.ImageDetails[0].ImageTags; !slices.Equal(got, st.wantTags) {
				t.Errorf("tags left %v, want %v", got, st.wantTags)
			}
		})
	}
	_ = srv.WaitEvents(ctx)
	want := []string{"DELETE app v1 " + dig, "DELETE app v2 " + dig, "DELETE app v3 " + dig}
	if got := actions(t, log.take()); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}

	many := make([]types.ImageIdentifier, 101)
	for i := range many {
		many[i] = tag(fmt.Sprintf("t%d", i))
	}
	if _, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("app"), ImageIds: many}); errCode(err) != "InvalidParameterException" {
		t.Errorf("101 ids: %v, want InvalidParameterException", err)
	}
	if out, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("app"), ImageIds: many[:100]}); err != nil || len(out.Failures) != 100 {
		t.Errorf("100 ids: %v, %d failures", err, len(out.Failures))
	}
	if _, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("nope"), ImageIds: many[:1]}); errCode(err) != "RepositoryNotFoundException" {
		t.Errorf("missing repository: %v", err)
	}
}

func TestPaginationWith2500Images(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	c := client(srv)
	ctx := ctxT(t)
	seeds := make([]localecr.SeedImage, 2500)
	for i := range seeds {
		if i%5 != 0 { // every fifth image untagged; some with two tags
			seeds[i].Tags = []string{fmt.Sprintf("v%d", i)}
			if i%7 == 0 {
				seeds[i].Tags = append(seeds[i].Tags, fmt.Sprintf("alias%d", i))
			}
		}
	}
	digests, err := srv.Seed("big", seeds...)
	if err != nil {
		t.Fatal(err)
	}
	wantTagged, wantEntries := 0, 0
	for _, s := range seeds {
		if len(s.Tags) > 0 {
			wantTagged++
		}
		wantEntries += max(1, len(s.Tags))
	}

	tests := []struct {
		status    types.TagStatus
		maxResult int32
		wantDescr int
		wantList  int
	}{
		{"", 1000, 2500, wantEntries},
		{types.TagStatusAny, 333, 2500, wantEntries},
		{types.TagStatusTagged, 1000, wantTagged, wantEntries - (2500 - wantTagged)},
		{types.TagStatusUntagged, 100, 2500 - wantTagged, 2500 - wantTagged},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s_%d", tc.status, tc.maxResult), func(t *testing.T) {
			var filter *types.DescribeImagesFilter
			var lfilter *types.ListImagesFilter
			if tc.status != "" {
				filter = &types.DescribeImagesFilter{TagStatus: tc.status}
				lfilter = &types.ListImagesFilter{TagStatus: tc.status}
			}
			seen := map[string]bool{}
			pages := 0
			dp := ecr.NewDescribeImagesPaginator(c, &ecr.DescribeImagesInput{RepositoryName: aws.String("big"), MaxResults: aws.Int32(tc.maxResult), Filter: filter})
			for dp.HasMorePages() {
				page, err := dp.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(page.ImageDetails) > int(tc.maxResult) {
					t.Fatalf("page of %d > maxResults %d", len(page.ImageDetails), tc.maxResult)
				}
				for _, d := range page.ImageDetails {
					dig := aws.ToString(d.ImageDigest)
					if seen[dig] {
						t.Fatalf("digest %s on two pages", dig)
					}
					seen[dig] = true
				}
			}
			if len(seen) != tc.wantDescr || pages != (tc.wantDescr+int(tc.maxResult)-1)/int(tc.maxResult) {
				t.Errorf("DescribeImages: %d images in %d pages, want %d", len(seen), pages, tc.wantDescr)
			}

			entries := map[string]bool{}
			lp := ecr.NewListImagesPaginator(c, &ecr.ListImagesInput{RepositoryName: aws.String("big"), MaxResults: aws.Int32(tc.maxResult), Filter: lfilter})
			for lp.HasMorePages() {
				page, err := lp.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, id := range page.ImageIds {
					k := aws.ToString(id.ImageDigest) + " " + aws.ToString(id.ImageTag)
					if entries[k] {
						t.Fatalf("ListImages entry %s on two pages", k)
					}
					entries[k] = true
				}
			}
			if len(entries) != tc.wantList {
				t.Errorf("ListImages: %d entries, want %d", len(entries), tc.wantList)
			}
		})
	}

	// Deleting images between pages neither repeats nor skips the survivors.
	p1, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("big"), MaxResults: aws.Int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("big"), ImageIds: []types.ImageIdentifier{
		{ImageDigest: aws.String(digests[9])}, {ImageDigest: aws.String(digests[10])},
	}}); err != nil {
		t.Fatal(err)
	}
	p2, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("big"), MaxResults: aws.Int32(10), NextToken: p1.NextToken})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(p2.ImageDetails[0].ImageDigest); got != digests[11] {
		t.Errorf("page after deletions starts at %s, want %s", got, digests[11])
	}

	for _, bad := range []int32{0, 1001} {
		if _, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("big"), MaxResults: aws.Int32(bad)}); errCode(err) != "InvalidParameterException" {
			t.Errorf("maxResults %d: %v", bad, err)
		}
	}
	if _, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("big"), NextToken: aws.String("garbage")}); errCode(err) != "InvalidParameterException" {
		t.Errorf("bad nextToken: %v", err)
	}
	def, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("big")})
	if err != nil || len(def.ImageDetails) != 100 || def.NextToken == nil {
		t.Errorf("default page: %d images, token %v, err %v; want 100 and a token", len(def.ImageDetails), def.NextToken, err)
	}
}

func TestPullTimeAndClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := localecr.FixedClock(t0)
	srv, log := start(t, localecr.Options{Clock: clock})
	c := client(srv)
	a := auth(t, c)
	ctx := ctxT(t)
	createRepo(t, c, "app")
	img := testImage(t)
	r := ref(t, srv, "app:v1")
	if err := remote.Write(r, img, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	describe := func() types.ImageDetail {
		out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app")})
		if err != nil {
			t.Fatal(err)
		}
		return out.ImageDetails[0]
	}
	d := describe()
	if !d.ImagePushedAt.Equal(t0) || d.LastRecordedPullTime != nil {
		t.Fatalf("after push: pushedAt %v lastPull %v", d.ImagePushedAt, d.LastRecordedPullTime)
	}
	clock.Advance(100 * 24 * time.Hour)
	if _, err := remote.Head(r, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	if d := describe(); d.LastRecordedPullTime != nil {
		t.Errorf("a HEAD recorded a pull at %v", d.LastRecordedPullTime)
	}
	if _, err := remote.Get(r, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(100 * 24 * time.Hour)
	if d := describe(); d.LastRecordedPullTime == nil || !d.LastRecordedPullTime.Equal(t1) || !d.ImagePushedAt.Equal(t0) {
		t.Errorf("after GET: pushedAt %v lastPull %v, want %v %v", d.ImagePushedAt, d.LastRecordedPullTime, t0, t1)
	}
	clock.SetNow(t1.Add(time.Hour))
	if _, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}}); err != nil {
		t.Fatal(err)
	}
	if d := describe(); !d.LastRecordedPullTime.Equal(t1.Add(time.Hour)) {
		t.Errorf("after BatchGetImage: lastPull %v", d.LastRecordedPullTime)
	}
	_ = srv.WaitEvents(ctx)
	evs := log.take()
	if len(evs) != 1 || !evs[0].Time.Equal(t0.Truncate(time.Second)) {
		t.Errorf("events %+v, want one PUSH at %s", evs, t0.Format(time.RFC3339))
	}
}

func TestBatchGetImage(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	c := client(srv)
	a := auth(t, c)
	ctx := ctxT(t)
	createRepo(t, c, "app")
	img := testImage(t)
	if err := remote.Write(ref(t, srv, "app:v1"), img, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	dig := digestOf(t, img)
	out, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("app"), ImageIds: []types.ImageIdentifier{
		{ImageTag: aws.String("v1")}, {ImageDigest: aws.String(dig)}, {ImageTag: aws.String("missing")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Images) != 2 || len(out.Failures) != 1 || out.Failures[0].FailureCode != types.ImageFailureCodeImageNotFound ||
		aws.ToString(out.Failures[0].ImageId.ImageTag) != "missing" {
		t.Fatalf("BatchGetImage: %+v", out)
	}
	for _, im := range out.Images {
		if aws.ToString(im.ImageManifest) != rawManifest(t, img) || aws.ToString(im.ImageId.ImageDigest) != dig ||
			aws.ToString(im.RegistryId) != srv.Account() || aws.ToString(im.ImageManifestMediaType) == "" {
			t.Errorf("image %+v", im)
		}
	}
	if aws.ToString(out.Images[0].ImageId.ImageTag) != "v1" || out.Images[1].ImageId.ImageTag != nil {
		t.Errorf("imageId tags echo the request: %v %v", out.Images[0].ImageId.ImageTag, out.Images[1].ImageId.ImageTag)
	}
}
