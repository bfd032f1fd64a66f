package awsapp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/route"
)

// TestFollowUpIsAnAsyncSelfInvocation: the follow-up leaves as an Event invocation of the
// function itself (Lambda answers 202 and queues it), and that event, handed back to the
// approvals function, runs as a follow-up, not as a malformed API Gateway request.
func TestFollowUpIsAnAsyncSelfInvocation(t *testing.T) {
	var mu sync.Mutex
	var got struct{ path, invocationType, body string }
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got.path, got.invocationType, got.body = r.URL.Path, r.Header.Get("X-Amz-Invocation-Type"), string(b)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer stub.Close()
	env(t, stub.URL)
	t.Setenv(awsapp.EnvFunctionName, "regflow-approvals")
	a, err := awsapp.FromEnvironment(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}

	api := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(stub.URL), Credentials: aws.AnonymousCredentials{}})
	f := approvals.FollowUp{Kind: approvals.FollowUpKind, RequestID: "req-1", Status: "approved"}
	if err := (awsapp.SelfInvoke{API: api, Function: "regflow-approvals"}).Defer(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.path != "/2015-03-31/functions/regflow-approvals/invocations" || got.invocationType != "Event" {
		t.Fatalf("invocation %+v, want an Event invocation of regflow-approvals", got)
	}
	back, ok := approvals.ParseFollowUp([]byte(got.body))
	if !ok || back != f {
		t.Fatalf("payload %s does not read back as %+v", got.body, f)
	}
	// Without a message adapter wired to reach the stub's store this only proves routing:
	// the approvals function takes the event as a follow-up and does not refuse it.
	raw, _ := json.Marshal(approvals.FollowUp{Kind: approvals.FollowUpKind})
	if _, err := a.Invoke(context.Background(), route.Approvals, raw); err != nil {
		t.Fatalf("approvals refused its own follow-up: %v", err)
	}
}
