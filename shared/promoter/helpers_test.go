package promoter_test

import (
	"context"
	"testing"

	"github.com/regflow/regflow/shared/ecrevent"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/regflow"
)

func errMalformed() error { return ecrevent.ErrMalformed }

func audit(t *testing.T, st *localstack.Stack, subject string) []regflow.AuditEntry {
	t.Helper()
	trail, err := st.Store.Audit(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	return trail
}
