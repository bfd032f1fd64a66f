package main

import (
	"strings"
	"testing"

	"github.com/regflow/regflow/shared/regflow"
)

// TestVerifyRequesterIsTheVerifiedCaller: `regflow verify` takes the requester from who runs
// it (their verified identity, mapped by approvals.requesters), never from a flag or --as.
func TestVerifyRequesterIsTheVerifiedCaller(t *testing.T) {
	path := variant(t, "  requesters: []\n", "  requesters:\n    - {principal: \"carol@local\", slackUser: U0CAROL}\n")
	f := startStackWith(t, path)
	digA := f.push(t, shaA)
	f.promote(t, f.scan(t, digA), "U0ALICE")
	digB := f.push(t, shaB)
	f.promote(t, f.scan(t, digB), "U0ALICE")

	// A free field naming someone else is refused, with where the requester comes from.
	_, errOut, err := f.cli("verify", "staging", repo+"@"+digA, "--passed", "--requester", "U0BOB")
	if err == nil || !strings.Contains(err.Error()+errOut, "approvals.requesters") {
		t.Fatalf("verify --requester must be refused: %v\n%s", err, errOut)
	}
	if r := f.request(t, "prod", digA); r.Status != regflow.StatusWaiting {
		t.Fatalf("a refused verify changed prod's request: %+v", r)
	}

	// Carol runs it (her verified identity in the local stack is carol@local), as someone else.
	t.Setenv("USER", "carol")
	f.ok(t, "verify", "staging", repo+"@"+digA, "--passed", "--as", "U0BOB")
	if r := f.request(t, "prod", digA); r.Status != regflow.StatusPending || r.RequestedBy != "U0CAROL" {
		t.Fatalf("requested by %q (%s), want U0CAROL: the verified caller, not --as", r.RequestedBy, r.Status)
	}
	// Someone the config does not map asks: the request names nobody, whatever --as says.
	t.Setenv("USER", "dave")
	f.ok(t, "verify", "staging", repo+"@"+digB, "--passed", "--as", "U0ALICE")
	if r := f.request(t, "prod", digB); r.Status != regflow.StatusPending || r.RequestedBy != "" {
		t.Fatalf("requested by %q (%s), want nobody", r.RequestedBy, r.Status)
	}
}
