package approvals

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/regflow/regflow/shared/redact"
)

// LambdaFunc is an API Gateway HTTP API (payload 2.0) Lambda handler.
type LambdaFunc func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Lambda adapts an http.Handler to API Gateway HTTP API events; base64 bodies are
// decoded to the raw bytes Slack signed. The function passes it to lambda.Start.
func Lambda(h http.Handler) LambdaFunc {
	return httpadapter.NewV2(h).ProxyWithContext
}

// The Slack endpoint's stage limits, deployed by infra on the HTTP API stage and
// applied by ThroughAPIGateway locally, so a flood on a laptop meets the same limit.
//
// Why limits and a cheap refusal, not a per-source rule: WAF does not attach to HTTP
// APIs. A rate-based rule per IP would take a REST API (another event shape and
// adapter, a dearer request) or CloudFront with a web ACL in us-east-1 (a second stack
// in another region, and the execute-api URL left to close). The stage limit is shared
// by everyone, so what starves clicks is a limit a single source can use up: at 10
// requests/s it took 11 junk requests a second. A limit well above what one source
// plausibly sends, with a refusal that costs the function microseconds (headers checked
// before the body is read, no store or Slack call, refusal logs sampled), lets clicks
// through a flood of 500 requests/s from one source (bench/approvals measures it). A
// flood above StageRateLimit still throttles clicks; the access logs and the
// approvals Throttles alarm show it, and that is when a CloudFront front is worth it.
const (
	StageRateLimit  = 1000 // requests per second, steady: twice the flood bench/approvals sends
	StageBurstLimit = 1000 // requests at once (the bucket), room for 200 simultaneous clicks on top of it
)

// ThroughAPIGateway serves HTTP the way API Gateway reaches the function: it turns
// each request into the payload 2.0 event (lower-case headers, base64 body) and runs
// fn on it, after the stage's throttle (StageRateLimit, StageBurstLimit: 429 as API
// Gateway answers). The local stack serves the approvals function this way, so a
// click on a laptop takes the same path as in AWS.
func ThroughAPIGateway(fn LambdaFunc, maxBody int64) http.Handler {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	stage := newBucket(StageRateLimit, StageBurstLimit)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !stage.take(time.Now()) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"message":"Too Many Requests"}`)
			return
		}
		// API Gateway itself caps payloads (10 MB); read a little past our own cap so the
		// function still sees, and refuses, an oversized body.
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		now := time.Now()
		ev := events.APIGatewayV2HTTPRequest{
			Version: "2.0", RouteKey: r.Method + " " + r.URL.Path, RawPath: r.URL.Path, RawQueryString: r.URL.RawQuery,
			Headers: map[string]string{},
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				RouteKey: r.Method + " " + r.URL.Path, Stage: "$default", RequestID: fmt.Sprintf("local-%d", now.UnixNano()),
				DomainName: r.Host, TimeEpoch: now.UnixMilli(), Time: now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: host(r.RemoteAddr), UserAgent: r.UserAgent()},
			},
			Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true,
		}
		for k, vs := range r.Header {
			if strings.EqualFold(k, "Cookie") {
				ev.Cookies = append(ev.Cookies, vs...)
				continue
			}
			ev.Headers[strings.ToLower(k)] = strings.Join(vs, ",")
		}
		resp, err := fn(r.Context(), ev)
		if err != nil {
			http.Error(w, "function error: "+redact.String(err.Error()), http.StatusBadGateway)
			return
		}
		out := []byte(resp.Body)
		if resp.IsBase64Encoded {
			if out, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
				http.Error(w, "function answered invalid base64", http.StatusBadGateway)
				return
			}
		}
		for k, v := range resp.Headers {
			w.Header().Set(k, v)
		}
		for k, vs := range resp.MultiValueHeaders {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		for _, c := range resp.Cookies {
			w.Header().Add("Set-Cookie", c)
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(out)
	})
}

// bucket is a token bucket, API Gateway's throttling model: size tokens, refilled at
// rate per second, one per request.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	size   float64
	tokens float64
	at     time.Time
}

func newBucket(rate, size float64) *bucket { return &bucket{rate: rate, size: size, tokens: size} }

func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.at.IsZero() {
		b.tokens = min(b.size, b.tokens+now.Sub(b.at).Seconds()*b.rate)
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func host(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}
