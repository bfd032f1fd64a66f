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

// Partition-key prefixes, one per item kind. Every item's PK starts with its kind's
// prefix and no prefix starts another, so IAM can grant each function writes on just the
// kinds it owns (dynamodb:LeadingKeys "<prefix>*"). A new kind needs a prefix here, the
// dynamo adapter's write actions for it (dynamo.WriteActions) and a grant in infra.
const (
	PrefixImage        = "IMG#"
	PrefixScan         = "SCAN#"
	PrefixVerification = "VERIFY#"
	PrefixAudit        = "AUDIT#"
	PrefixClaim        = "CLAIM#"
	PrefixRequest      = "REQ#"
	PrefixRelease      = "REL#"
	PrefixSweep        = "SWEEP#"
	PrefixManifest     = "MANIFEST#"
	PrefixRollback     = "RB#"
)

// Prefixes lists every item kind's partition-key prefix.
func Prefixes() []string {
	return []string{PrefixImage, PrefixScan, PrefixVerification, PrefixAudit, PrefixClaim,
		PrefixRequest, PrefixRelease, PrefixSweep, PrefixManifest, PrefixRollback}
}

// ImagePK is the partition of one image's record (tagguard's).
func ImagePK(repo, digest string) string { return PrefixImage + repo + "@" + digest }

// AuditPK is the partition holding a subject's audit trail.
func AuditPK(subject string) string { return PrefixAudit + subject }

// AuditSK orders entries by time, then ID.
func AuditSK(t time.Time, id string) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z") + "#" + id
}

// ClaimPK is the partition of one claim.
func ClaimPK(key string) string { return PrefixClaim + key }

// RequestPK is the partition of one approval request.
func RequestPK(id string) string { return PrefixRequest + id }

// RequestGSI1PK groups requests by status for listing.
func RequestGSI1PK(status string) string { return "REQSTATUS#" + status }

// ReleasePK is the partition of one release pointer.
func ReleasePK(env, repo string) string { return PrefixRelease + env + "#" + repo }

// ReleasesGSI1PK groups every release pointer.
const ReleasesGSI1PK = "RELEASES"

// VerificationPK is the partition of a digest's verification results (one per
// environment), apart from the image record: scangate writes these, tagguard the record.
func VerificationPK(repo, digest string) string { return PrefixVerification + repo + "@" + digest }

// VerificationSK is the sort key of a verification result in its partition.
func VerificationSK(env string) string { return "VERIFY#" + env }

// ScanPK is the partition of a digest's scan results (one per environment).
func ScanPK(repo, digest string) string { return PrefixScan + repo + "@" + digest }

// ScanSK is the sort key of a scan result in its partition.
func ScanSK(env string) string { return "SCAN#" + env }
