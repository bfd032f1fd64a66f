package config

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/regflow/regflow/shared/glob"
)

// SignaturePolicy is an environment's requireSignature: the signatures a digest must carry
// before it may enter the environment. By default every requirement must be met by some
// signature; with any: true one is enough.
type SignaturePolicy struct {
	// Any passes the policy when one requirement is met, instead of all of them.
	Any bool `json:"any"`
	// Require lists the trusted signers; at least one.
	Require []SignatureRequirement `json:"require"`
}

// SignatureRequirement is one trusted signer. Exactly one of its kinds is set.
type SignatureRequirement struct {
	// Name labels the requirement in reasons and on the approval request ("ci", "aws-signer").
	Name string `json:"name"`
	// CosignKey trusts cosign signatures made with a long-lived key.
	CosignKey *CosignKey `json:"cosignKey,omitempty"`
	// CosignKeyless trusts cosign keyless signatures: a certificate from a trusted CA for an
	// OIDC identity.
	CosignKeyless *CosignKeyless `json:"cosignKeyless,omitempty"`
	// Notation trusts Notary Project signatures (notation, AWS Signer).
	Notation *NotationTrust `json:"notation,omitempty"`
}

// CosignKey is a cosign public key, given inline (PEM), as a file, or as an AWS KMS key.
type CosignKey struct {
	// PublicKey is a PEM public key, or the path of a file holding one.
	PublicKey string `json:"publicKey,omitempty"`
	// KMSKey is the ARN of an asymmetric AWS KMS signing key (awskms:// keys in cosign).
	KMSKey string `json:"kmsKey,omitempty"`
}

// CosignKeyless names the certificate identity a keyless signature must carry.
// Subject and Issuer are globs (shared/glob: exact unless they hold * or ?); the
// RegExp variants are Go regular expressions, matched in full.
type CosignKeyless struct {
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegExp  string `json:"issuerRegExp,omitempty"`
	Subject       string `json:"subject,omitempty"`
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
	// TrustedRoot is a Sigstore trusted_root.json (inline JSON or a file path): the CAs,
	// and the transparency logs, that signatures are checked against offline.
	TrustedRoot string `json:"trustedRoot"`
	// RequireTransparencyLog demands a Rekor entry (inclusion proof checked against the
	// trusted root's logs), whose time then dates the signature. Without it the
	// certificate must still be valid now, which only long-lived certificates are.
	RequireTransparencyLog bool `json:"requireTransparencyLog,omitempty"`
}

// NotationTrust is a Notary Project trust policy and the trust store it names, in
// notation's own formats.
type NotationTrust struct {
	// TrustPolicy is notation's trustpolicy.json document (version 1.0), inline.
	TrustPolicy json.RawMessage `json:"trustPolicy"`
	// TrustStore maps a trust store named in the policy ("ca:acme", "signingAuthority:aws-signer",
	// "tsa:digicert") to its certificates, each a PEM block or the path of a PEM file.
	TrustStore map[string][]string `json:"trustStore"`
}

// Kind returns the requirement's kind ("cosignKey", "cosignKeyless", "notation") and how many are set.
func (r SignatureRequirement) Kind() (string, int) {
	kind, n := "", 0
	if r.CosignKey != nil {
		kind, n = "cosignKey", n+1
	}
	if r.CosignKeyless != nil {
		kind, n = "cosignKeyless", n+1
	}
	if r.Notation != nil {
		kind, n = "notation", n+1
	}
	return kind, n
}

// Label is the requirement's name, or its kind and position when unnamed.
func (r SignatureRequirement) Label(i int) string {
	if r.Name != "" {
		return r.Name
	}
	kind, _ := r.Kind()
	return fmt.Sprintf("%s #%d", kind, i+1)
}

// ReadPEM returns inline PEM as it is, or reads the file a path names.
func ReadPEM(v string) ([]byte, error) {
	if strings.Contains(v, "-----BEGIN") {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("read PEM file: %w", err)
	}
	return b, nil
}

