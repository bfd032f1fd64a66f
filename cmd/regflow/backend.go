package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/signature/ocisig"
)

// backend is where the commands act: AWS (the default credential chain and the
// config file) or the local stack that `regflow local` runs (--local). Its use cases
// come from the composition root (shared/app), the same ones the Lambda functions run;
// only the adapters differ.
type backend struct {
	app   *app.App
	cfg   *config.Config
	store app.Store
	// registries reaches each environment's registry (verify-signature reads it directly).
	registries app.Registries
	// identity names who runs the command when --as is not given.
	identity func(ctx context.Context) (string, error)
	local    bool
	close    func()
}

// localInfo is local.json. EventsEndpoint is read here as well as in localstack.Info,
// so this CLI works with a stack that writes it either way.
type localInfo struct {
	localstack.Info
	EventsEndpoint string `json:"eventsEndpoint"`
}

// backend opens the backend the global flags select.
func (g *globals) backend(ctx context.Context) (*backend, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	if g.local {
		return localBackend(cfg, g.configPath, g.stateDir, g.logger())
	}
	opts := awsapp.OptionsFromEnv()
	if g.sweeperRole != "" {
		opts.SweeperRole = g.sweeperRole
	}
	return awsBackend(ctx, cfg, opts, g.logger())
}

// open opens the backend for a command and checks env (when given) against the config.
func (g *globals) open(cmd *cobra.Command, env string) (*backend, context.Context, error) {
	b, err := g.backend(cmd.Context())
	if err != nil {
		return nil, nil, err
	}
	if env != "" {
		if _, err := b.env(env); err != nil {
			b.close()
			return nil, nil, err
		}
	}
	return b, cmd.Context(), nil
}

func localBackend(cfg *config.Config, configPath, stateDir string, log *slog.Logger) (*backend, error) {
	path := filepath.Join(stateDir, "local.json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("the local stack is not running (no %s): start it with `regflow local` in another terminal, with the same --config and --state-dir", path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var info localInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, fmt.Errorf("%s is not the local stack's description (%w): stop `regflow local`, delete the file and start it again", path, err)
	}
	// The stack runs the config it was started with; a different one here would mean
	// commands that name environments the stack does not have.
	var missing []string
	for _, env := range cfg.PromotionPath {
		if _, ok := info.Environments[env]; !ok {
			missing = append(missing, env)
		}
	}
	if len(missing) > 0 || len(info.Environments) != len(cfg.PromotionPath) {
		return nil, fmt.Errorf("the local stack in %s runs environments %s but %s has %s: start `regflow local` with the same --config",
			stateDir, strings.Join(slices.Sorted(maps.Keys(info.Environments)), ", "), configPath, strings.Join(cfg.PromotionPath, ", "))
	}
	storePath := info.Store
	if !filepath.IsAbs(storePath) {
		// Relative to where `regflow local` ran: the file sits beside local.json.
		storePath = filepath.Join(stateDir, filepath.Base(storePath))
	}
	if _, err := os.Stat(storePath); err != nil {
		return nil, fmt.Errorf("the local stack's store %s is missing (%w): restart `regflow local`", storePath, err)
	}
	st, err := embedded.OpenShared(storePath)
	if err != nil {
		return nil, err
	}
	info.Info.EventsEndpoint = info.EventsEndpoint
	adapters := localstack.Attach(cfg, info.Info, st, log)
	a, err := app.New(adapters)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return &backend{app: a, cfg: adapters.Config, store: st, registries: adapters.Registries, identity: localIdentity, local: true, close: func() { _ = st.Close() }}, nil
}

func awsBackend(ctx context.Context, cfg *config.Config, opts awsapp.Options, log *slog.Logger) (*backend, error) {
	awsCfg, err := awsapp.LoadAWS(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Fail here, with what to do, rather than on the first call deep inside a command.
	if _, err := awsCfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("no AWS credentials (%w): configure the default credential chain (AWS_PROFILE, `aws sso login`, environment variables), or pass --local to use `regflow local`", err)
	}
	adapters := awsapp.Adapters(cfg, awsCfg, opts, log)
	adapters.Signatures = ocisig.ForApp
	a, err := app.New(adapters)
	if err != nil {
		return nil, err
	}
	return &backend{
		app: a, cfg: cfg, store: a.Store, registries: adapters.Registries,
		identity: func(ctx context.Context) (string, error) {
			out, err := sts.NewFromConfig(awsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				return "", fmt.Errorf("find who you are in AWS (sts:GetCallerIdentity): %w; or pass --as", err)
			}
			return aws.ToString(out.Arn), nil
		},
		close: func() {},
	}, nil
}

// localIdentity is $USER@local, for records made against the local stack.
func localIdentity(context.Context) (string, error) {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "operator"
	}
	return name + "@local", nil
}

// who is the identity to record: --as when given, else the backend's.
func (b *backend) who(ctx context.Context, as string) (string, error) {
	if as = strings.TrimSpace(as); as != "" {
		return as, nil
	}
	return b.identity(ctx)
}

// explain adds what to do to errors whose cause the user can fix.
func (b *backend) explain(err error) error {
	if err == nil {
		return nil
	}
	var noTable *dynamotypes.ResourceNotFoundException
	switch {
	case b.local && errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w\n(the local stack does not answer: is `regflow local` still running? start it again if not)", err)
	case errors.As(err, &noTable):
		return fmt.Errorf("%w\n(regflow's table %q is not in %s: deploy regflow's infra there, or fix pipeline.table/region in the config)", err, b.cfg.Pipeline.Table, b.cfg.Pipeline.Region)
	}
	return err
}

// env checks an environment name against the config.
func (b *backend) env(name string) (config.Environment, error) {
	e, ok := b.cfg.Environments[name]
	if !ok {
		return e, fmt.Errorf("unknown environment %q: the config has %s", name, strings.Join(b.cfg.PromotionPath, ", "))
	}
	return e, nil
}
