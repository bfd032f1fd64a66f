// Package ecr is regflow's adapter for the ECR control plane (aws-sdk-go-v2).
// It translates ECR's errors into the domain's (regflow.ErrImageNotFound, ...)
// so use cases never see AWS types.
package ecr

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/regflow/regflow/shared/regflow"
)

// Client talks to one registry (one account and region).
type Client struct {
	api *ecrsdk.Client
	// registryID is the account whose registry is addressed; empty means the caller's.
	registryID *string
}

// New wraps an SDK client. registryID may be empty.
func New(api *ecrsdk.Client, registryID string) *Client {
	c := &Client{api: api}
	if registryID != "" {
		c.registryID = aws.String(registryID)
	}
	return c
}

// TagMutability reads the repository's tag mutability and exclusion filters.
func (c *Client) TagMutability(ctx context.Context, repo string) (regflow.TagMutability, error) {
	out, err := c.api.DescribeRepositories(ctx, &ecrsdk.DescribeRepositoriesInput{
		RegistryId:      c.registryID,
		RepositoryNames: []string{repo},
	})
	if err != nil {
		return regflow.TagMutability{}, translate(err, repo, "")
	}
	if len(out.Repositories) != 1 {
		return regflow.TagMutability{}, fmt.Errorf("describe repository %s: got %d repositories: %w", repo, len(out.Repositories), regflow.ErrRepositoryNotFound)
	}
	r := out.Repositories[0]
	m := regflow.TagMutability{Mode: string(r.ImageTagMutability)}
	if m.Mode == "" {
		m.Mode = regflow.Mutable // ECR's default when the field is absent
	}
	for _, f := range r.ImageTagMutabilityExclusionFilters {
		m.Exclusions = append(m.Exclusions, aws.ToString(f.Filter))
	}
	slices.Sort(m.Exclusions)
	return m, nil
}

// SetTagMutability applies the setting, with wildcard exclusion filters for the *_WITH_EXCLUSION modes.
func (c *Client) SetTagMutability(ctx context.Context, repo string, m regflow.TagMutability) error {
	in := &ecrsdk.PutImageTagMutabilityInput{
		RegistryId:         c.registryID,
		RepositoryName:     aws.String(repo),
		ImageTagMutability: types.ImageTagMutability(m.Mode),
	}
	for _, f := range m.Exclusions {
		in.ImageTagMutabilityExclusionFilters = append(in.ImageTagMutabilityExclusionFilters, types.ImageTagMutabilityExclusionFilter{
			Filter: aws.String(f), FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard,
		})
	}
	if _, err := c.api.PutImageTagMutability(ctx, in); err != nil {
		return translate(err, repo, "")
	}
	return nil
}

// DescribeImage returns the registry's description of one digest.
func (c *Client) DescribeImage(ctx context.Context, repo, digest string) (regflow.RegistryImage, error) {
	out, err := c.api.DescribeImages(ctx, &ecrsdk.DescribeImagesInput{
		RegistryId:     c.registryID,
		RepositoryName: aws.String(repo),
		ImageIds:       []types.ImageIdentifier{{ImageDigest: aws.String(digest)}},
	})
	if err != nil {
		return regflow.RegistryImage{}, translate(err, repo, digest)
	}
	if len(out.ImageDetails) == 0 {
		return regflow.RegistryImage{}, fmt.Errorf("%s@%s: %w", repo, digest, regflow.ErrImageNotFound)
	}
	return fromDetail(out.ImageDetails[0]), nil
}

// DigestOf returns the digest a tag names.
func (c *Client) DigestOf(ctx context.Context, repo, tag string) (string, error) {
	out, err := c.api.DescribeImages(ctx, &ecrsdk.DescribeImagesInput{
		RegistryId:     c.registryID,
		RepositoryName: aws.String(repo),
		ImageIds:       []types.ImageIdentifier{{ImageTag: aws.String(tag)}},
	})
	if err != nil {
		return "", translate(err, repo, tag)
	}
	if len(out.ImageDetails) == 0 {
		return "", fmt.Errorf("%s:%s: %w", repo, tag, regflow.ErrImageNotFound)
	}
	return aws.ToString(out.ImageDetails[0].ImageDigest), nil
}

