package approvals_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/slackmsg"
)

// BenchmarkAckLatency200 measures how long Slack waits for an answer when 200 people
// click Approve on one request at the same moment: signed requests over loopback HTTP
// to the handler wired to DynamoDB Local, the Slack stand-in (message update) and a
// response_url stand-in (each click's reply). "apigw" goes through the API Gateway v2
// event shape and the Lambda adapter, as the local stack serves it; "direct" skips
// them. Each iteration is a fresh request; the percentiles cover every click of every
// iteration. Slack's limit is 3 s; the goal is p99 ≤ 500 ms.
//
//	go test ./shared/approvals -run '^$' -bench AckLatency200 -benchtime 5x
func BenchmarkAckLatency200(b *testing.B) {
	dynamoLocal := func(b *testing.B) benchStore { st, _, _ := dynamoTable(b); return st }
	b.Run("dynamodb-local/apigw", func(b *testing.B) { benchAck(b, dynamoLocal(b), func(s *stack) string { return s.srv.URL }) })
	b.Run("dynamodb-local/direct", func(b *testing.B) { benchAck(b, dynamoLocal(b), func(s *stack) string { return s.direct.URL }) })
	// The local stack's default store: one bbolt file.
	b.Run("embedded/apigw", func(b *testing.B) { benchAck(b, embeddedStore(b), func(s *stack) string { return s.srv.URL }) })
}

type benchStore interface {
	approvals.Store
	requestStore
}

func benchAck(b *testing.B, st benchStore, base func(*stack) string) {
	all := users(clicks)
	s := newStack(b, cfg(b, config.Approvers{Users: all, Required: 1}), st, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clicks}, Timeout: 30 * time.Second}

	burst := func(iter int) []time.Duration {
		sum := sha256.Sum256([]byte(b.Name() + strconv.Itoa(iter)))
		r := seedDigest(b, st, s.sl, 1, time.Now().Add(time.Hour), "sha256:"+hex.EncodeToString(sum[:]))
		reqs := make([]*http.Request, clicks)
		for i := range reqs {
			reqs[i] = click(b, base(s), all[i], slackmsg.ActionApprove, r.ID, fmt.Sprintf("1700001000.%06d", i), s.hooks.URL+"/actions/T1/1/x")
		}
		took := make([]time.Duration, clicks)
		kinds := make([]approvals.Kind, clicks)
		var start, done sync.WaitGroup
		start.Add(1)
		for i := range reqs {
			done.Go(func() {
				start.Wait()
				a := send(b, client, reqs[i])
				took[i], kinds[i] = a.took, a.outcome
				if a.status != http.StatusOK {
					b.Errorf("click %d: HTTP %d %q", i, a.status, a.reply.Text)
				}
			})
		}
		start.Done()
		done.Wait()
		if n := slices.Index(kinds, approvals.KindApproved); n < 0 || slices.Index(kinds[n+1:], approvals.KindApproved) >= 0 {
			b.Fatalf("burst %d: want exactly one approval, got %v", iter, kinds)
		}
		return took
	}

	// Warm DynamoDB Local's JIT and the connection pools; not measured.
	burst(-1)
	var lat []time.Duration
	before := len(s.pub.decisions(b))
	b.ResetTimer()
	for i := range b.N {
		lat = append(lat, burst(i)...)
	}
	b.StopTimer()
	if got := len(s.pub.decisions(b)) - before; got != b.N {
		b.Fatalf("%d decision events for %d requests", got, b.N)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.90), "p90-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
}
