package localecr_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/localecr"
	"github.com/regflow/regflow/shared/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// eventLog collects the events a server delivers.
type eventLog struct {
	mu     sync.Mutex
	events []localecr.Event
}

func (l *eventLog) add(_ context.Context, b []byte) {
	var ev localecr.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		panic("server emitted invalid JSON: " + err.Error())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

func (l *eventLog) take() []localecr.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

// actions summarises image-action events as "PUSH repo tag digest" lines.
func actions(t *testing.T, evs []localecr.Event) []string {
	t.Helper()
	var out []string
	for _, ev := range evs {
		if ev.DetailType != localecr.DetailTypeImageAction {
			continue
		}
		var d localecr.ImageActionDetail
		if err := json.Unmarshal(ev.Detail, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join([]string{d.ActionType, d.RepositoryName, d.ImageTag, d.ImageDigest}, " "))
	}
	return out
}

// start runs a server for the test and returns it with its event log.
func start(t *testing.T, opts localecr.Options) (*localecr.Server, *eventLog) {
	t.Helper()
	log := &eventLog{}
	if opts.OnEvent == nil {
		opts.OnEvent = log.add
	}
	srv, err := localecr.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, log
}

// client is the real SDK ECR client pointed at srv, without retries unless cfg changes them.
func client(srv *localecr.Server, mods ...func(*aws.Config)) *ecr.Client {
	cfg := testenv.AWSConfig(srv.URL())
	for _, m := range mods {
		m(&cfg)
	}
	return ecr.NewFromConfig(cfg)
}

// auth gets registry credentials the way an ECR client does: GetAuthorizationToken.
func auth(t *testing.T, c *ecr.Client) authn.Authenticator {
	t.Helper()
	out, err := c.GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		t.Fatal(err)
	}
	user, pw, ok := strings.Cut(string(raw), ":")
	if !ok || user != "AWS" {
		t.Fatalf("token %q is not AWS:<password>", raw)
	}
	return &authn.Basic{Username: user, Password: pw}
}

func ref(t *testing.T, srv *localecr.Server, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(srv.Host()+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func remoteOpts(t *testing.T, a authn.Authenticator) []remote.Option {
	return []remote.Option{remote.WithAuth(a), remote.WithContext(ctxT(t))}
}

func createRepo(t *testing.T, c *ecr.Client, name string, mods ...func(*ecr.CreateRepositoryInput)) {
	t.Helper()
	in := &ecr.CreateRepositoryInput{RepositoryName: aws.String(name)}
	for _, m := range mods {
		m(in)
	}
	if _, err := c.CreateRepository(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}
