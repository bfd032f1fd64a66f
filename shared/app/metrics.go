package app

import (
	"time"

	"github.com/regflow/regflow/shared/metrics"
	"github.com/regflow/regflow/shared/promoter"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/scangate"
)

// record turns one invocation's result into the metrics only the invocation knows (how
// long it took, what the gate decided); what regflow announces is counted by the
// publisher (metrics.Publisher).
func (a *App) record(fn string, took time.Duration, res any) {
	ms := float64(took) / float64(time.Millisecond)
	fnDims := map[string]string{metrics.DimFunction: fn}
	switch r := res.(type) {
	case promoter.Result:
		if r.Outcome == "promoted" {
			_ = a.metrics.Emit(fnDims, [][]string{{}}, metrics.Metric{Name: metrics.PromotionDuration, Unit: metrics.Milliseconds, Value: ms})
		}
	case scangate.Result:
		if r.Status == regflow.StatusBlocked && r.Next != "" {
			_ = a.metrics.Emit(map[string]string{metrics.DimEnvironment: r.Next}, [][]string{{}, {metrics.DimEnvironment}},
				metrics.Metric{Name: metrics.GateBlocks, Unit: metrics.Count, Value: 1})
		}
	default:
		if fn == route.Approvals {
			// Slack gives up after 3 s: this is the figure to watch.
			_ = a.metrics.Emit(fnDims, [][]string{{metrics.DimFunction}}, metrics.Metric{Name: metrics.ApprovalAnswer, Unit: metrics.Milliseconds, Value: ms})
		}
	}
}
