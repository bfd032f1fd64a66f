package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regflow/regflow/shared/store"
)

// ContinueSweepBatch is CompleteSweepBatch's UpdateItem with ADD total 1, on
// condition that the batch is not in the run yet and the total is set.
func (s *Store) ContinueSweepBatch(ctx context.Context, id, batch string, c store.SweepCounts) (store.SweepRun, bool, error) {
	batches, total := expression.Name("batches"), expression.Name("total")
	upd := expression.Add(batches, expression.Value(&types.AttributeValueMemberSS{Value: []string{batch}})).
		Add(total, expression.Value(1))
	for name, v := range counterValues(c) {
		upd = upd.Add(expression.Name(name), expression.Value(v))
	}
	run, failed, err := s.updateRun(ctx, id, upd, expression.Not(expression.Contains(batches, batch)).And(total.GreaterThan(expression.Value(0))))
	if err != nil {
		return store.SweepRun{}, false, fmt.Errorf("continue batch %s of sweep run %s: %w", batch, id, err)
	}
	if failed && run.Total == 0 {
		return run, false, fmt.Errorf("continue batch %s of sweep run %s: the run's batches are not counted yet (total 0)", batch, id)
	}
	return run, !failed, nil
}
