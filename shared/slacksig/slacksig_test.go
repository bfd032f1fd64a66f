package slacksig_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/slacksig"
)

// example is Slack's documented signing example (api.slack.com, verifying requests).
type example struct {
	Secret    string `json:"signing_secret"`
	Timestamp string `json:"timestamp"`
	Body      string `json:"body"`
	Expected  string `json:"expected_signature"`
}

func loadExample(t *testing.T) example {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RealTestdata(t), "slack-signing-secret-example.api-slack-com.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ex example
	if err := json.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	return ex
}

func constSecret(s string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) { return []byte(s), nil }
}

func TestDocumentedExample(t *testing.T) {
	ex := loadExample(t)
	if got := slacksig.Signature([]byte(ex.Secret), ex.Timestamp, []byte(ex.Body)); got != ex.Expected {
		t.Fatalf("Signature = %s, Slack documents %s", got, ex.Expected)
	}
	sec, err := strconv.ParseInt(ex.Timestamp, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(sec, 0)
	h := http.Header{}
	h.Set(slacksig.HeaderSignature, ex.Expected)
	h.Set(slacksig.HeaderTimestamp, ex.Timestamp)

	tests := []struct {
		name string
		now  time.Time
		want error
	}{
		{"at its timestamp", at, nil},
		{"4m59s later", at.Add(4*time.Minute + 59*time.Second), nil},
		{"4m59s earlier", at.Add(-4*time.Minute - 59*time.Second), nil},
		{"5m01s later", at.Add(5*time.Minute + time.Second), slacksig.ErrStale},
		{"5m01s earlier (future timestamp)", at.Add(-5*time.Minute - time.Second), slacksig.ErrStale},
		{"today's clock", time.Now(), slacksig.ErrStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := slacksig.Verifier{Secret: constSecret(ex.Secret), Now: func() time.Time { return tt.now }}
			err := v.Verify(context.Background(), h, []byte(ex.Body))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil && !slacksig.Refused(err) {
				t.Fatalf("%v is not reported as a refusal", err)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	ex := loadExample(t)
	sec, _ := strconv.ParseInt(ex.Timestamp, 10, 64)
	now := func() time.Time { return time.Unix(sec, 0) }
	flipped := []byte(ex.Body)
	flipped[len(flipped)-1] ^= 1
	otherSig := slacksig.Signature([]byte("another secret"), ex.Timestamp, []byte(ex.Body))
	tests := []struct {
		name    string
		headers map[string][]string
		body    []byte
		want    error
	}{
		{"no headers", nil, []byte(ex.Body), slacksig.ErrMissingHeaders},
		{"no signature", map[string][]string{slacksig.HeaderTimestamp: {ex.Timestamp}}, []byte(ex.Body), slacksig.ErrMissingHeaders},
		{"no timestamp", map[string][]string{slacksig.HeaderSignature: {ex.Expected}}, []byte(ex.Body), slacksig.ErrMissingHeaders},
		{"empty signature", map[string][]string{slacksig.HeaderSignature: {""}, slacksig.HeaderTimestamp: {ex.Timestamp}}, []byte(ex.Body), slacksig.ErrMissingHeaders},
		{"repeated signature", map[string][]string{slacksig.HeaderSignature: {ex.Expected, ex.Expected}, slacksig.HeaderTimestamp: {ex.Timestamp}}, []byte(ex.Body), slacksig.ErrMalformed},
		{"v1 scheme", map[string][]string{slacksig.HeaderSignature: {"v1=" + ex.Expected[3:]}, slacksig.HeaderTimestamp: {ex.Timestamp}}, []byte(ex.Body), slacksig.ErrMalformed},
		{"short signature", map[string][]string{slacksig.HeaderSignature: {ex.Expected[:20]}, slacksig.HeaderTimestamp: {ex.Timestamp}}, []byte(ex.Body), slacksig.ErrMalformed},
		{"non-hex signature", map[string][]string{slacksig.HeaderSignature: {"v0=" + string(make([]byte, 64))}, slacksig.HeaderTimestamp: {ex.Timestamp}}, []byte(ex.Body), slacksig.ErrMalformed},
		{"uppercase hex still matches", map[string][]string{slacksig.HeaderSignature: {"v0=A2114D57B48EAC39B9AD189DD8316235A7B4A8D21A10BD27519666489C69B503"}, slacksig.HeaderTimestamp: {ex.Timestamp}}, []byte(ex.Body), nil},
		{"timestamp with fraction", map[string][]string{slacksig.HeaderSignature: {ex.Expected}, slacksig.HeaderTimestamp: {ex.Timestamp + ".5"}}, []byte(ex.Body), slacksig.ErrMalformed},
		{"negative timestamp", map[string][]string{slacksig.HeaderSignature: {ex.Expected}, slacksig.HeaderTimestamp: {"-" + ex.Timestamp}}, []byte(ex.Body), slacksig.ErrMalformed},
		{"huge timestamp", map[string][]string{slacksig.HeaderSignature: {ex.Expected}, slacksig.HeaderTimestamp: {"99999999999999999999"}}, []byte(ex.Body), slacksig.ErrMalformed},
		{"body changed by one bit", map[string][]string{slacksig.HeaderSignature: {ex.Expected}, slacksig.HeaderTimestamp: {ex.Timestamp}}, flipped, slacksig.ErrMismatch},
		{"signed with another secret", map[string][]string{slacksig.HeaderSignature: {otherSig}, slacksig.HeaderTimestamp: {ex.Timestamp}}, []byte(ex.Body), slacksig.ErrMismatch},
		{"timestamp changed, signature kept", map[string][]string{slacksig.HeaderSignature: {ex.Expected}, slacksig.HeaderTimestamp: {strconv.FormatInt(sec+1, 10)}}, []byte(ex.Body), slacksig.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secretCalls := 0
			v := slacksig.Verifier{Now: now, Secret: func(context.Context) ([]byte, error) {
				secretCalls++
				return []byte(ex.Secret), nil
			}}
			err := v.Verify(context.Background(), http.Header(canonical(tt.headers)), tt.body)
			if (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil && !slacksig.Refused(err) {
				t.Fatalf("%v is not a refusal", err)
			}
			if (errors.Is(tt.want, slacksig.ErrMissingHeaders) || errors.Is(tt.want, slacksig.ErrMalformed)) && secretCalls != 0 {
				t.Fatalf("the secret was fetched %d times for a request with bad headers", secretCalls)
			}
		})
	}
}

func canonical(m map[string][]string) http.Header {
	h := http.Header{}
	for k, vs := range m {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	return h
}

func TestSecretFailureIsNotARefusal(t *testing.T) {
	body := []byte("payload=x")
	h := http.Header{}
	slacksig.Sign(h, []byte("s"), time.Now(), body)
	boom := errors.New("secrets manager unreachable")
	v := slacksig.Verifier{Secret: func(context.Context) ([]byte, error) { return nil, boom }}
	err := v.Verify(context.Background(), h, body)
	if !errors.Is(err, boom) || slacksig.Refused(err) {
		t.Fatalf("Verify = %v: want the secret error, not a refusal", err)
	}
}

func TestSignRoundTrip(t *testing.T) {
	body := []byte("payload=%7B%7D")
	h := http.Header{}
	now := time.Now()
	slacksig.Sign(h, []byte("k"), now, body)
	v := slacksig.Verifier{Secret: constSecret("k"), Now: func() time.Time { return now }}
	if err := v.Verify(context.Background(), h, body); err != nil {
		t.Fatal(err)
	}
}
