package localstack_test

import (
	"context"
	"slices"
	"testing"

	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
)

// TestVotesAreRecountedWhenARequestCloses: an approver removed from the config after voting
// no longer counts when the request would close; the request stays open for another vote.
func TestVotesAreRecountedWhenARequestCloses(t *testing.T) {
	ctx := context.Background()
	cfg := loadConfig(t)
	staging := cfg.Environments["staging"]
	staging.Approvers.Required = 2
	cfg.Environments["staging"] = staging
	st, err := localstack.Start(ctx, localstack.Options{Config: cfg, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	digest := pushTo(t, st, "dev", "shop/web", "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd")
	if err := st.ECR["dev"].InjectScan("shop/web", digest); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	id := regflow.RequestID("staging", "shop/web", digest)
	if res, err := st.Click(ctx, "U0BOB", slackmsg.ActionApprove, id); err != nil || res.Outcome != "voted" {
		t.Fatalf("Bob's vote: %+v, %v", res, err)
	}
	// Bob leaves staging's approvers (the config the running functions read).
	staging.Approvers.Users = slices.DeleteFunc(slices.Clone(staging.Approvers.Users), func(u string) bool { return u == "U0BOB" })
	st.Config.Environments["staging"] = staging

	res, err := st.Click(ctx, "U0CAROL", slackmsg.ActionApprove, id)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := st.Store.GetRequest(ctx, id)
	if req.Status != regflow.StatusPending || res.Outcome != "voted" || len(req.Approvals) != 1 || req.Approvals[0].User != "U0CAROL" {
		t.Fatalf("Bob's vote must not count once he is no approver: click %+v, request %s %+v", res, req.Status, req.Approvals)
	}
	if res, err := st.Click(ctx, "U0ALICE", slackmsg.ActionApprove, id); err != nil || res.Outcome != "approved" {
		t.Fatalf("a second current approver closes it: %+v, %v", res, err)
	}
}
