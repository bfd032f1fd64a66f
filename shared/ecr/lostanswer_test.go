package ecr_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/sweeptest"
)

// loseFirstAnswer delivers the first BatchDeleteImage to the registry, then drops its
// answer, as a connection reset after the server acted does; the SDK retries.
type loseFirstAnswer struct {
	next http.RoundTripper
	lost atomic.Bool
}

func (l *loseFirstAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".BatchDeleteImage") && l.lost.CompareAndSwap(false, true) {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, &resetError{errors.New("connection reset by peer")}
	}
	return resp, err
}

// resetError is a retryable transport error as the SDK sees a reset connection.
type resetError struct{ error }

func (resetError) Temporary() bool { return true }
func (resetError) Timeout() bool   { return false }

// TestDeleteImagesAnswerLostOnce: a BatchDeleteImage whose first attempt deleted
// the images but lost its answer is retried by the SDK, and the retry finds them
// gone: the adapter reports them as deleted by this call (confirmed on retry), not as
// gone before it, so the sweep's audit says the sweep deleted them.
func TestDeleteImagesAnswerLostOnce(t *testing.T) {
	srv := sweeptest.StartECR(t, localecr.Options{})
	ctx := context.Background()
	ds := sweeptest.Seed(t, srv, "team/app",
		localecr.SeedImage{Manifest: sweeptest.Plain("a"), PushedAt: time.Now().Add(-200 * day)},
		localecr.SeedImage{Manifest: sweeptest.Plain("b"), PushedAt: time.Now().Add(-200 * day)})
	tr := &loseFirstAnswer{next: http.DefaultTransport}
	api := ecrsdk.NewFromConfig(aws.Config{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(srv.URL()), Retryer: ecr.SweepRetryer, HTTPClient: &http.Client{Transport: tr},
	})
	srv.ResetRequests()
	res, err := ecr.New(api, "").DeleteImages(ctx, "team/app", ds)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.lost.Load() || srv.Requests("BatchDeleteImage") != 2 {
		t.Fatalf("the first answer was not lost (%d BatchDeleteImage requests): the test proves nothing", srv.Requests("BatchDeleteImage"))
	}
	if len(res.Deleted) != 2 || len(res.NotFound) != 0 || len(res.DeletedOnRetry) != 2 {
		t.Fatalf("result %+v: want both deleted (confirmed on retry), none gone before", res)
	}
}