// ReadJSON returns inline JSON as it is, or reads the file a path names.
func ReadJSON(v string) ([]byte, error) {
	if strings.HasPrefix(strings.TrimSpace(v), "{") {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("read JSON file: %w", err)
	}
	return b, nil
}

// GlobRegExp turns a shared/glob pattern into an anchored regular expression with the
// same meaning (* any run, / included; ? any one character).
func GlobRegExp(p string) string {
	q := regexp.QuoteMeta(p)
	q = strings.ReplaceAll(q, `\*`, `.*`)
	q = strings.ReplaceAll(q, `\?`, `.`)
	return "^" + q + "$"
}

var (
	kmsKeyRE     = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:kms:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:(key/[0-9a-f-]{36}|alias/[A-Za-z0-9/_-]+)$`)
	trustStoreRE = regexp.MustCompile(`^(ca|signingAuthority|tsa):[A-Za-z0-9_.-]+$`)
)

// notationPolicyShape is the part of notation's trust policy that config checks itself;
// the signature package hands the whole document to notation-go, which checks the rest.
type notationPolicyShape struct {
	Version       string `json:"version"`
	TrustPolicies []struct {
		Name                  string   `json:"name"`
		RegistryScopes        []string `json:"registryScopes"`
		TrustStores           []string `json:"trustStores"`
		TrustedIdentities     []string `json:"trustedIdentities"`
		SignatureVerification struct {
			Level string `json:"level"`
		} `json:"signatureVerification"`
	} `json:"trustPolicies"`
}

// validateSignature checks one environment's requireSignature; f is its field path.
func validateSignature(f string, p *SignaturePolicy, bad func(field, rule string, args ...any)) {
	if p == nil {
		return
	}
	if len(p.Require) == 0 {
		bad(f+".require", "must list at least one trusted signer (cosignKey, cosignKeyless or notation)")
	}
	names := map[string]int{}
	for i, r := range p.Require {
		rf := fmt.Sprintf("%s.require[%d]", f, i)
		if r.Name != "" {
			if j, dup := names[r.Name]; dup {
				bad(rf+".name", "%q is also the name of require[%d]; names label reasons and must differ", r.Name, j)
			}
			names[r.Name] = i
		}
		switch _, n := r.Kind(); n {
		case 0:
			bad(rf, "set one of cosignKey, cosignKeyless, notation")
			continue
		case 1:
		default:
			bad(rf, "sets %d of cosignKey, cosignKeyless, notation; list each signer as its own entry", n)
			continue
		}
		switch {
		case r.CosignKey != nil:
			validateCosignKey(rf+".cosignKey", r.CosignKey, bad)
		case r.CosignKeyless != nil:
			validateKeyless(rf+".cosignKeyless", r.CosignKeyless, bad)
		case r.Notation != nil:
			validateNotation(rf+".notation", r.Notation, bad)
		}
	}
}

func validateCosignKey(f string, k *CosignKey, bad func(field, rule string, args ...any)) {
	switch {
	case k.PublicKey == "" && k.KMSKey == "":
		bad(f, "set publicKey (PEM or a file) or kmsKey (a KMS key ARN)")
	case k.PublicKey != "" && k.KMSKey != "":
		bad(f, "set publicKey or kmsKey, not both; list each key as its own entry")
	case k.KMSKey != "":
		if !kmsKeyRE.MatchString(k.KMSKey) {
			bad(f+".kmsKey", "%q must be a KMS key or alias ARN such as arn:aws:kms:us-east-1:111111111111:key/<uuid>", k.KMSKey)
		}
	default:
		b, err := ReadPEM(k.PublicKey)
		if err != nil {
			bad(f+".publicKey", "%v", err)
			return
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			bad(f+".publicKey", "holds no PEM block; paste cosign.pub (-----BEGIN PUBLIC KEY-----) or give its path")
			return
		}
		if _, err := x509.ParsePKIXPublicKey(blk.Bytes); err != nil {
			bad(f+".publicKey", "is not a PKIX public key (%s block): %v", blk.Type, err)
		}
	}
}

func validateKeyless(f string, k *CosignKeyless, bad func(field, rule string, args ...any)) {
	pair := func(name, exact, re string) {
		switch {
		case exact == "" && re == "":
			bad(f+"."+name, "is required (or %sRegExp): a keyless signature is only as strong as the identity it must name", name)
		case exact != "" && re != "":
			bad(f+"."+name, "set %s or %sRegExp, not both", name, name)
		case exact != "":
			if err := glob.Valid(exact); err != nil {
				bad(f+"."+name, "%v", err)
			}
		default:
			if _, err := regexp.Compile(re); err != nil {
				bad(f+"."+name+"RegExp", "does not compile: %v", err)
			}
		}
	}
	pair("issuer", k.Issuer, k.IssuerRegExp)
	pair("subject", k.Subject, k.SubjectRegExp)
	if k.TrustedRoot == "" {
		bad(f+".trustedRoot", "is required: a Sigstore trusted_root.json (inline or a path) so signatures verify offline")
		return
	}
	b, err := ReadJSON(k.TrustedRoot)
	if err != nil {
		bad(f+".trustedRoot", "%v", err)
		return
	}
	var shape struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(b, &shape); err != nil {
		bad(f+".trustedRoot", "is not JSON: %v", err)
	} else if !strings.HasPrefix(shape.MediaType, "application/vnd.dev.sigstore.trustedroot") {
		bad(f+".trustedRoot", "mediaType %q is not a Sigstore trusted root (application/vnd.dev.sigstore.trustedroot+json;version=0.1)", shape.MediaType)
	}
}

func validateNotation(f string, n *NotationTrust, bad func(field, rule string, args ...any)) {
	if len(n.TrustPolicy) == 0 {
		bad(f+".trustPolicy", "is required: notation's trust policy document (version 1.0, trustPolicies)")
	} else {
		var doc notationPolicyShape
		if err := json.Unmarshal(n.TrustPolicy, &doc); err != nil {
			bad(f+".trustPolicy", "is not a notation trust policy: %v", err)
		} else {
			if doc.Version != "1.0" {
				bad(f+".trustPolicy.version", "%q is not a supported notation trust policy version (1.0)", doc.Version)
			}
			if len(doc.TrustPolicies) == 0 {
				bad(f+".trustPolicy.trustPolicies", "must list at least one trust policy")
			}
			for i, tp := range doc.TrustPolicies {
				pf := fmt.Sprintf("%s.trustPolicy.trustPolicies[%d]", f, i)
				if tp.SignatureVerification.Level == "skip" {
					bad(pf+".signatureVerification.level", "skip would let unsigned images through; use strict, permissive or audit")
				}
				for _, s := range tp.TrustStores {
					if _, ok := n.TrustStore[s]; !ok {
						bad(pf+".trustStores", "names %q, which trustStore does not define", s)
					}
				}
			}
		}
	}
	for name, certs := range n.TrustStore {
		sf := f + ".trustStore." + name
		if !trustStoreRE.MatchString(name) {
			bad(sf, "must be <type>:<name> with type ca, signingAuthority or tsa, as in notation's trust policy")
		}
		if len(certs) == 0 {
			bad(sf, "lists no certificates")
		}
		for i, c := range certs {
			cf := fmt.Sprintf("%s[%d]", sf, i)
			b, err := ReadPEM(c)
			if err != nil {
				bad(cf, "%v", err)
				continue
			}
			if _, err := ParseCertificates(b); err != nil {
				bad(cf, "%v", err)
			}
		}
	}
}

// ParseCertificates reads every CERTIFICATE block of a PEM bundle; at least one.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("holds no PEM CERTIFICATE block")
	}
	return out, nil
}
