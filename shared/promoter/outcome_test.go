package promoter_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/testenv"
)

// ECS's published deployment events reach the promoter as they are: from an account no
// environment has they are refused, naming it; re-sent from staging's account about a
// service that is no deploy target they change nothing; IN_PROGRESS is no outcome; ECS's
// other events are refused as malformed, never a panic.
func TestECSDeploymentSamples(t *testing.T) {
	dir := testenv.RealTestdata(t)
	files, _ := filepath.Glob(filepath.Join(dir, "eventbridge-ecs-*.json"))
	if len(files) == 0 {
		t.Fatalf("no eventbridge-ecs-* samples in %s", dir)
	}
	st, _ := start(t)
	ctx := context.Background()
	staging := st.Config.Environments["staging"]
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			deployment := strings.Contains(f, "deployment-state-change")
			res, err := st.Promoter.Invoke(ctx, raw)
			switch {
			case !deployment && !errors.Is(err, event.ErrMalformed):
				t.Fatalf("a non-deployment ECS event: %+v, %v; want malformed", res, err)
			case deployment && strings.Contains(f, "in-progress") && (err != nil || res.Outcome != "ignored"):
				t.Fatalf("IN_PROGRESS: %+v, %v; want ignored", res, err)
			case deployment && !strings.Contains(f, "in-progress") && (err == nil || !strings.Contains(err.Error(), "no configured environment")):
				t.Fatalf("from an unconfigured account: %+v, %v; want refused naming it", res, err)
			}
			if !deployment {
				return
			}
			var ev map[string]any
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			ev["account"], ev["region"] = staging.Account, staging.Region
			again, _ := json.Marshal(ev)
			if res, err := st.Promoter.Invoke(ctx, again); err != nil || res.Outcome != "ignored" {
				t.Fatalf("from staging's account, about no deploy target: %+v, %v; want ignored", res, err)
			}
		})
	}
}
