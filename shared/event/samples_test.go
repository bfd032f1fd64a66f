package event_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/ecrevent"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/sweep"
)

// samplesDir holds the sample events, one folder per function.
var samplesDir = filepath.Join("..", "..", "events")

// decodeStrict decodes b into v and fails on fields v has no place for.
func decodeStrict(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode into %T: %v", v, err)
	}
	if dec.More() {
		t.Fatalf("decode into %T: trailing data", v)
	}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	return b
}

// decodeAny decodes JSON into maps, slices and scalars, for comparison regardless of
// key order and spacing.
func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return v
}

// jsonEq fails unless want and got are the same JSON value.
func jsonEq(t *testing.T, want, got []byte) {
	t.Helper()
	if diff := cmp.Diff(decodeAny(t, want), decodeAny(t, got)); diff != "" {
		t.Fatalf("re-encoded JSON differs (-sample +re-encoded):\n%s", diff)
	}
}

// bridged round-trips an EventBridge event whose detail is a D: the envelope strictly
// into aws-lambda-go's type, then the detail strictly into D.
func bridged[D any](t *testing.T, b []byte) []byte {
	var env event.Envelope
	decodeStrict(t, b, &env)
	var d D
	decodeStrict(t, env.Detail, &d)
	env.Detail = encode(t, d)
	return encode(t, env)
}

// plain round-trips a sample whose whole shape is T.
func plain[T any](t *testing.T, b []byte) []byte {
	var v T
	decodeStrict(t, b, &v)
	return encode(t, v)
}

// sqsBatch round-trips the workers' SQS batch, each body as a sweep.Message.
// aws-lambda-go's SQSMessage always writes md5OfMessageAttributes; SQS sends it only
// when the message has attributes (AWS's own sample has none), so that one key is
// dropped from the re-encoding where the sample has no attributes.
func sqsBatch(t *testing.T, b []byte) []byte {
	var e events.SQSEvent
	decodeStrict(t, b, &e)
	for i, r := range e.Records {
		var m sweep.Message
		decodeStrict(t, []byte(r.Body), &m)
		jsonEq(t, []byte(r.Body), encode(t, m))
		e.Records[i].Body = string(encode(t, m))
	}
	out := decodeAny(t, encode(t, e)).(map[string]any)
	for i, r := range out["Records"].([]any) {
		rec := r.(map[string]any)
		if rec["md5OfMessageAttributes"] == "" && len(e.Records[i].MessageAttributes) == 0 {
			delete(rec, "md5OfMessageAttributes")
		}
	}
	return encode(t, out)
}

// httpAPIRequest round-trips an API Gateway HTTP API (payload 2.0) request.
// aws-lambda-go's request context always writes an "authentication" object (a struct
// field, which omitempty cannot omit); API Gateway sends one only with mutual TLS, so
// an all-empty one is dropped from the re-encoding where the sample has none.
func httpAPIRequest(t *testing.T, b []byte) []byte {
	var r events.APIGatewayV2HTTPRequest
	decodeStrict(t, b, &r)
	sample := decodeAny(t, b).(map[string]any)
	out := decodeAny(t, encode(t, r)).(map[string]any)
	sc, _ := sample["requestContext"].(map[string]any)
	oc, _ := out["requestContext"].(map[string]any)
	if _, sent := sc["authentication"]; !sent && r.RequestContext.Authentication == (events.APIGatewayV2HTTPRequestContextAuthentication{}) {
		delete(oc, "authentication")
	}
	return encode(t, out)
}

// TestSamplesRoundTrip decodes every sample under events/ into its Go type, strictly,
// re-encodes it and compares, as aws-lambda-go's own tests do: a field the type lacks
// or writes differently shows up here.
func TestSamplesRoundTrip(t *testing.T) {
	types := map[string]func(*testing.T, []byte) []byte{
		"approvals/approve-click.json":      httpAPIRequest,
		"approvals/reject-click.json":       httpAPIRequest,
		"approvals/promotion-approved.json": bridged[event.PromotionDecision],
		"approvals/promotion-rejected.json": bridged[event.PromotionDecision],
		"promoter/promotion-approved.json":  bridged[event.PromotionDecision],
		"scangate/ecr-scan-complete.json":   bridged[ecrevent.ScanDetail],
		"scangate/inspector2-scan.json":     bridged[ecrevent.ScanDetail],
		"scangate/verification-result.json": bridged[event.VerificationResult],
		"sweeper/schedule.json":             bridged[event.SweepRequest],
		"sweeper/schedule-dry-run.json":     plain[sweep.Trigger],
		"sweeper/sqs-batch.json":            sqsBatch,
		"tagguard/delete.json":              bridged[events.ECRImageActionEventDetailType],
		"tagguard/push-latest.json":         bridged[events.ECRImageActionEventDetailType],
		"tagguard/push-sha.json":            bridged[events.ECRImageActionEventDetailType],
	}
	var found []string
	err := filepath.WalkDir(samplesDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			rel, _ := filepath.Rel(samplesDir, path)
			found = append(found, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Fatalf("no samples under %s", samplesDir)
	}
	for _, name := range found {
		t.Run(name, func(t *testing.T) {
			roundTrip, ok := types[name]
			if !ok {
				t.Fatalf("no Go type declared for %s: add it to this table", name)
			}
			b, err := os.ReadFile(filepath.Join(samplesDir, name))
			if err != nil {
				t.Fatal(err)
			}
			jsonEq(t, b, roundTrip(t, b))
		})
	}
	for name := range types {
		if !slices.Contains(found, name) {
			t.Errorf("%s is declared here but is not under events/", name)
		}
	}
}

// TestSampleDetailTypes checks that each regflow sample names the detail-type its
// detail struct says it has, so the samples and the vocabulary cannot drift apart.
func TestSampleDetailTypes(t *testing.T) {
	for name, d := range map[string]event.Detail{
		"approvals/promotion-approved.json": &event.PromotionDecision{},
		"approvals/promotion-rejected.json": &event.PromotionDecision{},
		"promoter/promotion-approved.json":  &event.PromotionDecision{},
		"scangate/verification-result.json": &event.VerificationResult{},
		"sweeper/schedule.json":             &event.SweepRequest{},
	} {
		b, err := os.ReadFile(filepath.Join(samplesDir, name))
		if err != nil {
			t.Fatal(err)
		}
		env, err := event.Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := json.Unmarshal(env.Detail, d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if env.DetailType != d.DetailType() {
			t.Errorf("%s: detail-type %q, but its detail is a %q", name, env.DetailType, d.DetailType())
		}
	}
}
