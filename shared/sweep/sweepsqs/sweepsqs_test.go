package sweepsqs_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/store"
	"github.com/regflow/regflow/shared/sweep"
	"github.com/regflow/regflow/shared/sweep/sweepsqs"
)

// TestHandlerLeavesRecordsItHasNoTimeFor: with less than MinTimeLeft before the
// Lambda deadline the handler starts no batch and hands every record back to SQS
// (a batch item failure each), where the last delivery would otherwise record the
// batch as failed.
func TestHandlerLeavesRecordsItHasNoTimeFor(t *testing.T) {
	ctx := context.Background()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	if _, err := st.CreateSweepRun(ctx, store.SweepRun{ID: "r", Now: now, StartedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetSweepTotal(ctx, "r", 2); err != nil {
		t.Fatal(err)
	}
	w := &sweep.Worker{
		Sweeper:    &sweep.Sweeper{},
		Registries: func(context.Context, sweep.Target) (sweep.Registry, error) { return nil, errors.New("unreachable") },
		Protection: st, Store: st, Finisher: &sweep.Finisher{Store: st, Now: time.Now}, Now: time.Now,
	}
	var recs []events.SQSMessage
	for _, b := range []string{"a", "b"} {
		body, _ := json.Marshal(sweep.Message{Run: sweep.Run{ID: "r", Now: now}, Batch: b, Target: sweep.Target{Name: "dev", Account: "111111111111", Region: "us-east-1"}, Repositories: []string{"x"}})
		recs = append(recs, events.SQSMessage{MessageId: "m-" + b, Body: string(body), Attributes: map[string]string{"ApproximateReceiveCount": "3"}})
	}
	short, cancel := context.WithTimeout(ctx, sweepsqs.MinTimeLeft/2)
	defer cancel()
	resp, err := sweepsqs.Handler(w)(short, events.SQSEvent{Records: recs})
	if err != nil || len(resp.BatchItemFailures) != 2 {
		t.Fatalf("response %+v, %v: want both records handed back", resp, err)
	}
	if sr, _ := st.GetSweepRun(ctx, "r"); sr.Done() != 0 {
		t.Fatalf("batches %v recorded with no time to sweep them", sr.Batches)
	}
}