// RemoveTag deletes one tag, only while it still names digest, and reports whether it did.
// The delete names both, so ECR itself refuses it if the tag was moved to another image in
// the meantime (ImageTagDoesNotMatchDigest): no look-then-delete race. ECR removes just the
// tag when the image has others, and deletes the image when it was the last.
func (c *Client) RemoveTag(ctx context.Context, repo, tag, digest string) (bool, error) {
	out, err := c.api.BatchDeleteImage(ctx, &ecrsdk.BatchDeleteImageInput{
		RegistryId:     c.registryID,
		RepositoryName: aws.String(repo),
		ImageIds:       []types.ImageIdentifier{{ImageTag: aws.String(tag), ImageDigest: aws.String(digest)}},
	})
	if err != nil {
		return false, translate(err, repo, tag)
	}
	if len(out.Failures) == 0 {
		return true, nil
	}
	f := out.Failures[0] // one id was sent, so at most one failure comes back
	switch f.FailureCode {
	case types.ImageFailureCodeImageNotFound:
		return false, nil // already removed: a redelivered event
	case types.ImageFailureCodeImageTagDoesNotMatchDigest:
		return false, fmt.Errorf("%s:%s no longer names %s: %w", repo, tag, digest, regflow.ErrTagMoved)
	}
	return false, fmt.Errorf("remove tag %s:%s: %s: %s", repo, tag, f.FailureCode, aws.ToString(f.FailureReason))
}

func fromDetail(d types.ImageDetail) regflow.RegistryImage {
	img := regflow.RegistryImage{
		Digest:            aws.ToString(d.ImageDigest),
		Tags:              slices.Clone(d.ImageTags),
		ManifestMediaType: aws.ToString(d.ImageManifestMediaType),
		ArtifactMediaType: aws.ToString(d.ArtifactMediaType),
		SizeBytes:         aws.ToInt64(d.ImageSizeInBytes),
	}
	slices.Sort(img.Tags)
	if d.ImagePushedAt != nil {
		img.PushedAt = d.ImagePushedAt.UTC()
	}
	if d.LastRecordedPullTime != nil {
		img.LastPulledAt = d.LastRecordedPullTime.UTC()
	}
	return img
}

// translate maps ECR's not-found errors to the domain's and words the rest for an operator.
func translate(err error, repo, what string) error {
	var rnf *types.RepositoryNotFoundException
	var inf *types.ImageNotFoundException
	switch {
	case errors.As(err, &rnf):
		return fmt.Errorf("repository %s: %w", repo, regflow.ErrRepositoryNotFound)
	case errors.As(err, &inf):
		return fmt.Errorf("%s %s: %w", repo, what, regflow.ErrImageNotFound)
	}
	return fmt.Errorf("ECR call for repository %s: %w", repo, err)
}

// ScanFindings pages through DescribeImageScanFindings and returns basic and enhanced findings alike.
func (c *Client) ScanFindings(ctx context.Context, repo, digest string) ([]regflow.Finding, error) {
	p := ecrsdk.NewDescribeImageScanFindingsPaginator(c.api, &ecrsdk.DescribeImageScanFindingsInput{
		RegistryId:     c.registryID,
		RepositoryName: aws.String(repo),
		ImageId:        &types.ImageIdentifier{ImageDigest: aws.String(digest)},
		MaxResults:     aws.Int32(1000),
	})
	var out []regflow.Finding
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, translate(err, repo, digest)
		}
		if page.ImageScanFindings == nil {
			continue
		}
		for _, f := range page.ImageScanFindings.Findings {
			fd := regflow.Finding{ID: aws.ToString(f.Name), Severity: string(f.Severity), URI: aws.ToString(f.Uri)}
			for _, a := range f.Attributes {
				if aws.ToString(a.Key) == "package_name" {
					fd.Package = aws.ToString(a.Value)
				}
			}
			out = append(out, fd)
		}
		for _, f := range page.ImageScanFindings.EnhancedFindings {
			fd := regflow.Finding{ID: aws.ToString(f.Title), Severity: aws.ToString(f.Severity)}
			if d := f.PackageVulnerabilityDetails; d != nil {
				if d.VulnerabilityId != nil {
					fd.ID = aws.ToString(d.VulnerabilityId)
				}
				fd.URI = aws.ToString(d.SourceUrl)
				if len(d.VulnerablePackages) > 0 {
					fd.Package = aws.ToString(d.VulnerablePackages[0].Name)
				}
			}
			out = append(out, fd)
		}
	}
	return out, nil
}
