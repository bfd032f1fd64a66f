package regflow

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecisionEvents(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	base := ApprovalRequest{ID: "req-1", Env: "prod", Repository: "team/api", Digest: "sha256:" + strings.Repeat("a", 64),
		Tag: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", Commit: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
		Status: StatusPending, RequestedBy: "UCI", Required: 2, ExpiresAt: at.Add(time.Hour), Version: 1}
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
		r       ApprovalRequest
		dt      string
		want    PromotionDecision
		wantErr bool
	}{
		{"approved by two", approved, DetailPromotionApproved, PromotionDecision{RequestID: "req-1", Env: "prod", Repository: "team/api", Digest: base.Digest, Tag: base.Tag, Commit: base.Commit,
			Decision: StatusApproved, DecidedBy: "U2", Approvers: []string{"U1", "U2"}, RequestedBy: "UCI", At: at.Add(time.Minute)}, false},
		{"rejected", rejected, DetailPromotionRejected, PromotionDecision{RequestID: "req-1", Env: "prod", Repository: "team/api", Digest: base.Digest, Tag: base.Tag, Commit: base.Commit,
			Decision: StatusRejected, DecidedBy: "U3", RequestedBy: "UCI", At: at}, false},
		{"half approved is not a decision", one, "", PromotionDecision{}, true},
		{"pending is not a decision", base, "", PromotionDecision{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dt, d, err := DecisionOf(tt.r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
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
			b, err := NewEvent(dt, tt.r.ID+"#"+tt.r.Status, tt.r.DecidedAt, d)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := ParseEvent(b)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Source != EventSource || ev.DetailType != dt || ev.Version != "0" || len(ev.ID) != 36 {
				t.Fatalf("envelope %+v", ev)
			}
			var back PromotionDecision
			if err := json.Unmarshal(ev.Detail, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(d, back); diff != "" {
				t.Fatalf("detail round trip (-want +got):\n%s", diff)
			}
			again, _ := NewEvent(dt, tt.r.ID+"#"+tt.r.Status, tt.r.DecidedAt, d)
			if string(again) != string(b) {
				t.Fatal("the same effect produced two different events; a retry would not be recognisable")
			}
		})
	}
}

func TestEventIDsDifferByEffect(t *testing.T) {
	at := time.Now()
	a, _ := NewEvent(DetailPromotionApproved, "req-1#approved", at, map[string]string{})
	b, _ := NewEvent(DetailPromotionRejected, "req-1#rejected", at, map[string]string{})
	c, _ := NewEvent(DetailPromotionApproved, "req-2#approved", at, map[string]string{})
	ids := map[string]bool{}
	for _, e := range [][]byte{a, b, c} {
		ev, err := ParseEvent(e)
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
			if _, err := ParseEvent([]byte(in)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := NewEvent("", "k", time.Now(), nil); err == nil {
		t.Fatal("NewEvent accepted an empty detail-type")
	}
}
