package ecr

import (
	"context"
	"fmt"
	"regexp"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/regflow/regflow/shared/awsapp/pace"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/sweep"
)

// Page sizes ECR allows at most.
const (
	describeImagesPage       = 1000
	describeRepositoriesPage = 1000
)

// manifestMediaTypes are every manifest type ECR stores. BatchGetImage converts a
// manifest whose stored type is not accepted (Docker v2 to v1, say), and a converted
// manifest no longer hashes to its digest; accepting all of them returns each as stored.
var manifestMediaTypes = []string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.artifact.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
}

// SweepRetryer is the retry strategy for clients that sweep: up to 12 attempts,
// each operation paced once ECR throttles it (shared/awsapp/pace), so a sweep under
// throttling waits for its slots instead of spending requests on throttled retries,
// and finishes late rather than half done. Share one client (so one retryer) per
// registry between concurrent sweeps.
func SweepRetryer() aws.Retryer { return pace.NewRetryer(pace.Options{MaxAttempts: 12}) }

// Repositories lists every repository name in the registry (DescribeRepositories,
// 1,000 per page), sorted.
func (c *Client) Repositories(ctx context.Context) ([]string, error) {
	p := ecrsdk.NewDescribeRepositoriesPaginator(c.api, &ecrsdk.DescribeRepositoriesInput{
		RegistryId: c.registryID,
		MaxResults: aws.Int32(describeRepositoriesPage),
	})
	var names []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		for _, r := range page.Repositories {
			names = append(names, aws.ToString(r.RepositoryName))
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// ListImages describes every image of a repository (DescribeImages, 1,000 per page)
// as selection input. Manifest content (children of indexes, subjects of referrers)
// is not read here: see Manifests and the sweep's NeedsManifest.
func (c *Client) ListImages(ctx context.Context, repo string) ([]regflow.ImageDetail, error) {
	p := ecrsdk.NewDescribeImagesPaginator(c.api, &ecrsdk.DescribeImagesInput{
		RegistryId:     c.registryID,
		RepositoryName: aws.String(repo),
		MaxResults:     aws.Int32(describeImagesPage),
	})
	var out []regflow.ImageDetail
	seen := map[string]bool{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, translate(err, repo, "")
		}
		if out == nil {
			out = make([]regflow.ImageDetail, 0, len(page.ImageDetails))
		}
		for _, d := range page.ImageDetails {
			img := fromDetail(d)
			if img.Digest == "" || seen[img.Digest] {
				continue // an image that moved between pages is listed once
			}
			seen[img.Digest] = true
			out = append(out, regflow.ImageDetail{
				Digest:       img.Digest,
				Tags:         img.Tags,
				PushedAt:     img.PushedAt,
				LastPulledAt: img.LastPulledAt,
				MediaType:    img.ManifestMediaType,
				ArtifactType: img.ArtifactMediaType,
				SizeBytes:    img.SizeBytes,
			})
		}
	}
	return out, nil
}

// Manifests fetches the stored manifests of digests (BatchGetImage, 100 per call, in
// their stored media type so they hash to their digests). A digest no longer in the
// repository is left out of the result; any other per-image failure is an error.
// BatchGetImage counts as a pull in ECR (lastRecordedPullTime), so read pull times
// with ListImages before fetching.
func (c *Client) Manifests(ctx context.Context, repo string, digests []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(digests))
	for chunk := range slices.Chunk(digests, regflow.MaxDeleteBatch) {
		ids := make([]types.ImageIdentifier, len(chunk))
		for i, d := range chunk {
			ids[i] = types.ImageIdentifier{ImageDigest: aws.String(d)}
		}
		res, err := c.api.BatchGetImage(ctx, &ecrsdk.BatchGetImageInput{
			RegistryId:         c.registryID,
			RepositoryName:     aws.String(repo),
			ImageIds:           ids,
			AcceptedMediaTypes: manifestMediaTypes,
		})
		if err != nil {
			return nil, translate(err, repo, "")
		}
		for _, img := range res.Images {
			if img.ImageId == nil || img.ImageManifest == nil {
				continue
			}
			out[aws.ToString(img.ImageId.ImageDigest)] = []byte(aws.ToString(img.ImageManifest))
		}
		for _, f := range res.Failures {
			if f.FailureCode == types.ImageFailureCodeImageNotFound {
				continue // deleted since it was listed
			}
			d := ""
			if f.ImageId != nil {
				d = aws.ToString(f.ImageId.ImageDigest)
			}
			return nil, fmt.Errorf("read manifest of %s@%s: %s: %s", repo, d, f.FailureCode, aws.ToString(f.FailureReason))
		}
	}
	return out, nil
}

