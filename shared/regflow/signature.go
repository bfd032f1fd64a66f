package regflow

import "context"

// SignatureCheck asks whether a digest carries the signatures an environment requires.
type SignatureCheck struct {
	// Env is the environment whose requireSignature applies (the one the digest would enter).
	Env string
	// In is the environment whose registry holds the digest and its signatures: the
	// source for the gate and the promoter's pre-copy check, Env itself after the copy.
	// Empty means Env.
	In string
	// Repository and Digest name the image as it is in that registry.
	Repository string
	Digest     string
	// Indexes are the image indexes known to list Digest: a signature on one of them
	// covers its platforms.
	Indexes []string
}

// SignatureStatus is the outcome of a signature check, worded for an approval request.
type SignatureStatus struct {
	// Required is false when the environment requires no signature (then nothing was checked).
	Required bool `json:"required"`
	Verified bool `json:"verified"`
	// Identity is who signed: a key fingerprint, a keyless identity and its issuer, or a
	// certificate subject.
	Identity string `json:"identity,omitempty"`
	// SignatureDigest is the manifest digest of the signature that verified.
	SignatureDigest string `json:"signatureDigest,omitempty"`
	// Kind is the signature format: cosign, sigstore-bundle or notation.
	Kind string `json:"kind,omitempty"`
	// Reason says what was checked and, when not verified, why it failed.
	Reason string `json:"reason"`
}

// SignatureVerifier checks digests against an environment's requireSignature. An error
// means the check could not run (registry unreachable): retry. A verdict, pass or fail,
// is in the status.
type SignatureVerifier interface {
	VerifySignature(ctx context.Context, c SignatureCheck) (SignatureStatus, error)
}

// Line is the status as one line for the approval message: "Signed by <identity>", or why
// not; empty when the environment requires no signature.
func (s SignatureStatus) Line() string {
	switch {
	case !s.Required:
		return ""
	case s.Verified:
		return "Signed by " + s.Identity
	default:
		return "Signature not verified: " + s.Reason
	}
}
