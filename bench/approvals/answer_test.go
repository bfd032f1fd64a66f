package approvals_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/event"
)

// slackLatency is how long each call to Slack's API and to response_url takes here.
const slackLatency = 2 * time.Second

// testBudget is the p99 the tests hold: under a second, which an answer that waited for
// Slack cannot meet (before, each waited up to 1 s for the reply and 1.5 s for the
// message). The 500 ms goal is the benchmarks' to show (make bench-approvals): the tests
// also run beside every other package in make test, on whatever the machine is doing.
const testBudget = time.Second

// TestAnswerFirst: with Slack taking 2 s per call, 200 concurrent signed clicks are all
// answered without waiting for it (p99 within testBudget), and afterwards the follow-ups have done their work
// exactly once: one decision, one event, the message rewritten once, one reply each.
func TestAnswerFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("200 concurrent clicks and 2-second Slack calls")
	}
	h := newHarness(t, slackLatency)
	client := newClient()
	h.burst(t, client) // warm the connection pools; not checked
	h.app.FollowUpsDone()
	before := h.pub.get(event.TypePromotionApproved)
	r, rs := h.burst(t, client)
	checkAnswers(t, rs)
	p50, p99 := percentile(latencies(rs), 0.5), percentile(latencies(rs), 0.99)
	t.Logf("clicks p50 %v p99 %v", p50, p99)
	if p99 > testBudget {
		t.Errorf("p99 answer %v with Slack taking %v per call; want ≤ %v", p99, slackLatency, testBudget)
	}
	h.app.FollowUpsDone()
	if got := h.pub.get(event.TypePromotionApproved) - before; got != 1 {
		t.Errorf("%d Promotion Approved events, want 1", got)
	}
	for _, m := range h.slack.Messages() {
		if m.TS == r.SlackTS && m.Updates != 1 {
			t.Errorf("approval message updated %d times, want 1", m.Updates)
		}
	}
	trail, err := h.store.Audit(context.Background(), r.Ref())
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range trail {
		n[e.Action]++
	}
	if n[event.ActionApprovalApproved] != 1 || n[event.ActionApprovalRefused] != clicks-1 {
		t.Errorf("audit %v: want one approval and %d refusals, each once", n, clicks-1)
	}
	if got := h.hooks.count(); got != 2*clicks {
		t.Errorf("%d replies through response_url over two bursts, want %d", got, 2*clicks)
	}
	if t.Failed() {
		t.Log(h.logs.String())
	}
}

// checkAnswers: every click answered 200, exactly one of them the approval.
func checkAnswers(t testing.TB, rs []result) {
	t.Helper()
	approved := 0
	for i, r := range rs {
		if r.status != http.StatusOK {
			t.Errorf("click %d: HTTP %d", i, r.status)
		}
		if r.outcome == approvals.KindApproved {
			approved++
		}
	}
	if approved != 1 {
		t.Errorf("%d clicks approved, want exactly 1", approved)
	}
}

// BenchmarkAnswerSlowSlack reports the answer latency of 200 concurrent signed clicks
// while Slack's API and response_url take 2 s per call.
//
//	go test ./bench/approvals -run '^$' -bench AnswerSlowSlack -benchtime 3x
func BenchmarkAnswerSlowSlack(b *testing.B) {
	h := newHarness(b, slackLatency)
	client := newClient()
	h.burst(b, client)
	h.app.FollowUpsDone()
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		_, rs := h.burst(b, client)
		checkAnswers(b, rs)
		lat = append(lat, latencies(rs)...)
		// Each burst is its own rush on its own request: the last one's follow-ups (replies
		// taking 2 s) finish before the next, outside the measured answers.
		b.StopTimer()
		h.app.FollowUpsDone()
		b.StartTimer()
	}
	b.StopTimer()
	h.app.FollowUpsDone()
	report(b, lat)
}

func report(b *testing.B, lat []time.Duration) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
	b.ReportMetric(ms(percentile(lat, 1)), "max-ms")
	b.ReportMetric(0, "ns/op")
}
