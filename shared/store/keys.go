package store

import "time"

// Key layout of the single table, shared by both adapters so their data means the same.
const (
	AttrPK  = "PK"
	AttrSK  = "SK"
	AttrTTL = "ttl"

	GSI1     = "GSI1"
	AttrG1PK = "GSI1PK"
	AttrG1SK = "GSI1SK"

	SKMeta  = "META"
	SKClaim = "CLAIM"
)

// ImagePK is the partition of one image.
func ImagePK(repo, digest string) string { return "IMG#" + repo + "@" + digest }

// AuditPK is the partition holding a subject's audit trail.
func AuditPK(subject string) string { return "AUDIT#" + subject }

// AuditSK orders entries by time, then ID.
func AuditSK(t time.Time, id string) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z") + "#" + id
}

// ClaimPK is the partition of one claim.
func ClaimPK(key string) string { return "CLAIM#" + key }

// RequestPK is the partition of one approval request.
func RequestPK(id string) string { return "REQ#" + id }

// RequestGSI1PK groups requests by status for listing.
func RequestGSI1PK(status string) string { return "REQSTATUS#" + status }

// ReleasePK is the partition of one release pointer.
func ReleasePK(env, repo string) string { return "REL#" + env + "#" + repo }

// ReleasesGSI1PK groups every release pointer.
const ReleasesGSI1PK = "RELEASES"

// VerificationSK is the sort key of a verification result under its image.
func VerificationSK(env string) string { return "VERIFY#" + env }

// ScanSK is the sort key of a scan result under its image.
func ScanSK(env string) string { return "SCAN#" + env }
