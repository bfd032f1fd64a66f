package awsapp_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/config"
)

// throttlingTable answers DynamoDB's JSON protocol: GetItem succeeds up to limit
// requests per wall-clock second per operation (a fixed window, as DynamoDB's
// partition limits and the local ECR's throttle behave), and answers
// ThrottlingException above it. Every request counts, throttled ones included.
type throttlingTable struct {
	limit    int
	mu       sync.Mutex
	start    time.Time
	n        int
	requests atomic.Int64
}

func (s *throttlingTable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.requests.Add(1)
	s.mu.Lock()
	now := time.Now()
	if now.Sub(s.start) >= time.Second {
		s.start, s.n = now, 0
	}
	s.n++
	over := s.n > s.limit
	s.mu.Unlock()
	body, status := `{"Item":{"PK":{"S":"x"}}}`, http.StatusOK
	if over {
		body, status = `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}`, http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10))
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// TestClientsPaceThemselvesUnderThrottling: the AWS configuration every function
// and the CLI use (awsapp.LoadAWS) paces a client once it is throttled: 8 callers
// making 300 GetItem calls against a table that takes 100 a second finish them all
// with at most 5% more requests than calls, throttled attempts included.
func TestClientsPaceThemselvesUnderThrottling(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 3 s of wall time")
	}
	srv := &throttlingTable{limit: 100}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	t.Setenv("AWS_ENDPOINT_URL", hs.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()
	awsCfg, err := awsapp.LoadAWS(ctx, &config.Config{Pipeline: config.Pipeline{Region: "us-east-1"}})
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(awsCfg)
	const calls, callers = 300, 8
	var (
		next   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for next.Add(1) <= calls {
				_, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("regflow"),
					Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "x"}, "SK": &types.AttributeValueMemberS{Value: "META"}}})
				if err != nil {
					failed.Add(1)
					t.Log(err)
				}
			}
		})
	}
	wg.Wait()
	made := srv.requests.Load()
	t.Logf("%d calls: %d requests (%.3fx), %d failed, in %s", calls, made, float64(made)/calls, failed.Load(), time.Since(start).Round(time.Millisecond))
	if failed.Load() > 0 || float64(made) > 1.05*calls {
		t.Fatalf("%d requests for %d calls (%.3fx, want at most 1.05x) and %d failed calls", made, calls, float64(made)/calls, failed.Load())
	}
}