// DeleteResult sorts the ids of one BatchDeleteImage call by outcome.
type DeleteResult struct {
	// Deleted are the digests this call removed.
	Deleted []string
	// NotFound were gone already (ImageNotFound): deleted by an earlier call or someone else.
	NotFound []string
	// DeletedOnRetry are in Deleted too: this call's retry found them gone after an
	// earlier attempt that reached ECR lost its answer, so that attempt deleted them.
	DeletedOnRetry []string
	// Referenced are images a manifest list in the repository still lists
	// (ImageReferencedByManifestList); they stay until their parents go.
	Referenced []Referenced
	// Failed are the other per-image failures, kept as ECR worded them.
	Failed []DeleteFailure
}

// Referenced is an image that could not go because manifest lists still list it.
type Referenced struct {
	Digest string
	// Parents are the manifest list digests ECR named in the failure reason.
	Parents []string
	Reason  string
}

// DeleteFailure is any other per-image failure of BatchDeleteImage.
type DeleteFailure struct {
	Digest string
	Code   string
	Reason string
}

var digestInReason = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// DeleteImages deletes up to 100 images by digest in one BatchDeleteImage call, so a
// caller controls the order across calls (manifest lists before the images they list).
// Throttling is retried by the client's retryer; per-image failures come back sorted
// in the result, and only a failed call is an error.
func (c *Client) DeleteImages(ctx context.Context, repo string, digests []string) (DeleteResult, error) {
	var res DeleteResult
	if len(digests) == 0 {
		return res, nil
	}
	if len(digests) > regflow.MaxDeleteBatch {
		return res, fmt.Errorf("delete %d images of %s in one call: BatchDeleteImage takes at most %d", len(digests), repo, regflow.MaxDeleteBatch)
	}
	ids := make([]types.ImageIdentifier, len(digests))
	for i, d := range digests {
		ids[i] = types.ImageIdentifier{ImageDigest: aws.String(d)}
	}
	out, err := c.api.BatchDeleteImage(ctx, &ecrsdk.BatchDeleteImageInput{
		RegistryId:     c.registryID,
		RepositoryName: aws.String(repo),
		ImageIds:       ids,
	})
	if err != nil {
		return res, translate(err, repo, "")
	}
	// ECR reports one id per removed tag; an image counts once.
	seen := map[string]bool{}
	for _, id := range out.ImageIds {
		if d := aws.ToString(id.ImageDigest); d != "" && !seen[d] {
			seen[d] = true
			res.Deleted = append(res.Deleted, d)
		}
	}
	acted := earlierAttemptMayHaveActed(out.ResultMetadata)
	for _, f := range out.Failures {
		d := ""
		if f.ImageId != nil {
			d = aws.ToString(f.ImageId.ImageDigest)
		}
		reason := aws.ToString(f.FailureReason)
		switch f.FailureCode {
		case types.ImageFailureCodeImageNotFound:
			if acted && d != "" && !seen[d] {
				seen[d] = true
				res.Deleted = append(res.Deleted, d)
				res.DeletedOnRetry = append(res.DeletedOnRetry, d)
				continue
			}
			res.NotFound = append(res.NotFound, d)
		case types.ImageFailureCodeImageReferencedByManifestList:
			parents := digestInReason.FindAllString(reason, -1)
			slices.Sort(parents)
			res.Referenced = append(res.Referenced, Referenced{Digest: d, Parents: slices.Compact(parents), Reason: reason})
		default:
			res.Failed = append(res.Failed, DeleteFailure{Digest: d, Code: string(f.FailureCode), Reason: reason})
		}
	}
	return res, nil
}

// earlierAttemptMayHaveActed says whether the call was retried after an attempt that
// may have reached ECR and acted (a lost answer, a 5xx), rather than one it refused
// unread (a throttle).
func earlierAttemptMayHaveActed(md middleware.Metadata) bool {
	ar, ok := retry.GetAttemptResults(md)
	if !ok || len(ar.Results) < 2 {
		return false
	}
	throttles := retry.IsErrorThrottles(retry.DefaultThrottles)
	for _, r := range ar.Results[:len(ar.Results)-1] {
		if r.Err != nil && !throttles.IsErrorThrottle(r.Err).Bool() {
			return true
		}
	}
	return false
}

// SweepRegistry adapts c to the sweep's Registry port.
func SweepRegistry(c *Client) sweep.Registry { return sweepRegistry{c} }

type sweepRegistry struct{ *Client }

func (r sweepRegistry) DeleteImages(ctx context.Context, repo string, digests []string) (sweep.Deletion, error) {
	res, err := r.Client.DeleteImages(ctx, repo, digests)
	d := sweep.Deletion{Deleted: res.Deleted, NotFound: res.NotFound, DeletedOnRetry: res.DeletedOnRetry}
	for _, x := range res.Referenced {
		d.Referenced = append(d.Referenced, sweep.Referenced{Digest: x.Digest, Parents: x.Parents, Reason: x.Reason})
	}
	for _, x := range res.Failed {
		d.Failed = append(d.Failed, sweep.Failure{Digest: x.Digest, Code: x.Code, Reason: x.Reason})
	}
	return d, err
}
