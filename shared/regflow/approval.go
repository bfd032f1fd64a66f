package regflow

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Request statuses. A request is bound to a digest, never to a tag.
const (
	StatusBlocked  = "blocked"  // the environment's gate refused the image
	StatusWaiting  = "waiting"  // gate passed; waits for verification in the previous environment
	StatusPending  = "pending"  // open for approval
	StatusApproved = "approved" // enough distinct approvers
	StatusRejected = "rejected"
	StatusExpired  = "expired"
	StatusPromoted = "promoted" // copied into the environment
	StatusFailed   = "failed"   // promotion failed (may be retried)
	// StatusSuperseded: copied, but a newer approval already held the release pointer, so
	// the pointer stayed where it was.
	StatusSuperseded = "superseded"
)

// Decision outcomes of one click.
var (
	ErrNotPending    = errors.New("request is no longer pending")
	ErrExpired       = errors.New("request expired")
	ErrSelfApproval  = errors.New("the requester cannot approve their own request")
	ErrAlreadyVoted  = errors.New("already approved by this user")
	ErrNotAuthorized = errors.New("not allowed to approve this environment")
	ErrConflict      = errors.New("concurrent update; read again")
)

// RequestConflict is the ErrConflict of a request write that lost, carrying the stored
// request when the store returns it with the refusal (DynamoDB does, saving a re-read).
type RequestConflict struct {
	Current *ApprovalRequest
}

func (e *RequestConflict) Error() string { return ErrConflict.Error() }

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *RequestConflict) Unwrap() error { return ErrConflict }

// Winner is the stored request that won the write, when the store returned it.
func (e *RequestConflict) Winner() (ApprovalRequest, bool) {
	if e.Current == nil {
		return ApprovalRequest{}, false
	}
	return *e.Current, true
}

// Vote is one approver's click.
type Vote struct {
	User string    `json:"user"`
	At   time.Time `json:"at"`
}

