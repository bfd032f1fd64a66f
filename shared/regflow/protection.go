package regflow

import "time"

// ProtectingStatuses are the request statuses whose digest the retention sweep may have to
// keep; Protects decides for one request.
func ProtectingStatuses() []string {
	return []string{StatusPending, StatusWaiting, StatusApproved, StatusFailed}
}

// Protects reports whether the request keeps its digest from the retention sweep at now:
// a pending request until it expires (it can no longer be approved after), a waiting or
// approved one always (it is about to be copied from the previous environment), a failed
// one until its grace ends (someone may look into it and approve it again).
func (r ApprovalRequest) Protects(now time.Time) bool {
	switch r.Status {
	case StatusPending:
		return r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt)
	case StatusWaiting, StatusApproved:
		return true
	case StatusFailed:
		return now.Before(r.ProtectedUntil)
	}
	return false
}

// Fail returns the request ended failed for reason, its digest protected until
// now+grace, with the version bumped.
func (r ApprovalRequest) Fail(reason string, now time.Time, grace time.Duration) ApprovalRequest {
	next := r.Transition(StatusFailed, reason)
	next.ProtectedUntil = now.Add(grace).UTC()
	return next
}
