package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/metrics"
)

type bus struct {
	err  error
	sent []event.Message
}

func (b *bus) Publish(_ context.Context, m event.Message) error {
	if b.err != nil {
		return b.err
	}
	b.sent = append(b.sent, m)
	return nil
}

func TestPublisherCountsWhatIsAnnounced(t *testing.T) {
	for _, tc := range []struct {
		name   string
		detail event.Detail
		want   map[string]float64
		// sets are the dimension sets the document must declare.
		sets string
	}{
		{"promotion", event.ImagePromoted{Env: "prod", BytesMoved: 4096},
			map[string]float64{metrics.Promotions: 1, metrics.PromotionBytes: 4096}, `[[],["Environment"]]`},
		{"promotion failure", event.PromotionFailed{Env: "staging", Reason: "copy failed"},
			map[string]float64{metrics.PromotionFailures: 1}, `[[],["Environment"]]`},
		{"deployment failure", event.DeploymentFailed{Env: "prod", Reason: "UpdateService refused"},
			map[string]float64{metrics.DeploymentFailures: 1}, `[[],["Environment"]]`},
		{"tag violation", event.TagPolicyViolation{Tag: "latest"},
			map[string]float64{metrics.TagViolations: 1}, `[[]]`},
		{"partial real sweep", event.RetentionSweepCompleted{Removed: 7, Kept: 3, Refused: 1, FailedRepositories: 2, BytesReclaimedUpperBound: 900},
			map[string]float64{metrics.SweepDeleted: 7, metrics.SweepKept: 3, metrics.SweepRefused: 1, metrics.SweepBytes: 900, metrics.SweepPartialRuns: 1}, `[[],["Mode"]]`},
		// A dry run's figures stay under Mode=dry-run: the account-wide totals and the
		// partial-sweep alarm watch real runs only.
		{"dry run", event.RetentionSweepCompleted{DryRun: true, Removed: 0, Kept: 3},
			map[string]float64{metrics.SweepDeleted: 0, metrics.SweepKept: 3, metrics.SweepRefused: 0, metrics.SweepBytes: 0, metrics.SweepPartialRuns: 0}, `[["Mode"]]`},
		{"not a metric", event.ReleaseRolledBack{Env: "prod"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w, _ := metrics.New(&out, metrics.Namespace, nil)
			b := &bus{}
			p := metrics.Publisher{Next: b, Metrics: w}
			if err := p.Publish(context.Background(), event.Message{Detail: tc.detail}); err != nil {
				t.Fatal(err)
			}
			if len(b.sent) != 1 {
				t.Fatalf("the event was not passed on: %d sent", len(b.sent))
			}
			if tc.want == nil {
				if out.Len() != 0 {
					t.Fatalf("metrics for an event that carries none: %s", out.String())
				}
				return
			}
			got := validate(t, bytes.TrimSpace(out.Bytes()))
			if len(got) != len(tc.want) {
				t.Fatalf("metrics = %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("%s = %v, want %v (all: %v)", k, got[k], v, got)
				}
			}
			var doc struct {
				AWS struct {
					CloudWatchMetrics []struct{ Dimensions json.RawMessage } `json:"CloudWatchMetrics"`
				} `json:"_aws"`
			}
			_ = json.Unmarshal(out.Bytes(), &doc)
			if s := string(doc.AWS.CloudWatchMetrics[0].Dimensions); s != tc.sets {
				t.Fatalf("dimension sets %s, want %s", s, tc.sets)
			}
		})
	}
}

// An event that did not reach the bus was not announced: it counts nothing.
func TestFailedPublicationCountsNothing(t *testing.T) {
	var out bytes.Buffer
	w, _ := metrics.New(&out, metrics.Namespace, nil)
	p := metrics.Publisher{Next: &bus{err: errors.New("throttled")}, Metrics: w}
	if err := p.Publish(context.Background(), event.Message{Detail: event.PromotionFailed{Env: "prod"}}); err == nil {
		t.Fatal("the bus error was swallowed")
	}
	if out.Len() != 0 {
		t.Fatalf("counted an unpublished event: %s", out.String())
	}
}
