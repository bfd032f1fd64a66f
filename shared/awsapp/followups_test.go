package awsapp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/awsapp"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/route"
)

// TestFollowUpIsAnAsyncSelfInvocation: the follow-up leaves as an Event invocation of the
// function itself (Lambda answers 202 and queues it); that event, handed back to the
// approvals function, runs as a follow-up if sealed with the signing secret, and a
// forged one writes nothing.
func TestFollowUpIsAnAsyncSelfInvocation(t *testing.T) {
	var mu sync.Mutex
	var got struct{ path, invocationType, body string }
	var tableCalls int
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		switch target := r.Header.Get("X-Amz-Target"); {
		case target == "secretsmanager.GetSecretValue":
			_, _ = io.WriteString(w, `{"SecretString":"{\"signingSecret\":\"k\",\"botToken\":\"xoxb-1\"}"}`)
		case strings.HasPrefix(target, "DynamoDB_"):
			tableCalls++
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			_, _ = io.WriteString(w, `{}`)
		default:
			got.path, got.invocationType, got.body = r.URL.Path, r.Header.Get("X-Amz-Invocation-Type"), string(b)
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer stub.Close()
	env(t, stub.URL)
	t.Setenv(awsapp.EnvFunctionName, "regflow-approvals")
	a, err := awsapp.FromEnvironment(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}

	api := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(stub.URL), Credentials: aws.AnonymousCredentials{}})
	f := approvals.FollowUp{Kind: approvals.FollowUpKind, RequestID: "req-1", Status: "approved",
		Audit: []regflow.AuditEntry{{Subject: "team/api@sha256:ab", ID: "refused-1", Action: "approval.refused", Actor: "U1"}}}
	if err := (awsapp.SelfInvoke{API: api, Function: "regflow-approvals"}).Defer(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if got.path != "/2015-03-31/functions/regflow-approvals/invocations" || got.invocationType != "Event" {
		t.Fatalf("invocation %+v, want an Event invocation of regflow-approvals", got)
	}
	back, ok := approvals.ParseFollowUp([]byte(got.body))
	mu.Unlock()
	if !ok || !reflect.DeepEqual(back, f) {
		t.Fatalf("payload %s does not read back as %+v", got.body, f)
	}

	calls := func() int { mu.Lock(); defer mu.Unlock(); return tableCalls }
	forged, _ := json.Marshal(f)
	if _, err := a.Invoke(context.Background(), route.Approvals, forged); err != nil {
		t.Fatalf("a forged follow-up is ignored, not an error to retry: %v", err)
	}
	if n := calls(); n != 0 {
		t.Fatalf("a forged follow-up reached the table (%d calls)", n)
	}
	f.Status = "" // no message rewrite: no bot token use
	sealed, err := f.Seal([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(sealed)
	_, _ = a.Invoke(context.Background(), route.Approvals, raw)
	if n := calls(); n == 0 {
		t.Fatal("a sealed follow-up did not write its entries")
	}
}
