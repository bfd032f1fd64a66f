package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// q quotes s as a YAML (JSON) string, so PEM blocks fit on one line.
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func testPEMs(t *testing.T) (pubKey, cert string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	cder, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cder}))
}

const trustedRootJSON = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`

func notationPolicy(store, level string) string {
	return `{"version":"1.0","trustPolicies":[{"name":"signer","registryScopes":["*"],"signatureVerification":{"level":"` + level +
		`"},"trustStores":["` + store + `"],"trustedIdentities":["*"]}]}`
}

func TestRequireSignatureLoads(t *testing.T) {
	pub, cert := testPEMs(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(keyFile, []byte(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(minimal + `    requireSignature:
      any: true
      require:
        - name: ci-key
          cosignKey: {publicKey: ` + q(pub) + `}
        - cosignKey: {publicKey: ` + q(keyFile) + `}
        - cosignKey: {kmsKey: "arn:aws:kms:us-east-1:111111111111:alias/regflow-signing"}
        - name: ci-keyless
          cosignKeyless:
            issuer: https://token.actions.githubusercontent.com
            subjectRegExp: '^https://github.com/acme/.+@refs/heads/main$'
            trustedRoot: ` + q(trustedRootJSON) + `
        - name: aws-signer
          notation:
            trustPolicy: ` + notationPolicy("signingAuthority:aws-signer", "strict") + `
            trustStore: {"signingAuthority:aws-signer": [` + q(cert) + `]}
`))
	if err != nil {
		t.Fatalf("a full requireSignature must load: %v", err)
	}
	p := cfg.Environments["prod"].RequireSignature
	if p == nil || !p.Any || len(p.Require) != 5 {
		t.Fatalf("requireSignature = %+v", p)
	}
	if got := p.Require[1].Label(1); got != "cosignKey #2" {
		t.Errorf("unnamed requirement label = %q", got)
	}
	if cfg.Environments["dev"].RequireSignature != nil {
		t.Error("dev sets no requireSignature: nil means none required")
	}
}

func TestRequireSignatureNamesTheField(t *testing.T) {
	pub, cert := testPEMs(t)
	const f = "environments.prod.requireSignature"
	keyless := func(extra string) string {
		return "        - cosignKeyless: {trustedRoot: " + q(trustedRootJSON) + extra + "}\n"
	}
	tests := []struct {
		name, require, field, message string
	}{
		{"no signers", "", f + ".require", "at least one"},
		{"no kind", "        - name: ci\n", f + ".require[0]", "set one of"},
		{"two kinds", "        - {cosignKey: {publicKey: " + q(pub) + "}, notation: {trustPolicy: {}}}\n", f + ".require[0]", "sets 2 of"},
		{"duplicate names", "        - {name: ci, cosignKey: {publicKey: " + q(pub) + "}}\n        - {name: ci, cosignKey: {publicKey: " + q(pub) + "}}\n", f + ".require[1].name", "also the name of require[0]"},
		{"empty key", "        - cosignKey: {}\n", f + ".require[0].cosignKey", "set publicKey"},
		{"not PEM", "        - cosignKey: {publicKey: \"-----BEGIN nonsense\"}\n", f + ".require[0].cosignKey.publicKey", "no PEM block"},
		{"missing key file", "        - cosignKey: {publicKey: /nonexistent/cosign.pub}\n", f + ".require[0].cosignKey.publicKey", "read PEM file"},
		{"certificate as key", "        - cosignKey: {publicKey: " + q(cert) + "}\n", f + ".require[0].cosignKey.publicKey", "not a PKIX public key"},
		{"bad kms arn", "        - cosignKey: {kmsKey: alias/foo}\n", f + ".require[0].cosignKey.kmsKey", "KMS key or alias ARN"},
		{"keyless without identity", keyless(", issuer: https://issuer"), f + ".require[0].cosignKeyless.subject", "is required"},
		{"keyless both forms", keyless(", issuer: x, subject: a, subjectRegExp: b"), f + ".require[0].cosignKeyless.subject", "not both"},
		{"keyless bad regexp", keyless(", issuer: x, subjectRegExp: \"([\""), f + ".require[0].cosignKeyless.subjectRegExp", "does not compile"},
		{"keyless bad glob", keyless(", issuer: x, subject: \"a[b\""), f + ".require[0].cosignKeyless.subject", "only * "},
		{"keyless no root", "        - cosignKeyless: {issuer: x, subject: y}\n", f + ".require[0].cosignKeyless.trustedRoot", "is required"},
		{"keyless root not a root", "        - cosignKeyless: {issuer: x, subject: y, trustedRoot: '{\"mediaType\": \"x\"}'}\n", f + ".require[0].cosignKeyless.trustedRoot", "not a Sigstore trusted root"},
		{"notation skip", "        - notation: {trustPolicy: " + notationPolicy("ca:x", "skip") + ", trustStore: {\"ca:x\": [" + q(cert) + "]}}\n", f + ".require[0].notation.trustPolicy.trustPolicies[0].signatureVerification.level", "skip"},
		{"notation unknown store", "        - notation: {trustPolicy: " + notationPolicy("ca:y", "strict") + ", trustStore: {\"ca:x\": [" + q(cert) + "]}}\n", f + ".require[0].notation.trustPolicy.trustPolicies[0].trustStores", `"ca:y"`},
		{"notation version", "        - notation: {trustPolicy: {version: \"2.0\", trustPolicies: []}}\n", f + ".require[0].notation.trustPolicy.version", "2.0"},
		{"notation bad store name", "        - notation: {trustPolicy: " + notationPolicy("ca:x", "strict") + ", trustStore: {\"ca:x\": [" + q(cert) + "], \"x509:y\": [" + q(cert) + "]}}\n", f + ".require[0].notation.trustStore.x509:y", "<type>:<name>"},
		{"notation key as cert", "        - notation: {trustPolicy: " + notationPolicy("ca:x", "strict") + ", trustStore: {\"ca:x\": [" + q(pub) + "]}}\n", f + ".require[0].notation.trustStore.ca:x[0]", "no PEM CERTIFICATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := minimal + "    requireSignature:\n      require:\n" + tt.require
			if tt.require == "" {
				src = minimal + "    requireSignature: {require: []}\n"
			}
			_, err := Parse([]byte(src))
			if err == nil {
				t.Fatal("want an error")
			}
			var fe *FieldError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) {
				t.Fatalf("want a FieldError wrapping ErrInvalid, got %v", err)
			}
			if !strings.Contains(err.Error(), tt.field+": ") || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q should name %q and say %q", err, tt.field, tt.message)
			}
		})
	}
}

func TestRequireSignatureUnknownKeyRefused(t *testing.T) {
	_, err := Parse([]byte(minimal + "    requireSignature: {require: [{cosignKey: {publicKeys: [x]}}]}\n"))
	if err == nil || !strings.Contains(err.Error(), "publicKeys") {
		t.Fatalf("a misspelt key must be refused by name, got %v", err)
	}
}

func TestGlobRegExp(t *testing.T) {
	for _, tt := range []struct {
		glob, s string
		want    bool
	}{
		{"https://github.com/acme/*", "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main", true},
		{"https://github.com/acme/*", "https://github.com/acme-evil/app", false},
		{"ci@acme.example", "ci@acme.example", true},
		{"ci@acme.example", "ci@acmeXexample", false},
		{"a?c", "abc", true},
	} {
		if got := matchRE(GlobRegExp(tt.glob), tt.s); got != tt.want {
			t.Errorf("GlobRegExp(%q) on %q = %v", tt.glob, tt.s, got)
		}
	}
}

func matchRE(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
