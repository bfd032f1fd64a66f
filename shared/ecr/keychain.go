package ecr

import (
	"context"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
)

var ecrHostRE = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)

// Keychain gives ECR registry hosts credentials from GetAuthorizationToken, using the AWS
// config's credentials in the host's region, and everything else anonymous credentials.
// Tokens are cached per region for the life of the keychain (they last 12 hours).
type Keychain struct {
	AWS aws.Config

	mu     sync.Mutex
	tokens map[string]authn.Authenticator
}

// Resolve implements authn.Keychain.
func (k *Keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	m := ecrHostRE.FindStringSubmatch(r.RegistryStr())
	if m == nil {
		return authn.Anonymous, nil
	}
	region := m[2]
	k.mu.Lock()
	defer k.mu.Unlock()
	if a, ok := k.tokens[region]; ok {
		return a, nil
	}
	cfg := k.AWS.Copy()
	cfg.Region = region
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := New(ecrsdk.NewFromConfig(cfg), "").Authenticator(ctx)
	if err != nil {
		return nil, err
	}
	if k.tokens == nil {
		k.tokens = map[string]authn.Authenticator{}
	}
	k.tokens[region] = a
	return a, nil
}
