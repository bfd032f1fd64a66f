package ecr

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/regflow/regflow/shared/regflow"
)

// maxParentCandidates bounds how many recent tagged indexes ParentIndexes reads: a platform
// image's scan arrives minutes after its index was pushed, so its parent is among the newest.
const maxParentCandidates = 100

// ParentIndexes returns the tagged indexes of repo that list digest as a platform image,
// newest first. ECR scans platform images, not indexes, so the scan gate uses this to find
// the index that is promoted.
func (c *Client) ParentIndexes(ctx context.Context, repo, digest string) ([]regflow.Index, error) {
	p := ecrsdk.NewDescribeImagesPaginator(c.api, &ecrsdk.DescribeImagesInput{
		RegistryId:     c.registryID,
		RepositoryName: aws.String(repo),
		Filter:         &types.DescribeImagesFilter{TagStatus: types.TagStatusTagged},
		MaxResults:     aws.Int32(1000),
	})
	var candidates []types.ImageDetail
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, translate(err, repo, digest)
		}
		for _, d := range page.ImageDetails {
			if isIndexMediaType(aws.ToString(d.ImageManifestMediaType)) {
				candidates = append(candidates, d)
			}
		}
	}
	slices.SortFunc(candidates, func(a, b types.ImageDetail) int {
		return aws.ToTime(b.ImagePushedAt).Compare(aws.ToTime(a.ImagePushedAt))
	})
	if len(candidates) > maxParentCandidates {
		candidates = candidates[:maxParentCandidates]
	}
	digests := make([]string, len(candidates))
	for i, d := range candidates {
		digests[i] = aws.ToString(d.ImageDigest)
	}
	manifests, err := c.Manifests(ctx, repo, digests)
	if err != nil {
		return nil, err
	}
	var out []regflow.Index
	for _, d := range candidates {
		platforms := platformImages(manifests[aws.ToString(d.ImageDigest)])
		if slices.Contains(platforms, digest) {
			idx := fromDetail(d)
			out = append(out, regflow.Index{Digest: idx.Digest, Tags: idx.Tags, PushedAt: idx.PushedAt, Platforms: platforms})
		}
	}
	return out, nil
}

func isIndexMediaType(mt string) bool {
	return mt == "application/vnd.oci.image.index.v1+json" || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// platformImages lists an index's children that are images for a platform; buildx's
// attestation manifests (platform unknown/unknown) are not scanned, so they are left out.
func platformImages(manifest []byte) []string {
	var idx struct {
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform *struct {
				OS string `json:"os"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if json.Unmarshal(manifest, &idx) != nil {
		return nil
	}
	var out []string
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.OS == "unknown" {
			continue
		}
		out = append(out, m.Digest)
	}
	return out
}

// Platforms lists the platform images of an index (nil for an image): what ECR scans of it.
func (c *Client) Platforms(ctx context.Context, repo, digest string) ([]string, error) {
	m, err := c.Manifests(ctx, repo, []string{digest})
	if err != nil {
		return nil, err
	}
	return platformImages(m[digest]), nil
}
