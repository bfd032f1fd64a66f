package ecr_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
)

// trailingComma matches the commas AWS's published sample leaves before a closing bracket.
var trailingComma = regexp.MustCompile(`,(\s*[\]}])`)

// isoTime matches the timestamps the sample shows as aws-cli prints them; on the wire
// (awsJson1.1) ECR sends epoch seconds.
var isoTime = regexp.MustCompile(`"(\d{4}-\d\d-\d\dT[0-9:.]+[+-]\d\d:\d\d)"`)

func epochSeconds(b []byte) []byte {
	return isoTime.ReplaceAllFunc(b, func(m []byte) []byte {
		at, err := time.Parse(time.RFC3339Nano, string(m[1:len(m)-1]))
		if err != nil {
			return m
		}
		return []byte(strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	})
}

// TestScanFindingsReadsEnhancedFindingsAcrossPages serves ECR's published enhanced-scan
// response (Inspector findings through DescribeImageScanFindings) as two pages and checks
// the adapter reads both, by vulnerability id, severity and package.
func TestScanFindingsReadsEnhancedFindingsAcrossPages(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RealTestdata(t), "ecr-api-describe-image-scan-findings-enhanced.apiref-sample-response.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The sample is invalid JSON as published (trailing commas) and shows times as aws-cli
	// prints them; repaired here, in memory only.
	page1 := epochSeconds(trailingComma.ReplaceAll(b, []byte("$1")))
	if !json.Valid(page1) {
		t.Fatal("the repaired sample is still not JSON")
	}
	var doc map[string]any
	_ = json.Unmarshal(page1, &doc)
	doc["nextToken"] = "page-2"
	first, _ := json.Marshal(doc)
	second := strings.ReplaceAll(strings.ReplaceAll(string(page1), "CVE-2022-49043", "CVE-2024-00002"), `"severity": "HIGH"`, `"severity": "UNTRIAGED"`)

	var mu sync.Mutex
	var tokens []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "AmazonEC2ContainerRegistry_V20150921.DescribeImageScanFindings" {
			http.Error(w, "unexpected operation "+r.Header.Get("X-Amz-Target"), http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var in struct {
			NextToken string `json:"nextToken"`
		}
		_ = json.Unmarshal(body, &in)
		mu.Lock()
		tokens = append(tokens, in.NextToken)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if in.NextToken == "" {
			_, _ = w.Write(first)
			return
		}
		_, _ = w.Write([]byte(second))
	}))
	defer srv.Close()
	api := ecrsdk.NewFromConfig(testenv.AWSConfig(srv.URL), func(o *ecrsdk.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	got, err := ecr.New(api, "").ScanFindings(context.Background(), "sample-repo", "sha256:74b2c688c700ec95a93e478cdb959737c148df3fbf5ea706abe0318726e885e6")
	if err != nil {
		t.Fatal(err)
	}
	want := []regflow.Finding{
		{ID: "CVE-2022-49043", Severity: "HIGH", Package: "libxml2", URI: "https://security-tracker.debian.org/tracker/CVE-2022-49043"},
		{ID: "CVE-2024-00002", Severity: "UNTRIAGED", Package: "libxml2", URI: "https://security-tracker.debian.org/tracker/CVE-2024-00002"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if !cmp.Equal(tokens, []string{"", "page-2"}) {
		t.Errorf("pages requested with tokens %q, want the first page and then page-2", tokens)
	}
}
