package awsapp_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/middleware"

	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/testenv"
)

// secretReads records the secrets a client reads.
type secretReads struct {
	mu    sync.Mutex
	names []string
}

func (r *secretReads) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.names
	r.names = nil
	return n
}

func (r *secretReads) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("recordSecretReads", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		if p, ok := in.Parameters.(*secretsmanager.GetSecretValueInput); ok && awsmiddleware.GetOperationName(ctx) == "GetSecretValue" {
			r.mu.Lock()
			r.names = append(r.names, aws.ToString(p.SecretId))
			r.mu.Unlock()
		}
		return next.HandleInitialize(ctx, in)
	}), middleware.After)
}

// TestSlackSecretsApartAndLazily: the signing secret and the bot token are two secrets,
// each read only when first needed, so a function that only posts never reads the signing
// secret (and IAM can refuse it) and approvals' verifier never needs the token to verify.
func TestSlackSecretsApartAndLazily(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	moto := testenv.MotoServer(t)
	env(t, moto.Endpoint)
	ctx := context.Background()
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	awsCfg, err := awsapp.LoadAWS(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(awsCfg)
	for name, value := range map[string]string{
		cfg.Pipeline.SlackSecret:        `{"botToken":"xoxb-test"}`,
		cfg.Pipeline.SlackSigningSecret: `{"signingSecret":"8f742231b10e8888abcd99yyyzzz85a5"}`,
	} {
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &secretReads{}
	awsCfg.APIOptions = append(awsCfg.APIOptions, rec.middleware)
	a := awsapp.Adapters(cfg, awsCfg, awsapp.OptionsFromEnv(), nil)
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("building the adapters read %v; secrets are read on first use", got)
	}

	sig, err := a.SigningSecret(ctx)
	if err != nil || string(sig) != "8f742231b10e8888abcd99yyyzzz85a5" {
		t.Fatalf("signing secret = %q, %v", sig, err)
	}
	if got := strings.Join(rec.take(), ","); got != "regflow/slack-signing" {
		t.Fatalf("verifying read %q, want only the signing secret", got)
	}
	if _, err := a.Slack.Client(ctx); err != nil {
		t.Fatalf("bot token: %v", err)
	}
	if got := strings.Join(rec.take(), ","); got != "regflow/slack" {
		t.Fatalf("posting read %q, want only the bot token's secret", got)
	}
	if _, err := a.SigningSecret(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("a second use read %v again; each secret is kept once read", got)
	}
}
