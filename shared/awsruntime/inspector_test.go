package awsruntime_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/inspector2"

	"github.com/regflow/regflow/shared/awsruntime"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/sweep"
)

// TestInUseAsInspectorSawIt: with a window, the reader asks Inspector's ListCoverage for
// the account's ECR images last in use since now-window (the filter Inspector applies, so
// only images in use come back), follows its pages, and keeps them; a failed call fails
// the read. No offline Inspector exists (moto has no ListCoverage): this server answers
// in ListCoverage's documented wire shape and checks the request.
func TestInUseAsInspectorSawIt(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	var requests []map[string]any
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/coverage/list" {
			http.Error(w, "unexpected "+r.URL.Path, http.StatusNotFound)
			return
		}
		if fail {
			w.Header().Set("X-Amzn-Errortype", "AccessDeniedException")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"message":"not authorized to perform inspector2:ListCoverage"}`)
			return
		}
		var in map[string]any
		_ = json.NewDecoder(r.Body).Decode(&in)
		requests = append(requests, in)
		res := func(repo, digest string, last float64, count int) map[string]any {
			return map[string]any{"accountId": "333333333333", "resourceType": "AWS_ECR_CONTAINER_IMAGE", "scanType": "PACKAGE",
				"resourceId":       "arn:aws:ecr:us-east-1:333333333333:repository/" + repo + "/" + digest,
				"resourceMetadata": map[string]any{"ecrRepository": map[string]any{"name": repo}, "ecrImage": map[string]any{"lastInUseAt": last, "inUseCount": count}}}
		}
		out := map[string]any{"coveredResources": []any{res("shop/web", oldDigest, float64(now.Add(-48*time.Hour).Unix()), 0)}, "nextToken": "p2"}
		if in["nextToken"] == "p2" {
			out = map[string]any{"coveredResources": []any{res("team/batch", newDigest, float64(now.Add(-time.Hour).Unix()), 3)}}
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	defer srv.Close()
	u := awsruntime.InUse{Inspector: inspector2.NewFromConfig(testenv.AWSConfig(srv.URL)), Account: "333333333333", Within: 7 * 24 * time.Hour, Now: func() time.Time { return now }}
	uses, err := u.Running(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []sweep.Use{
		{Repository: "shop/web", Digest: oldDigest, Where: "ECS or EKS, as Inspector saw it last on 2026-11-25"},
		{Repository: "team/batch", Digest: newDigest, Where: "ECS or EKS, as Inspector saw it last on 2026-11-27 (3 now)"},
	}
	if len(uses) != len(want) || uses[0] != want[0] || uses[1] != want[1] {
		t.Fatalf("uses %+v, want %+v", uses, want)
	}
	if len(requests) != 2 {
		t.Fatalf("%d ListCoverage calls, want 2 pages", len(requests))
	}
	f, _ := json.Marshal(requests[0]["filterCriteria"])
	for _, s := range []string{`"accountId":[{"comparison":"EQUALS","value":"333333333333"}]`, `"resourceType":[{"comparison":"EQUALS","value":"AWS_ECR_CONTAINER_IMAGE"}]`,
		`"ecrImageLastInUseAt":[{"startInclusive":` + jsonNumber(now.Add(-7*24*time.Hour).Unix())} {
		if !strings.Contains(string(f), s) {
			t.Errorf("filter %s lacks %s", f, s)
		}
	}
	fail = true
	if _, err := u.Running(context.Background()); err == nil || !strings.Contains(err.Error(), "inspector2:ListCoverage") {
		t.Errorf("a failed ListCoverage: %v, want the read failed naming it", err)
	}
	// Without a window Inspector is not read.
	u.Within = 0
	if _, err := u.Running(context.Background()); err != nil {
		t.Errorf("no window: %v", err)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }
