package ecrevent

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/local/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestPublishedSamples decodes every ECR and Inspector event AWS published.
func TestPublishedSamples(t *testing.T) {
	dir := testenv.RealTestdata(t)
	want := map[string]string{ // file → what it must decode to; "" means rejected as malformed
		"eventbridge-ecr-image-action-push-success.ecr-userguide.json":                      "action PUSH SUCCESS my-repository-name latest",
		"eventbridge-ecr-image-action-delete-success.ecr-userguide.json":                    "action DELETE SUCCESS",
		"eventbridge-ecr-image-action-archive-update-storage-class.ecr-userguide.json":      "action UPDATE_STORAGE_CLASS SUCCESS ubuntu",
		"eventbridge-ecr-image-action-restore-update-storage-class.ecr-userguide.json":      "action UPDATE_STORAGE_CLASS",
		"eventbridge-ecr-image-scan-basic-complete.ecr-userguide.json":                      "scan basic COMPLETE my-repository-name CRITICAL=10 MEDIUM=9 reported=CRITICAL,MEDIUM total=-1",
		"eventbridge-ecr-image-scan-basic-complete.lambda-go.json":                          "scan basic COMPLETE",
		"eventbridge-inspector2-scan-ecr-initial-scan-complete.ecr-userguide.json":          "scan enhanced INITIAL_SCAN_COMPLETE amazon/amazon-ecs-sample CRITICAL=7 HIGH=61 MEDIUM=62 reported=CRITICAL,HIGH,MEDIUM total=158",
		"eventbridge-inspector2-scan-ecr-initial-scan-complete.inspector-userguide.json":    "scan enhanced INITIAL_SCAN_COMPLETE inspector2 reported=CRITICAL,HIGH,MEDIUM total=0",
		"eventbridge-ecr-pull-through-cache-action-success.ecr-userguide.json":              "", // trailing comma as published
		"eventbridge-ecr-referrer-action-restore.ecr-userguide.json":                        "other ECR Referrer Action",
		"eventbridge-ecr-replication-action-success.ecr-userguide.json":                     "other ECR Replication Action",
		"eventbridge-ecr-replication-action-failed.ecr-userguide.json":                      "other ECR Replication Action",
		"eventbridge-ecr-scan-resource-change-enhanced.ecr-userguide.json":                  "other ECR Scan Resource Change",
		"eventbridge-ecr-scan-resource-change-enhanced.ecr-userguide-enhanced-page.json":    "other ECR Scan Resource Change",
		"eventbridge-inspector2-finding-ecr-package-vulnerability.ecr-userguide.json":       "other Inspector2 Finding",
		"eventbridge-inspector2-finding-ecr-package-vulnerability.inspector-userguide.json": "other Inspector2 Finding",
		// Coverage events are published for EC2 only; regflow acts on none of them.
		"eventbridge-inspector2-coverage-ec2-inactive.inspector-userguide.json": "other Inspector2 Coverage",
	}
	files, _ := filepath.Glob(filepath.Join(dir, "eventbridge-*.json"))
	seen := 0
	for _, f := range files {
		name := filepath.Base(f)
		if !strings.HasPrefix(name, "eventbridge-ecr-") && !strings.HasPrefix(name, "eventbridge-inspector2-") {
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			exp, ok := want[name]
			if !ok {
				t.Fatalf("new sample %s: add its expected decoding to this table", name)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := Decode(b)
			if exp == "" {
				if err == nil || !errors.Is(err, ErrMalformed) {
					t.Fatalf("invalid sample must be refused as malformed, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got := summary(ev); !strings.HasPrefix(got, exp) {
				t.Errorf("decoded to %q, want prefix %q", got, exp)
			}
		})
	}
	if seen < len(want) {
		t.Errorf("saw %d ECR/Inspector samples, the table expects %d", seen, len(want))
	}
}

func summary(ev any) string {
	switch e := ev.(type) {
	case *ImageAction:
		return strings.Join([]string{"action", e.Detail.ActionType, e.Detail.Result, e.Detail.RepositoryName, e.Detail.ImageTag}, " ")
	case *ImageScan:
		kind := "basic"
		if e.Enhanced {
			kind = "enhanced"
		}
		s := "scan " + kind + " " + e.Status + " " + e.Repository
		for _, sev := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"} {
			if n := e.Counts[sev]; n > 0 {
				s += " " + sev + "=" + strconv.Itoa(n)
			}
		}
		return s + " reported=" + strings.Join(e.Reported, ",") + " total=" + strconv.Itoa(e.Total)
	case *Envelope:
		return "other " + e.DetailType
	}
	return "?"
}

const push = `{"version":"0","id":"e1","detail-type":"ECR Image Action","source":"aws.ecr","account":"111111111111",
"time":%s,"region":"us-east-1","resources":[],
"detail":{"result":"SUCCESS","repository-name":"app","image-digest":"sha256:abc","action-type":"PUSH","image-tag":"latest"}}`

func TestTimestampStyles(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{`"2019-11-16T01:54:34Z"`, time.Date(2019, 11, 16, 1, 54, 34, 0, time.UTC)},
		{`"2025-10-10T19:13:02.74Z"`, time.Date(2025, 10, 10, 19, 13, 2, 740000000, time.UTC)},
		{`1573869274`, time.Date(2019, 11, 16, 1, 54, 34, 0, time.UTC)},
		{`1573869274.5`, time.Date(2019, 11, 16, 1, 54, 34, 500000000, time.UTC)},
	}
	for _, tt := range tests {
		ev, err := DecodeImageAction([]byte(strings.Replace(push, "%s", tt.in, 1)))
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if !ev.Time.Equal(tt.want) {
			t.Errorf("%s decoded to %v, want %v", tt.in, ev.Time, tt.want)
		}
	}
}

