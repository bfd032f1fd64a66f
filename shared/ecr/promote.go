package ecr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/regflow/regflow/shared/regflow"
)

// ManagedTag labels repositories regflow creates; the promotion role may only create those.
const (
	ManagedTagKey   = "managed-by"
	ManagedTagValue = "regflow"
)

// EnsureRepository creates repo with tag immutability, scan on push and encryption, or, when it
// exists, makes sure its tags are immutable. It reports whether it created the repository.
func (c *Client) EnsureRepository(ctx context.Context, repo string, s regflow.RepositorySettings) (bool, error) {
	in := &ecrsdk.CreateRepositoryInput{
		RegistryId:                 c.registryID,
		RepositoryName:             aws.String(repo),
		ImageTagMutability:         types.ImageTagMutability(s.Mutability.Mode),
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true},
		EncryptionConfiguration:    &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeAes256},
		Tags:                       []types.Tag{{Key: aws.String(ManagedTagKey), Value: aws.String(ManagedTagValue)}},
	}
	for _, f := range s.Mutability.Exclusions {
		in.ImageTagMutabilityExclusionFilters = append(in.ImageTagMutabilityExclusionFilters, types.ImageTagMutabilityExclusionFilter{
			Filter: aws.String(f), FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard,
		})
	}
	if s.KMSKey != "" {
		in.EncryptionConfiguration = &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String(s.KMSKey)}
	}
	_, err := c.api.CreateRepository(ctx, in)
	var exists *types.RepositoryAlreadyExistsException
	switch {
	case err == nil:
		return true, c.ensurePushPolicy(ctx, repo, s.PushRole, true)
	case !errors.As(err, &exists):
		return false, fmt.Errorf("create repository %s: %w", repo, err)
	}
	have, err := c.TagMutability(ctx, repo)
	if err != nil {
		return false, err
	}
	if !have.Equal(s.Mutability) {
		if err := c.SetTagMutability(ctx, repo, s.Mutability); err != nil {
			return false, err
		}
	}
	return false, c.ensurePushPolicy(ctx, repo, s.PushRole, false)
}

// Authenticator returns registry credentials from GetAuthorizationToken ("AWS:<password>").
func (c *Client) Authenticator(ctx context.Context) (authn.Authenticator, error) {
	in := &ecrsdk.GetAuthorizationTokenInput{}
	out, err := c.api.GetAuthorizationToken(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("get ECR authorization token: %w", err)
	}
	if len(out.AuthorizationData) == 0 {
		return nil, errors.New("get ECR authorization token: no authorization data returned")
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		return nil, fmt.Errorf("ECR authorization token is not base64: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, errors.New("ECR authorization token is not user:password")
	}
	return &authn.Basic{Username: user, Password: pass}, nil
}
