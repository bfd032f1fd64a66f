package regflow

import "time"

// ApprovalMark is when an approval request was decided, which orders promotions: the
// release pointer only ever moves forward in this order (rollbacks aside).
type ApprovalMark struct {
	RequestID string
	At        time.Time
}

// Mark is the request's place in the promotion order: its decision time (its creation
// for requests decided before decisions were stamped).
func (r ApprovalRequest) Mark() ApprovalMark {
	at := r.DecidedAt
	if at.IsZero() {
		at = r.CreatedAt
	}
	return ApprovalMark{RequestID: r.ID, At: at.UTC()}
}

// After reports whether m was decided strictly after o. Two decisions in the same
// instant are not ordered (the later promotion to finish moves the pointer, as any would
// without this order): only a decision known to be newer holds the pointer.
func (m ApprovalMark) After(o ApprovalMark) bool { return m.At.After(o.At) }

// Mark is the newest approval promoted into the pointer (zero when none was).
func (r Release) Mark() ApprovalMark {
	return ApprovalMark{RequestID: r.ApprovalID, At: r.ApprovedAt}
}

// Supersedes reports whether the pointer holds an approval newer than m, so a promotion
// of m must leave it where it is.
func (r Release) Supersedes(m ApprovalMark) bool {
	if r.ApprovalID == "" || r.ApprovalID == m.RequestID {
		return false
	}
	return r.Mark().After(m)
}

// Promote returns the pointer moved to the request's digest, holding its approval.
func (r Release) Promote(req ApprovalRequest, by string, at time.Time, keep int) Release {
	next := r.MoveTo(req.Digest, req.Tag, by, at, keep)
	m := req.Mark()
	next.ApprovalID, next.ApprovedAt = m.RequestID, m.At
	return next
}
