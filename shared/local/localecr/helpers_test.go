package localecr_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// eventLog collects the events a server delivers.
type eventLog struct {
	mu     sync.Mutex
	events []event.Envelope
}

func (l *eventLog) add(_ context.Context, b []byte) {
	var ev event.Envelope
	if err := json.Unmarshal(b, &ev); err != nil {
		panic("server emitted invalid JSON: " + err.Error())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

func (l *eventLog) take() []event.Envelope {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

// actions summarises image-action events as "PUSH repo tag digest" lines.
func actions(t *testing.T, evs []event.Envelope) []string {
	t.Helper()
	var out []string
	for _, ev := range evs {
		if ev.DetailType != event.TypeImageAction {
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

// client is the real SDK ECR client pointed at srv. It retries only a
// connection the Go transport closed itself (see retryClosedConn), so tests
// see every API error as it is.
func client(srv *localecr.Server, mods ...func(*aws.Config)) *ecr.Client {
	cfg := testenv.AWSConfig(srv.URL())
	cfg.Retryer = retryClosedConn
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

func ref(t testing.TB, srv *localecr.Server, s string) name.Reference {
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

// testImage is a small random image whose blobs can be uploaded without its manifest.
func testImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// uploadBlobs puts img's config and layers into repo, leaving the manifest for PutImage.
func uploadBlobs(t *testing.T, srv *localecr.Server, a authn.Authenticator, repo string, img v1.Image) {
	t.Helper()
	r := ref(t, srv, repo+":x").Context()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	layers = append(layers, static.NewLayer(cfg, m.Config.MediaType))
	for _, l := range layers {
		if err := remote.WriteLayer(r, l, remoteOpts(t, a)...); err != nil {
			t.Fatal(err)
		}
	}
}

func rawManifest(t *testing.T, img interface{ RawManifest() ([]byte, error) }) string {
	t.Helper()
	b, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func digestOf(t *testing.T, img interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// errCode is the ECR error code of err ("" for nil).
func errCode(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return "non-API error: " + err.Error()
}

// retryClosedConn retries only net.ErrClosed. Against a server that answers
// in microseconds, net/http can close its own connection while reading a
// large response: it writes a small SDK request body straight to the socket,
// the response arrives before the writer goroutine's final read of that body,
// smithy-go closes the body once Do returns, that read fails, and the
// transport closes the connection (aws/aws-sdk-go-v2#2737; the SDK's standard
// retryer retries net.ErrClosed since #2949, testenv.AWSConfig's NopRetryer does not).
func retryClosedConn() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.RateLimiter = ratelimit.None
		o.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			return aws.BoolTernary(errors.Is(err, net.ErrClosed))
		})}
	})
}

func newECRRequest(endpoint, op string, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921."+op)
	return req, nil
}

func httpDo(req *http.Request) ([]byte, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func refB(b *testing.B, srv *localecr.Server, s string) name.Reference { return ref(b, srv, s) }
