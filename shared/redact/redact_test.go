package redact_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"testing"

	"github.com/regflow/regflow/shared/redact"
)

const (
	presigned = "https://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com/ab12-111111111111-ab12/6c3a?X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLE%2F20261204%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=0f1e2d3c4b5a"
	hook      = "https://hooks.slack.com/actions/T0001/12345/Zq8sECRETwEbHoOkPaTh"
	token     = "xoxb-1111111111-2222222222-SeCrEtToKeNvAlUe"
)

// secrets are the substrings that must never survive.
var secrets = []string{"IQoJb3JpZ2luX2VjEXAMPLE", "0f1e2d3c4b5a", "ASIAEXAMPLE", "Zq8sECRETwEbHoOkPaTh", "SeCrEtToKeNvAlUe", "hunter2", "c2VjcmV0OnBhc3N3b3Jk"}

func TestString(t *testing.T) {
	tests := []struct {
		name, in string
		keep     []string // what must stay, for the operator
	}{
		{"presigned layer URL in a Go error", `GET "` + presigned + `": unexpected status code 403 Forbidden`, []string{"prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com", "403 Forbidden"}},
		{"response_url", "reply through " + hook + " failed: 500", []string{"https://hooks.slack.com/", "failed: 500"}},
		{"response_url on a stand-in", "Post http://127.0.0.1:4000/actions/T1/1/Zq8sECRETwEbHoOkPaTh: EOF", []string{"http://127.0.0.1:4000/", ": EOF"}},
		{"JSON-escaped response_url", `{"response_url":"https:\/\/hooks.slack.com\/actions\/T1\/1\/Zq8sECRETwEbHoOkPaTh"}`, []string{`"response_url"`}},
		{"percent-encoded response_url", "response_url=https%3A%2F%2Fhooks.slack.com%2Factions%2FT1%2F1%2FZq8sECRETwEbHoOkPaTh&x=1", []string{"response_url="}},
		{"bot token", "slack: not_authed for " + token, []string{"xoxb-", "not_authed"}},
		{"bearer", "Authorization: Bearer c2VjcmV0OnBhc3N3b3Jk", []string{"Authorization"}},
		{"password in a URL", "dial https://admin:hunter2@registry.example.com/v2/", []string{"registry.example.com/v2/"}},
		{"S3 error document", `<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>ASIAEXAMPLE</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 0f1e2d3c4b5a</StringToSign><SignatureProvided>0f1e2d3c4b5a</SignatureProvided></Error>`, []string{"SignatureDoesNotMatch"}},
		{"a query parameter on its own", "canonical: X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE&X-Amz-Date=20261204", []string{"X-Amz-Date=20261204"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redact.String(tt.in)
			for _, s := range secrets {
				if strings.Contains(got, s) {
					t.Errorf("%q survives in %q", s, got)
				}
			}
			for _, k := range append(tt.keep, redact.Mark) {
				if !strings.Contains(got, k) {
					t.Errorf("%q lost from %q", k, got)
				}
			}
			if again := redact.String(got); again != got {
				t.Errorf("not idempotent: %q then %q", got, again)
			}
		})
	}
}

// TestStringLeavesOrdinaryTextAlone: image references, digests, ECR and ordinary URLs are
// what operators need, and stay exactly as they were.
func TestStringLeavesOrdinaryTextAlone(t *testing.T) {
	for _, s := range []string{
		"111111111111.dkr.ecr.us-east-1.amazonaws.com/shop/web@sha256:" + strings.Repeat("ab", 32),
		"https://ci.example.com/deploy/4711",
		"https://111111111111.dkr.ecr.us-east-1.amazonaws.com/v2/shop/web/manifests/sha256:ab?ns=x",
		"tag \"latest\" is a moving tag",
		"",
	} {
		if got := redact.String(s); got != s {
			t.Errorf("%q became %q", s, got)
		}
	}
}

func TestError(t *testing.T) {
	base := fmt.Errorf("copy: %w", fs.ErrPermission)
	err := redact.Error(fmt.Errorf("GET %s: %w", presigned, base))
	if strings.Contains(err.Error(), "0f1e2d3c4b5a") || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("%v (Is ErrPermission: %v)", err, errors.Is(err, fs.ErrPermission))
	}
	if redact.Error(nil) != nil || redact.Error(base) != base {
		t.Fatal("nil or clean errors must come back as they were")
	}
}

func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(redact.Handler(slog.NewJSONHandler(&buf, nil))).With("url", hook)
	log.Warn("reply to "+hook+" failed", "error", fmt.Errorf("post %s: 500", hook),
		slog.Group("slack", "token", token), "result", struct{ Reason string }{"GET " + presigned})
	for _, s := range secrets {
		if strings.Contains(buf.String(), s) {
			t.Errorf("%q in the log: %s", s, buf.String())
		}
	}
	if !strings.Contains(buf.String(), `"Reason":"GET https://prod-us-east-1-starport-layer-bucket`) {
		t.Errorf("structured values must stay structured: %s", buf.String())
	}
}
