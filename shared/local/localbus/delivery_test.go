package localbus

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

func TestDeliveryAsAWSPromisesIt(t *testing.T) {
	ev := []byte(`{"source":"regflow","detail-type":"Image Promoted","detail":{}}`)
	for _, tc := range []struct {
		name      string
		d         Delivery
		failFirst int32 // the target fails this many calls
		wantCalls int32
		wantErr   bool
	}{
		{"once by default", Delivery{}, 0, 1, false},
		{"a failure is not retried by default", Delivery{}, 1, 1, true},
		{"retried until it succeeds", Delivery{Attempts: 3, Backoff: time.Millisecond}, 2, 3, false},
		{"given up after the last attempt", Delivery{Attempts: 3, Backoff: time.Millisecond}, 5, 3, true},
		{"duplicated", Delivery{Duplicate: 1}, 0, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBus(slog.New(slog.DiscardHandler), nil)
			b.SetDelivery(tc.d)
			var calls atomic.Int32
			b.mu.Lock()
			b.targets = append(b.targets, target{rule: Rule{Name: "r"}, function: true, h: func(context.Context, []byte) error {
				if calls.Add(1) <= tc.failFirst {
					return errors.New("throttled")
				}
				return nil
			}})
			b.mu.Unlock()
			err := b.Publish(context.Background(), ev)
			b.Wait()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got := calls.Load(); got != tc.wantCalls {
				t.Fatalf("%d calls, want %d", got, tc.wantCalls)
			}
		})
	}
}

// Events published together arrive in another order when deliveries are delayed at random.
func TestDeliveryReorders(t *testing.T) {
	b := NewBus(slog.New(slog.DiscardHandler), nil)
	b.SetDelivery(Delivery{MaxDelay: 20 * time.Millisecond, Seed: 7})
	got := make(chan string, 20)
	b.targets = append(b.targets, target{rule: Rule{Name: "r"}, function: true, h: func(_ context.Context, ev []byte) error { got <- string(ev); return nil }})
	var sent []string
	for i := range 20 {
		ev := `{"source":"regflow","detail-type":"x","id":"` + string(rune('a'+i)) + `","detail":{}}`
		sent = append(sent, ev)
		b.PublishAsync(context.Background(), []byte(ev))
	}
	b.Wait()
	close(got)
	same := true
	i := 0
	for ev := range got {
		if ev != sent[i] {
			same = false
		}
		i++
	}
	if i != 20 || same {
		t.Fatalf("%d events, in publication order: %v", i, same)
	}
}

// Observers (tests, the demo's narration) see each event once whatever the Delivery.
func TestObserversSeeEachEventOnce(t *testing.T) {
	b := NewBus(slog.New(slog.DiscardHandler), nil)
	b.SetDelivery(Delivery{Duplicate: 1, Attempts: 3})
	var calls atomic.Int32
	b.Subscribe(Rule{Name: "observer"}, func(context.Context, []byte) error { calls.Add(1); return errors.New("x") })
	_ = b.Publish(context.Background(), []byte(`{"source":"regflow","detail-type":"x","detail":{}}`))
	b.Wait()
	if calls.Load() != 1 {
		t.Fatalf("an observer was called %d times", calls.Load())
	}
}