func TestMalformed(t *testing.T) {
	valid := strings.Replace(push, "%s", `"2019-11-16T01:54:34Z"`, 1)
	tests := []struct {
		name, in, says string
	}{
		{"empty", ``, "not a JSON"},
		{"array", `[]`, "not a JSON"},
		{"truncated", valid[:60], "not a JSON"},
		{"no detail", strings.Replace(valid, `"detail":{`, `"detailx":{`, 1), "lacks detail"},
		{"null detail", `{"id":"1","detail-type":"ECR Image Action","source":"aws.ecr","account":"1","region":"r","time":"2019-11-16T01:54:34Z","detail":null}`, "lacks detail"},
		{"string detail", `{"id":"1","detail-type":"ECR Image Action","source":"aws.ecr","account":"1","region":"r","time":"2019-11-16T01:54:34Z","detail":"x"}`, "not a JSON object"},
		{"no id", strings.Replace(valid, `"id":"e1",`, ``, 1), "lacks id"},
		{"bad time", strings.Replace(valid, `"2019-11-16T01:54:34Z"`, `"yesterday"`, 1), "not RFC 3339"},
		{"time NaN", strings.Replace(valid, `"2019-11-16T01:54:34Z"`, `1e400`, 1), "not a JSON"},
		{"no repo", strings.Replace(valid, `"repository-name":"app",`, ``, 1), "needs action-type"},
		{"bad digest", strings.Replace(valid, `sha256:abc`, `not a digest`, 1), "not <algorithm>:<hex>"},
		{"wrong type", strings.Replace(valid, `ECR Image Action`, `ECR Image Scan`, 1), "expected source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeImageAction([]byte(tt.in))
			if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want a malformed-event error saying %q", err, tt.says)
			}
		})
	}
}

// FuzzDecode feeds the decoder mutations of the published samples; nothing may panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(strings.Replace(push, "%s", "1573869274", 1)))
	// Seeds come from the team's published samples, read in place; none are committed.
	if root, err := testenv.RepoRoot(); err == nil {
		files, _ := filepath.Glob(filepath.Join(root, "..", "shared", "testdata", "real", "eventbridge-*.json"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		switch e := ev.(type) {
		case *ImageAction:
			if e.Detail.RepositoryName == "" || !validDigest(e.Detail.ImageDigest) {
				t.Fatalf("accepted an action without repository or digest: %+v", e.Detail)
			}
		case *ImageScan:
			if e.Repository == "" || e.Counts == nil {
				t.Fatalf("accepted a scan without repository: %+v", e)
			}
		}
	})
}

// TestPutImageCall decodes CloudTrail's published PutImage and BatchGetImage records as the
// detail of an "AWS API Call via CloudTrail" event.
func TestPutImageCall(t *testing.T) {
	dir := testenv.RealTestdata(t)
	wrap := func(file string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return []byte(`{"version":"0","id":"ct1","detail-type":"AWS API Call via CloudTrail","source":"aws.ecr","account":"123456789012",` +
			`"time":"2019-04-15T16:45:00Z","region":"us-east-2","resources":[],"detail":` + string(b) + `}`)
	}
	call, err := DecodePutImageCall(wrap("cloudtrail-ecr-put-image.ecr-userguide.json"))
	if err != nil {
		t.Fatal(err)
	}
	if call.Principal != "arn:aws:sts::123456789012:user/Mary_Major" || call.Repository != "testrepo" || call.Tag != "latest" ||
		call.Digest != "sha256:98c8b060c21d9adbb6b8c41b916e95e6307102786973ab93a41e8b86d1fc6d3e" {
		t.Fatalf("decoded %+v", call)
	}
	if _, err := DecodePutImageCall(wrap("cloudtrail-ecr-batch-get-image.ecr-userguide.json")); !errors.Is(err, ErrNotPutImage) {
		t.Fatalf("a pull is no push: %v", err)
	}
	if _, err := DecodePutImageCall([]byte(strings.Replace(string(wrap("cloudtrail-ecr-put-image.ecr-userguide.json")), `"arn": "arn:aws:sts::123456789012:user/Mary_Major",`, "", 1))); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a push without an identity is malformed: %v", err)
	}
}
