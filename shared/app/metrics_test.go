package app

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/metrics"
	"github.com/regflow/regflow/shared/promoter"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/route"
	"github.com/regflow/regflow/shared/scangate"
)

// What only an invocation knows becomes a metric; the function tests under the Lambda RIE
// check the lines reach the function's output.
func TestRecordInvocationMetrics(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   string
		res  any
		want []string // substrings of the one document; nil: no document
	}{
		{"gate blocks prod", route.Scangate, scangate.Result{Env: "staging", Next: "prod", Status: regflow.StatusBlocked},
			[]string{`"GateBlocks":1`, `"Environment":"prod"`}},
		{"gate passes", route.Scangate, scangate.Result{Env: "dev", Next: "staging", Status: regflow.StatusPending}, nil},
		{"promotion", route.Promoter, promoter.Result{Outcome: "promoted"}, []string{`"PromotionDuration":1500`, `"Unit":"Milliseconds"`}},
		{"redelivered promotion", route.Promoter, promoter.Result{Outcome: "already-promoted"}, nil},
		{"answer to Slack", route.Approvals, nil, []string{`"ApprovalAnswerLatency":1500`, `"Function":"approvals"`}},
		{"tag guard", route.Tagguard, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w, _ := metrics.New(&out, metrics.Namespace, nil)
			a := &App{metrics: w}
			a.record(tc.fn, 1500*time.Millisecond, tc.res)
			if tc.want == nil {
				if out.Len() != 0 {
					t.Fatalf("unexpected metrics: %s", out.String())
				}
				return
			}
			if strings.Count(out.String(), "\n") != 1 {
				t.Fatalf("want one document, got %q", out.String())
			}
			for _, s := range tc.want {
				if !strings.Contains(out.String(), s) {
					t.Fatalf("document %s lacks %s", out.String(), s)
				}
			}
		})
	}
}
