package regflow

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func pending(required int) ApprovalRequest {
	return ApprovalRequest{ID: "r", Status: StatusPending, RequestedBy: "U0REQ", Required: required, ExpiresAt: t0.Add(time.Hour), Version: 1}
}

func TestApprove(t *testing.T) {
	tests := []struct {
		name       string
		req        ApprovalRequest
		user       string
		at         time.Time
		wantErr    error
		wantStatus string
		wantVotes  int
	}{
		{"single approver decides", pending(1), "U0A", t0, nil, StatusApproved, 1},
		{"first of two counts", pending(2), "U0A", t0, nil, StatusPending, 1},
		{"requester refused", pending(1), "U0REQ", t0, ErrSelfApproval, StatusPending, 0},
		{"expired", pending(1), "U0A", t0.Add(time.Hour), ErrExpired, StatusPending, 0},
		{"already decided", func() ApprovalRequest { r := pending(1); r.Status = StatusRejected; return r }(), "U0A", t0, ErrNotPending, StatusRejected, 0},
		{"same user twice", func() ApprovalRequest { r := pending(2); r.Approvals = []Vote{{User: "U0A", At: t0}}; return r }(), "U0A", t0, ErrAlreadyVoted, StatusPending, 1},
		{"second distinct user decides", func() ApprovalRequest { r := pending(2); r.Approvals = []Vote{{User: "U0A", At: t0}}; return r }(), "U0B", t0, nil, StatusApproved, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.req.Approve(tt.user, tt.at)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got.Status != tt.wantStatus || len(got.Approvals) != tt.wantVotes {
				t.Fatalf("status %s votes %d, want %s %d", got.Status, len(got.Approvals), tt.wantStatus, tt.wantVotes)
			}
			if err == nil && got.Version != tt.req.Version+1 {
				t.Errorf("version %d, want %d", got.Version, tt.req.Version+1)
			}
			if err == nil && got.Status == StatusApproved && got.DecidedBy != tt.user {
				t.Errorf("decided by %q", got.DecidedBy)
			}
		})
	}
	if _, err := pending(1).Reject("U0A", t0.Add(2*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Errorf("expired reject: %v", err)
	}
	r, err := pending(2).Reject("U0A", t0)
	if err != nil || r.Status != StatusRejected || r.DecidedBy != "U0A" {
		t.Errorf("reject: %+v %v", r, err)
	}
}

func TestReleaseMoveTo(t *testing.T) {
	r := Release{Env: "prod", Repository: "app"}
	r = r.MoveTo("a", "ta", "x", t0, 2)
	r = r.MoveTo("b", "tb", "x", t0, 2)
	r = r.MoveTo("c", "tc", "x", t0, 2)
	if r.Digest != "c" || !cmp.Equal(r.Previous, []string{"b", "a"}) || r.Version != 3 {
		t.Fatalf("after three moves: %+v", r)
	}
	r = r.MoveTo("d", "td", "x", t0, 2)
	if !cmp.Equal(r.Previous, []string{"c", "b"}) {
		t.Fatalf("history is capped at keep: %v", r.Previous)
	}
	r = r.MoveTo("b", "tb", "x", t0, 2) // rollback to a previous digest
	if r.Digest != "b" || !cmp.Equal(r.Previous, []string{"d", "c"}) {
		t.Fatalf("rollback: %+v", r)
	}
	same := r.MoveTo("b", "tb", "x", t0, 2)
	if !cmp.Equal(same.Previous, r.Previous) {
		t.Fatalf("moving to the current digest keeps history: %v", same.Previous)
	}
}

func TestRequestIDIsStable(t *testing.T) {
	a, b := RequestID("prod", "app", "sha256:1"), RequestID("prod", "app", "sha256:1")
	if a != b || a == RequestID("staging", "app", "sha256:1") {
		t.Fatal("request ids must be deterministic per env, repo and digest")
	}
}

func TestCommitFromTags(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	for _, tt := range []struct {
		tags []string
		want string
	}{
		{[]string{"latest", sha}, sha},
		{[]string{"v1.0.0"}, ""},
		{[]string{"0123456789ABCDEF0123456789ABCDEF01234567"}, ""},
		{nil, ""},
	} {
		if got := CommitFromTags(tt.tags); got != tt.want {
			t.Errorf("CommitFromTags(%v) = %q", tt.tags, got)
		}
	}
}
