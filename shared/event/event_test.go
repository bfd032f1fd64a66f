package event

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/regflow"
)

func TestDecisionEvents(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	base := regflow.ApprovalRequest{ID: "req-1", Env: "prod", Repository: "team/api", Digest: "sha256:" + strings.Repeat("a", 64),
		Tag: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", Commit: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
		Status: regflow.StatusPending, RequestedBy: "UCI", Required: 2, ExpiresAt: at.Add(time.Hour), Version: 1}
	one, err := base.Approve("U1", at)
	if err != nil {
		t.Fatal(err)
	}
	approved, err := one.Approve("U2", at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	rejected, err := base.Reject("U3", at)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		r       regflow.ApprovalRequest
		dt      string
		want    PromotionDecision
		wantErr bool
	}{
		{"approved by two", approved, TypePromotionApproved, PromotionDecision{RequestID: "req-1", Env: "prod", Repository: "team/api", Digest: base.Digest, Tag: base.Tag, Commit: base.Commit,
			Decision: regflow.StatusApproved, DecidedBy: "U2", Approvers: []string{"U1", "U2"}, RequestedBy: "UCI", At: at.Add(time.Minute)}, false},
		{"rejected", rejected, TypePromotionRejected, PromotionDecision{RequestID: "req-1", Env: "prod", Repository: "team/api", Digest: base.Digest, Tag: base.Tag, Commit: base.Commit,
			Decision: regflow.StatusRejected, DecidedBy: "U3", RequestedBy: "UCI", At: at}, false},
		{"half approved is not a decision", one, "", PromotionDecision{}, true},
		{"pending is not a decision", base, "", PromotionDecision{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecisionOf(tt.r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			dt := ""
			if err == nil {
				dt = d.DetailType()
			}
			if dt != tt.dt {
				t.Fatalf("detail-type %q, want %q", dt, tt.dt)
			}
			if diff := cmp.Diff(tt.want, d); diff != "" {
				t.Fatalf("detail (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			b, err := Message{Detail: d, Key: tt.r.ID + "#" + tt.r.Status, At: tt.r.DecidedAt}.Encode()
			if err != nil {
				t.Fatal(err)
			}
			ev, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Source != SourceRegflow || ev.DetailType != dt || ev.Version != "0" || len(ev.ID) != 36 {
				t.Fatalf("envelope %+v", ev)
			}
			var back PromotionDecision
			if err := json.Unmarshal(ev.Detail, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(d, back); diff != "" {
				t.Fatalf("detail round trip (-want +got):\n%s", diff)
			}
			again, _ := Message{Detail: d, Key: tt.r.ID + "#" + tt.r.Status, At: tt.r.DecidedAt}.Encode()
			if string(again) != string(b) {
				t.Fatal("the same effect produced two different events; a retry would not be recognisable")
			}
		})
	}
}

func TestEventIDsDifferByEffect(t *testing.T) {
	at := time.Now()
	a, _ := Message{Detail: PromotionDecision{Decision: regflow.StatusApproved}, Key: "req-1#approved", At: at}.Encode()
	b, _ := Message{Detail: PromotionDecision{Decision: regflow.StatusRejected}, Key: "req-1#rejected", At: at}.Encode()
	c, _ := Message{Detail: PromotionDecision{Decision: regflow.StatusApproved}, Key: "req-2#approved", At: at}.Encode()
	ids := map[string]bool{}
	for _, e := range [][]byte{a, b, c} {
		ev, err := Parse(e)
		if err != nil {
			t.Fatal(err)
		}
		ids[ev.ID] = true
	}
	if len(ids) != 3 {
		t.Fatalf("ids %v collide", ids)
	}
}

func TestParseEventRefusals(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":          `{"source":`,
		"no source":         `{"detail-type":"Promotion Approved","detail":{}}`,
		"no detail-type":    `{"source":"regflow","detail":{}}`,
		"detail not object": `{"source":"regflow","detail-type":"x","detail":"[]"}`,
		"detail missing":    `{"source":"regflow","detail-type":"x"}`,
		"detail null":       `{"source":"regflow","detail-type":"x","detail":null}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(in)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	for name, m := range map[string]Message{
		"no detail":              {Key: "k", At: time.Now()},
		"empty detail-type":      {Detail: typed{dt: ""}, Key: "k", At: time.Now()},
		"detail not an object":   {Detail: typed{dt: "x", v: "s"}, Key: "k", At: time.Now()},
		"detail fails to encode": {Detail: typed{dt: "x", v: make(chan int)}, Key: "k", At: time.Now()},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := m.Encode(); err == nil {
				t.Fatal("encoded")
			}
		})
	}
}

// typed is a Detail whose detail-type and JSON a test picks.
type typed struct {
	dt string
	v  any
}

func (t typed) DetailType() string           { return t.dt }
func (t typed) MarshalJSON() ([]byte, error) { return json.Marshal(t.v) }

func TestDetailTypes(t *testing.T) {
	for _, tt := range []struct {
		d    Detail
		want string
	}{
		{PromotionDecision{Decision: regflow.StatusApproved}, TypePromotionApproved},
		{PromotionDecision{Decision: regflow.StatusRejected}, TypePromotionRejected},
		{PromotionDecision{Decision: regflow.StatusPending}, ""},
		{TagPolicyViolation{}, TypeTagPolicyViolation},
		{ImagePromoted{}, TypeImagePromoted},
		{PromotionFailed{}, TypePromotionFailed},
		{RollbackRequested{}, TypeRollbackRequested},
		{ReleaseRolledBack{}, TypeReleaseRolledBack},
		{RetentionSweepCompleted{}, TypeRetentionSweepCompleted},
		{VerificationResult{}, TypeVerificationResult},
		{SweepRequest{}, TypeScheduledEvent},
	} {
		if got := tt.d.DetailType(); got != tt.want {
			t.Errorf("%T%+v: detail-type %q, want %q", tt.d, tt.d, got, tt.want)
		}
	}
	// A decision that is no decision is not publishable.
	if _, err := (Message{Detail: PromotionDecision{Decision: regflow.StatusPending}, Key: "k"}).Encode(); err == nil {
		t.Fatal("encoded a pending decision")
	}
}