// ApprovalRequest asks people to let one digest into one environment.
type ApprovalRequest struct {
	ID          string `json:"id"`
	Env         string `json:"env"`
	Repository  string `json:"repository"`
	Digest      string `json:"digest"`
	Tag         string `json:"tag,omitempty"`
	Commit      string `json:"commit,omitempty"`
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
	RequestedBy string `json:"requestedBy,omitempty"`
	Required    int    `json:"required"`
	Approvals   []Vote `json:"approvals,omitempty"`
	// DecidedBy and DecidedAt say who closed the request (the last approver, or the rejecter).
	DecidedBy string    `json:"decidedBy,omitempty"`
	DecidedAt time.Time `json:"decidedAt,omitzero"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Severity counts the gate saw, for the message.
	Findings map[string]int `json:"findings,omitempty"`
	// SlackChannel and SlackTS locate the approval message so it can be updated.
	SlackChannel string `json:"slackChannel,omitempty"`
	SlackTS      string `json:"slackTs,omitempty"`
	// Attempts counts the promoter's tries at copying an approved request.
	Attempts int `json:"attempts,omitempty"`
	// ProtectedUntil keeps a failed request's digest from the sweep for a grace period.
	ProtectedUntil time.Time `json:"protectedUntil,omitzero"`
	// Signature is what the gate found checking the environment's requireSignature.
	Signature *SignatureStatus `json:"signature,omitempty"`
	// Version increments on every write; writes are conditional on it.
	Version int `json:"version"`
}

// RequestID is deterministic, so a redelivered scan event finds the request it already opened.
func RequestID(env, repo, digest string) string {
	sum := sha256.Sum256([]byte(env + "\x00" + repo + "\x00" + digest))
	return "req-" + hex.EncodeToString(sum[:])[:20]
}

// Ref is repo@digest.
func (r ApprovalRequest) Ref() string { return r.Repository + "@" + r.Digest }

// Approve records user's approval and returns the next state. It refuses the requester,
// a second vote from the same user, and anything not pending or past its expiry.
func (r ApprovalRequest) Approve(user string, now time.Time) (ApprovalRequest, error) {
	if err := r.open(now); err != nil {
		return r, err
	}
	if user == r.RequestedBy && r.RequestedBy != "" {
		return r, ErrSelfApproval
	}
	if slices.ContainsFunc(r.Approvals, func(v Vote) bool { return v.User == user }) {
		return r, ErrAlreadyVoted
	}
	next := r
	next.Approvals = append(slices.Clone(r.Approvals), Vote{User: user, At: now})
	if len(next.Approvals) >= max(r.Required, 1) {
		next.Status, next.DecidedBy, next.DecidedAt = StatusApproved, user, now
	}
	next.Version++
	return next, nil
}

// ApproveCounting is Approve with a recount when the vote would close the request: only votes
// of users allowed now count (allowed says whether a user may approve the request's
// environment, users and user groups as configured today), never the requester's. Votes that
// no longer count are dropped, and the request stays pending if too few remain. user is the
// clicking user, authorized just before.
func (r ApprovalRequest) ApproveCounting(user string, now time.Time, allowed func(user string) (bool, error)) (ApprovalRequest, error) {
	next, err := r.Approve(user, now)
	if err != nil || next.Status != StatusApproved || allowed == nil {
		return next, err
	}
	kept := make([]Vote, 0, len(next.Approvals))
	for _, v := range next.Approvals {
		if v.User == r.RequestedBy && r.RequestedBy != "" {
			continue
		}
		if v.User != user {
			ok, err := allowed(v.User)
			if err != nil {
				return r, fmt.Errorf("recount the approval of %s: %w", v.User, err)
			}
			if !ok {
				continue
			}
		}
		kept = append(kept, v)
	}
	if len(kept) == len(next.Approvals) {
		return next, nil
	}
	next.Approvals = kept
	if len(kept) < max(r.Required, 1) {
		next.Status, next.DecidedBy, next.DecidedAt = StatusPending, "", time.Time{}
	}
	return next, nil
}

// Reject closes the request; one rejection is enough.
func (r ApprovalRequest) Reject(user string, now time.Time) (ApprovalRequest, error) {
	if err := r.open(now); err != nil {
		return r, err
	}
	next := r
	next.Status, next.DecidedBy, next.DecidedAt = StatusRejected, user, now
	next.Version++
	return next, nil
}

func (r ApprovalRequest) open(now time.Time) error {
	if r.Status != StatusPending {
		return fmt.Errorf("%w: %s", ErrNotPending, r.Status)
	}
	if !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
		return ErrExpired
	}
	return nil
}

// Transition returns a copy in status with the version bumped.
func (r ApprovalRequest) Transition(status, reason string) ApprovalRequest {
	next := r
	next.Status, next.Reason = status, reason
	next.Version++
	return next
}

// Release is an environment's release pointer for one repository: what runs there now
// and what ran before (for rollback and retention).
type Release struct {
	Env        string    `json:"env"`
	Repository string    `json:"repository"`
	Digest     string    `json:"digest"`
	Tag        string    `json:"tag,omitempty"`
	By         string    `json:"by,omitempty"`
	At         time.Time `json:"at"`
	// Previous digests, most recent first.
	Previous []string `json:"previous,omitempty"`
	// ApprovalID and ApprovedAt name the newest approval promoted into the pointer (its
	// request and decision time). Rollbacks keep them, so an older approval finishing
	// late never moves the pointer (see Release.Holds).
	ApprovalID string    `json:"approvalId,omitempty"`
	ApprovedAt time.Time `json:"approvedAt,omitzero"`
	// RollbackID is the stored rollback that set the pointer, if one did.
	RollbackID string `json:"rollbackId,omitempty"`
	Version    int    `json:"version"`
}

// MoveTo returns the pointer moved to digest, keeping up to keep previous digests.
func (r Release) MoveTo(digest, tag, by string, at time.Time, keep int) Release {
	next := r
	if r.Digest != "" && r.Digest != digest {
		prev := append([]string{r.Digest}, slices.DeleteFunc(slices.Clone(r.Previous), func(d string) bool { return d == digest || d == r.Digest })...)
		if keep > 0 && len(prev) > keep {
			prev = prev[:keep]
		}
		next.Previous = prev
	}
	next.Digest, next.Tag, next.By, next.At = digest, tag, by, at
	next.RollbackID = ""
	next.Version++
	return next
}

// Verification is a deployment pipeline's report that a digest passed (or failed) in an environment.
type Verification struct {
	Env        string `json:"env"`
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Passed     bool   `json:"passed"`
	URL        string `json:"url,omitempty"`
	By         string `json:"by"`
	// Requester is the Slack user id of whoever asked for the deployment; the next
	// environment's request records it, so that person cannot approve it too.
	Requester string    `json:"requester,omitempty"`
	At        time.Time `json:"at"`
}
