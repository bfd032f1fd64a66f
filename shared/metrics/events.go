package metrics

import (
	"context"

	"github.com/regflow/regflow/shared/event"
)

// Namespace is regflow's CloudWatch namespace; infra's dashboard and alarms read it.
const Namespace = "regflow"

// Metric and dimension names, shared with infra's dashboard and alarms.
const (
	DimFunction    = "Function"
	DimEnvironment = "Environment"
	DimMode        = "Mode" // "real" or "dry-run" sweeps

	Promotions         = "Promotions"
	PromotionDuration  = "PromotionDuration"
	PromotionBytes     = "PromotionBytesMoved"
	PromotionFailures  = "PromotionFailures"
	DeploymentFailures = "DeploymentFailures"
	ApprovalAnswer     = "ApprovalAnswerLatency"
	TagViolations      = "TagPolicyViolations"
	GateBlocks         = "GateBlocks"
	SweepDeleted       = "SweepImagesDeleted"
	SweepKept          = "SweepImagesKept"
	SweepRefused       = "SweepImagesRefused"
	SweepBytes         = "SweepBytesReclaimed"
	SweepPartialRuns   = "SweepPartialRuns"
)

// Publisher counts what regflow announces as it puts it on the bus, so the metrics say
// exactly what the events say. Like EMF itself, a redelivered invocation that publishes
// again counts again (at least once).
type Publisher struct {
	Next    event.Publisher
	Metrics *Writer
}

// Publish publishes m, then records its metrics.
func (p Publisher) Publish(ctx context.Context, m event.Message) error {
	if err := p.Next.Publish(ctx, m); err != nil {
		return err
	}
	// A metric that cannot be written must not fail the publication it describes.
	_ = p.Metrics.Event(m.Detail)
	return nil
}

// Event records the metrics one event carries (none for most).
func (w *Writer) Event(d event.Detail) error {
	perEnv := [][]string{{}, {DimEnvironment}}
	switch d := d.(type) {
	case event.ImagePromoted:
		return w.Emit(map[string]string{DimEnvironment: d.Env}, perEnv,
			Metric{Name: Promotions, Unit: Count, Value: 1},
			Metric{Name: PromotionBytes, Unit: Bytes, Value: float64(d.BytesMoved)})
	case event.PromotionFailed:
		return w.Emit(map[string]string{DimEnvironment: d.Env}, perEnv,
			Metric{Name: PromotionFailures, Unit: Count, Value: 1})
	case event.DeploymentFailed:
		return w.Emit(map[string]string{DimEnvironment: d.Env}, perEnv,
			Metric{Name: DeploymentFailures, Unit: Count, Value: 1})
	case event.TagPolicyViolation:
		return w.Emit(nil, [][]string{{}}, Metric{Name: TagViolations, Unit: Count, Value: 1})
	case event.RetentionSweepCompleted:
		mode, sets := "real", [][]string{{}, {DimMode}}
		if d.DryRun {
			// A dry run deletes nothing: its figures must not move the account-wide totals.
			mode, sets = "dry-run", [][]string{{DimMode}}
		}
		partial := 0.0
		if d.FailedRepositories > 0 {
			partial = 1
		}
		return w.Emit(map[string]string{DimMode: mode}, sets,
			Metric{Name: SweepDeleted, Unit: Count, Value: float64(d.Removed)},
			Metric{Name: SweepKept, Unit: Count, Value: float64(d.Kept)},
			Metric{Name: SweepRefused, Unit: Count, Value: float64(d.Refused)},
			Metric{Name: SweepBytes, Unit: Bytes, Value: float64(d.BytesReclaimedUpperBound)},
			Metric{Name: SweepPartialRuns, Unit: Count, Value: partial})
	}
	return nil
}
