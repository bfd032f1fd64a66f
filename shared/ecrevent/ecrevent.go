// Package ecrevent decodes the EventBridge events that ECR and Inspector emit.
//
// It builds on aws-lambda-go's events types and adds what they lack: strict
// validation with operator-readable errors, both timestamp styles (RFC 3339 and
// epoch seconds), and the enhanced-scanning event whose repository-name is an ARN.
package ecrevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/regflow/regflow/shared/event"
)

// ErrMalformed is wrapped by every decoding error (event.ErrMalformed).
var ErrMalformed = event.ErrMalformed

// Envelope is the EventBridge envelope common to every event. It is not event.Envelope
// (aws-lambda-go's) because AWS's ECR and Inspector samples also carry epoch-second
// times, which time.Time does not decode.
type Envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       Time            `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// Time accepts RFC 3339 strings and epoch-seconds numbers.
type Time struct{ time.Time }

// UnmarshalJSON reads "2019-11-16T01:54:34Z" or 1573869274.123.
func (t *Time) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("time %q is not RFC 3339", s)
		}
		t.Time = v
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return fmt.Errorf("time %s is neither RFC 3339 nor epoch seconds", b)
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

// MarshalJSON writes RFC 3339, as EventBridge does.
func (t Time) MarshalJSON() ([]byte, error) { return json.Marshal(t.UTC().Format(time.RFC3339Nano)) }

// ImageAction is an "ECR Image Action" event (PUSH, DELETE, storage class changes).
type ImageAction struct {
	Envelope
	Detail events.ECRImageActionEventDetailType
}

// ImageScan is a scan result: basic ("ECR Image Scan") or enhanced ("Inspector2 Scan").
type ImageScan struct {
	Envelope
	Enhanced   bool
	Status     string
	Repository string
	Digest     string
	Tags       []string
	// Counts holds finding counts by severity; absent severities are zero. Inspector's TOTAL is dropped.
	Counts map[string]int
	// Reported lists the severities the event counts, present even when zero ("Inspector2
	// Scan" counts only CRITICAL, HIGH and MEDIUM; "ECR Image Scan" leaves zeros out).
	Reported []string
	// Total is Inspector's TOTAL, or -1 when the event has none.
	Total int
}

// Decode parses any event regflow may receive and returns *ImageAction, *ImageScan, or
// the bare *Envelope for detail types regflow does not act on.
func Decode(b []byte) (any, error) {
	env, err := DecodeEnvelope(b)
	if err != nil {
		return nil, err
	}
	switch {
	case env.Source == event.SourceECR && env.DetailType == event.TypeImageAction:
		return decodeAction(env)
	case env.Source == event.SourceECR && env.DetailType == event.TypeImageScan,
		env.Source == event.SourceInspector && env.DetailType == event.TypeInspectorScan:
		return decodeScan(env)
	}
	return env, nil
}

// DecodeEnvelope parses and checks the EventBridge envelope.
func DecodeEnvelope(b []byte) (*Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%w: not a JSON EventBridge event: %w", ErrMalformed, err)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"id", env.ID}, {"detail-type", env.DetailType}, {"source", env.Source}, {"account", env.Account}, {"region", env.Region}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if env.Time.IsZero() {
		missing = append(missing, "time")
	}
	if len(bytes.TrimSpace(env.Detail)) == 0 || bytes.Equal(bytes.TrimSpace(env.Detail), []byte("null")) {
		missing = append(missing, "detail")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: EventBridge envelope lacks %s", ErrMalformed, strings.Join(missing, ", "))
	}
	return &env, nil
}

// DecodeImageAction parses an event that must be an "ECR Image Action".
func DecodeImageAction(b []byte) (*ImageAction, error) {
	env, err := DecodeEnvelope(b)
	if err != nil {
		return nil, err
	}
	if env.Source != event.SourceECR || env.DetailType != event.TypeImageAction {
		return nil, fmt.Errorf("%w: expected source %s detail-type %q, got %s %q", ErrMalformed, event.SourceECR, event.TypeImageAction, env.Source, env.DetailType)
	}
	return decodeAction(env)
}

// DecodeImageScan parses an event that must be an "ECR Image Scan" or "Inspector2 Scan".
func DecodeImageScan(b []byte) (*ImageScan, error) {
	env, err := DecodeEnvelope(b)
	if err != nil {
		return nil, err
	}
	ok := (env.Source == event.SourceECR && env.DetailType == event.TypeImageScan) || (env.Source == event.SourceInspector && env.DetailType == event.TypeInspectorScan)
	if !ok {
		return nil, fmt.Errorf("%w: expected %q or %q, got %s %q", ErrMalformed, event.TypeImageScan, event.TypeInspectorScan, env.Source, env.DetailType)
	}
	return decodeScan(env)
}

func decodeAction(env *Envelope) (*ImageAction, error) {
	var d events.ECRImageActionEventDetailType
	if err := strictDetail(env.Detail, &d); err != nil {
		return nil, fmt.Errorf("%w: %s detail: %w", ErrMalformed, env.DetailType, err)
	}
	if d.ActionType == "" || d.Result == "" || d.RepositoryName == "" || d.ImageDigest == "" {
		return nil, fmt.Errorf("%w: %s detail needs action-type, result, repository-name and image-digest", ErrMalformed, env.DetailType)
	}
	if !validDigest(d.ImageDigest) {
		return nil, fmt.Errorf("%w: image-digest %q is not <algorithm>:<hex>", ErrMalformed, d.ImageDigest)
	}
	return &ImageAction{Envelope: *env, Detail: d}, nil
}

// ScanDetail is the detail of "ECR Image Scan" and "Inspector2 Scan". aws-lambda-go's
// ECRScanEventDetailType does not fit: its fixed severity fields write zeros for the
// severities ECR leaves out, and it has no TOTAL, which Inspector sends.
type ScanDetail struct {
	ScanStatus     string         `json:"scan-status"`
	RepositoryName string         `json:"repository-name"`
	ImageDigest    string         `json:"image-digest"`
	ImageTags      []string       `json:"image-tags"`
	Counts         map[string]int `json:"finding-severity-counts"`
}

func decodeScan(env *Envelope) (*ImageScan, error) {
	var d ScanDetail
	if err := strictDetail(env.Detail, &d); err != nil {
		return nil, fmt.Errorf("%w: %s detail: %w", ErrMalformed, env.DetailType, err)
	}
	if d.ScanStatus == "" || d.RepositoryName == "" || d.ImageDigest == "" {
		return nil, fmt.Errorf("%w: %s detail needs scan-status, repository-name and image-digest", ErrMalformed, env.DetailType)
	}
	if !validDigest(d.ImageDigest) {
		return nil, fmt.Errorf("%w: image-digest %q is not <algorithm>:<hex>", ErrMalformed, d.ImageDigest)
	}
	repo := d.RepositoryName
	if strings.HasPrefix(repo, "arn:") {
		// Inspector names the repository by ARN: arn:aws:ecr:<region>:<account>:repository/<name>.
		_, name, ok := strings.Cut(repo, ":repository/")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: repository-name ARN %q has no repository/<name> part", ErrMalformed, repo)
		}
		repo = name
	}
	counts, total := map[string]int{}, -1
	var reported []string
	for sev, n := range d.Counts {
		if n < 0 {
			return nil, fmt.Errorf("%w: finding-severity-counts.%s is negative", ErrMalformed, sev)
		}
		if sev == "TOTAL" {
			total = n
			continue
		}
		reported = append(reported, sev)
		if n > 0 {
			counts[sev] = n
		}
	}
	slices.Sort(reported)
	return &ImageScan{
		Envelope:   *env,
		Enhanced:   env.Source == event.SourceInspector,
		Status:     d.ScanStatus,
		Repository: repo,
		Digest:     d.ImageDigest,
		Tags:       d.ImageTags,
		Counts:     counts,
		Reported:   reported,
		Total:      total,
	}, nil
}

// strictDetail decodes detail and insists it is an object.
func strictDetail(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return errors.New("detail is not a JSON object")
	}
	return json.Unmarshal(raw, v)
}

// validDigest accepts <algorithm>:<encoded> as OCI defines it, loosely: published samples carry
// placeholder digests, and the registry is the authority on the exact form.
func validDigest(d string) bool {
	alg, enc, ok := strings.Cut(d, ":")
	if !ok || alg == "" || enc == "" || len(d) > 255 {
		return false
	}
	for _, r := range alg {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	for _, r := range enc {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '=' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// PutImageCall is CloudTrail's record of an ecr:PutImage call (every manifest push, through
// the ECR API or the registry), from an "AWS API Call via CloudTrail" event: who pushed what.
type PutImageCall struct {
	Envelope
	// Principal is userIdentity.arn: the verified identity that made the call.
	Principal  string
	Repository string
	Digest     string
	Tag        string
}

// ErrNotPutImage is returned for CloudTrail records of other calls, which regflow ignores.
var ErrNotPutImage = errors.New("not a successful ecr:PutImage call")

// DecodePutImageCall parses an "AWS API Call via CloudTrail" event of ECR. Other calls, and
// failed ones (no image in the response), give ErrNotPutImage.
func DecodePutImageCall(b []byte) (*PutImageCall, error) {
	env, err := DecodeEnvelope(b)
	if err != nil {
		return nil, err
	}
	if env.Source != event.SourceECR || env.DetailType != event.TypeAPICall {
		return nil, fmt.Errorf("%w: expected source %s detail-type %q, got %s %q", ErrMalformed, event.SourceECR, event.TypeAPICall, env.Source, env.DetailType)
	}
	var d struct {
		EventSource  string `json:"eventSource"`
		EventName    string `json:"eventName"`
		ErrorCode    string `json:"errorCode"`
		UserIdentity struct {
			ARN string `json:"arn"`
		} `json:"userIdentity"`
		ResponseElements *struct {
			Image struct {
				RepositoryName string `json:"repositoryName"`
				ImageID        struct {
					ImageDigest string `json:"imageDigest"`
					ImageTag    string `json:"imageTag"`
				} `json:"imageId"`
			} `json:"image"`
		} `json:"responseElements"`
	}
	if err := strictDetail(env.Detail, &d); err != nil {
		return nil, fmt.Errorf("%w: %s detail: %w", ErrMalformed, env.DetailType, err)
	}
	if d.EventSource != "ecr.amazonaws.com" || d.EventName != "PutImage" || d.ErrorCode != "" || d.ResponseElements == nil {
		return nil, fmt.Errorf("%w: %s %s", ErrNotPutImage, d.EventSource, d.EventName)
	}
	img := d.ResponseElements.Image
	if d.UserIdentity.ARN == "" || img.RepositoryName == "" || !validDigest(img.ImageID.ImageDigest) {
		return nil, fmt.Errorf("%w: PutImage record needs userIdentity.arn, and an image with repositoryName and imageDigest", ErrMalformed)
	}
	return &PutImageCall{Envelope: *env, Principal: d.UserIdentity.ARN, Repository: img.RepositoryName, Digest: img.ImageID.ImageDigest, Tag: img.ImageID.ImageTag}, nil
}
