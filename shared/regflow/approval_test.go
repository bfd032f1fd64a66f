package regflow

import (
	"errors"
	"slices"
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

// TestApproveCounting: when a click would close a request, only the votes of users still
// allowed count; the others are dropped, and the request stays open if too few remain.
func TestApproveCounting(t *testing.T) {
	voted := func(required int, users ...string) ApprovalRequest {
		r := pending(required)
		for _, u := range users {
			r.Approvals = append(r.Approvals, Vote{User: u, At: t0})
		}
		return r
	}
	only := func(allowed ...string) func(string) (bool, error) {
		return func(u string) (bool, error) { return slices.Contains(allowed, u), nil }
	}
	tests := []struct {
		name       string
		req        ApprovalRequest
		user       string
		allowed    func(string) (bool, error)
		wantErr    bool
		wantStatus string
		wantVotes  []string
	}{
		{"all still allowed: closes", voted(2, "U0A"), "U0B", only("U0A", "U0B"), false, StatusApproved, []string{"U0A", "U0B"}},
		{"an earlier approver was removed: stays open", voted(2, "U0A"), "U0B", only("U0B"), false, StatusPending, []string{"U0B"}},
		{"removed approver, enough others: closes without them", voted(2, "U0A", "U0C"), "U0B", only("U0B", "U0C"), false, StatusApproved, []string{"U0C", "U0B"}},
		{"not closing: nothing recounted", voted(3, "U0A"), "U0B", only("U0B"), false, StatusPending, []string{"U0A", "U0B"}},
		{"the requester's earlier vote never counts", voted(2, "U0REQ"), "U0B", only("U0REQ", "U0B"), false, StatusPending, []string{"U0B"}},
		{"lookup fails: no decision", voted(2, "U0A"), "U0B", func(string) (bool, error) { return false, errors.New("slack down") }, true, StatusPending, []string{"U0A"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.req.ApproveCounting(tt.user, t0, tt.allowed)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			var users []string
			for _, v := range got.Approvals {
				users = append(users, v.User)
			}
			if got.Status != tt.wantStatus || !slices.Equal(users, tt.wantVotes) {
				t.Fatalf("status %s votes %v, want %s %v", got.Status, users, tt.wantStatus, tt.wantVotes)
			}
			if got.Status == StatusPending && (got.DecidedBy != "" || !got.DecidedAt.IsZero()) {
				t.Errorf("an open request has no decider: %+v", got)
			}
		})
	}
}
