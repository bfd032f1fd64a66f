package regflow

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Stored rollback statuses.
const (
	RollbackRequested = "requested" // recorded; the promoter has not acted on it yet
	RollbackApplied   = "applied"   // the pointer moved
	RollbackStale     = "stale"     // the pointer moved before the rollback could apply; nothing done
)

// Where a rollback was asked for.
const (
	ViaSlack = "slack"
	ViaCLI   = "cli"
	// ViaECS: the pointer followed an ECS service that the circuit breaker rolled back.
	ViaECS = "ecs-deployment"
)

// Rollback is one person's request to move an environment's release pointer back, as
// regflow recorded it: the identity comes from a verified Slack click or the CLI caller,
// never from an event. The promoter acts only on a stored rollback, once.
type Rollback struct {
	ID         string `json:"id"`
	Env        string `json:"env"`
	Repository string `json:"repository"`
	// From and FromVersion are the pointer as the person saw it: the rollback applies only
	// while the pointer is still there.
	From        string `json:"from"`
	FromVersion int    `json:"fromVersion"`
	// To is the digest to point at; empty means the previous release.
	To string `json:"to,omitempty"`
	// RequestID is the promoted request whose message carried the Roll back button.
	RequestID string    `json:"requestId,omitempty"`
	By        string    `json:"by"`
	Via       string    `json:"via"`
	At        time.Time `json:"at"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	// Result is the digest the pointer moved to, once applied.
	Result    string    `json:"result,omitempty"`
	AppliedAt time.Time `json:"appliedAt,omitzero"`
	Version   int       `json:"version"`
}

// NewRollback records by's request, via Slack or the CLI, to move cur back to to (the
// previous release when empty). Its id is deterministic in who asked, the pointer's state
// and the target, so a double click or a re-run after a failure names the same rollback,
// while one asked for after the pointer moved again is a new one.
func NewRollback(cur Release, to, requestID, by, via string, at time.Time) Rollback {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d\x00%s\x00%s", cur.Env, cur.Repository, cur.Digest, cur.Version, to, by))
	return Rollback{
		ID: "rb-" + hex.EncodeToString(sum[:])[:20], Env: cur.Env, Repository: cur.Repository,
		From: cur.Digest, FromVersion: cur.Version, To: to, RequestID: requestID,
		By: by, Via: via, At: at.UTC(), Status: RollbackRequested,
	}
}

// Settle returns the rollback in a final status with the version bumped.
func (r Rollback) Settle(status, result, reason string, at time.Time) Rollback {
	next := r
	next.Status, next.Result, next.Reason, next.AppliedAt = status, result, reason, at.UTC()
	next.Version++
	return next
}
