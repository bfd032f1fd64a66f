package approvals_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/approvals"
	"github.com/regflow/regflow/shared/slacksig"
)

// floodRate is the unsigned requests per second one source sends beside the clicks.
const floodRate = 500

// flood sends floodRate unsigned requests per second from one client until stopped:
// every other one without Slack's headers, the rest with a fresh timestamp and a
// forged signature (the dearer refusal: it reaches the HMAC). It returns how many it
// sent and the answers by HTTP status.
type flood struct {
	sent   atomic.Int64
	mu     sync.Mutex
	status map[int]int
	stop   context.CancelFunc
	done   sync.WaitGroup
}

func startFlood(t testing.TB, url string) *flood {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &flood{status: map[int]int{}, stop: cancel}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	body := []byte("payload=%7B%22type%22%3A%22block_actions%22%7D")
	f.done.Go(func() {
		// Paced by the clock, not by ticks (a busy machine drops ticks): each round sends
		// what the rate says is due by now.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var inflight sync.WaitGroup
		defer inflight.Wait()
		begin := time.Now()
		for i := 0; ctx.Err() == nil; i++ {
			if int64(time.Since(begin).Seconds()*floodRate) <= f.sent.Load() {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				continue
			}
			f.sent.Add(1)
			inflight.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, url+approvals.Path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if i%2 == 1 {
					slacksig.Sign(req.Header, []byte("not-the-secret"), time.Now(), body)
				}
				resp, err := client.Do(req)
				code := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				f.mu.Lock()
				f.status[code]++
				f.mu.Unlock()
			})
		}
	})
	return f
}

func (f *flood) end() map[int]int {
	f.stop()
	f.done.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

// TestClicksSurviveAFlood: while one source sends 500 unsigned requests per second, 200
// concurrent signed clicks are all answered, p99 within testBudget, exactly one approving;
// the flood itself is refused as unsigned (401), not throttled (429) into the clicks.
func TestClicksSurviveAFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood of 500 requests/s beside 200 concurrent clicks")
	}
	h := newHarness(t, slackLatency)
	client := newClient()
	h.burst(t, client)
	h.app.FollowUpsDone()

	f := startFlood(t, h.endpoint.URL)
	time.Sleep(time.Second) // the flood at full rate before the clicks come
	start := time.Now()
	_, rs := h.burst(t, client)
	time.Sleep(500 * time.Millisecond)
	status := f.end()
	elapsed := time.Since(start) + time.Second
	checkAnswers(t, rs)
	p50, p99 := percentile(latencies(rs), 0.5), percentile(latencies(rs), 0.99)
	t.Logf("flood: %d requests in %v (%.0f/s): %v; clicks p50 %v p99 %v", f.sent.Load(), elapsed.Round(time.Millisecond),
		float64(f.sent.Load())/elapsed.Seconds(), status, p50, p99)
	if p99 > testBudget {
		t.Errorf("p99 answer %v under a flood of %d unsigned requests/s; want ≤ %v", p99, floodRate, testBudget)
	}
	if status[http.StatusTooManyRequests] > 0 {
		t.Errorf("%d flood requests were throttled (429): the flood is eating the stage's limit the clicks share", status[http.StatusTooManyRequests])
	}
	if status[http.StatusUnauthorized] == 0 {
		t.Errorf("no flood request was refused as unsigned: %v", status)
	}
	h.app.FollowUpsDone()
	// Refusals are logged sampled (5 a second), not one line per junk request.
	logged := strings.Count(h.logs.String(), `"msg":"Slack request refused"`)
	if limit := 5 * (int(time.Since(start).Seconds()) + 3); logged > limit {
		t.Errorf("%d refusal log lines for %d junk requests; want at most %d (sampled)", logged, f.sent.Load(), limit)
	}
}

// BenchmarkAnswerUnderFlood reports the answer latency of 200 concurrent signed clicks
// (Slack taking 2 s per call) while one source sends 500 unsigned requests per second.
//
//	go test ./bench/approvals -run '^$' -bench AnswerUnderFlood -benchtime 3x
func BenchmarkAnswerUnderFlood(b *testing.B) {
	h := newHarness(b, slackLatency)
	client := newClient()
	h.burst(b, client)
	h.app.FollowUpsDone()
	f := startFlood(b, h.endpoint.URL)
	time.Sleep(time.Second)
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
	status := f.end()
	h.app.FollowUpsDone()
	b.ReportMetric(float64(status[http.StatusTooManyRequests]), "flood-429s")
	report(b, lat)
}
