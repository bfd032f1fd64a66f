package signature_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/notaryproject/notation-go"
	notationsigner "github.com/notaryproject/notation-go/signer"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/signature"
	"github.com/regflow/regflow/shared/signature/ocisig"
)

// ecrEnv is one local ECR with a repository to push images and signatures to.
type ecrEnv struct {
	srv  *localecr.Server
	repo name.Repository
	opts []remote.Option
	reg  *ocisig.Registry
}

func startECR(t testing.TB) *ecrEnv {
	t.Helper()
	s, err := localecr.New(localecr.Options{Account: "111111111111", AutoCreateRepos: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	user, pass := s.Credentials()
	opts := []remote.Option{remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}))}
	repo, err := name.NewRepository(s.Host() + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	return &ecrEnv{srv: s, repo: repo, opts: opts, reg: ocisig.New(opts...)}
}

func (e *ecrEnv) target(d v1.Hash, indexes ...v1.Hash) signature.Target {
	t := signature.Target{Repository: e.repo.String(), Digest: d.String()}
	for _, ix := range indexes {
		t.Indexes = append(t.Indexes, ix.String())
	}
	return t
}

// pushImage pushes a small image by digest and returns its descriptor.
func (e *ecrEnv) pushImage(t testing.TB, seed uint64) v1.Descriptor {
	t.Helper()
	img, err := ocitest.RandomImage(seed, v1.Platform{OS: "linux", Architecture: "amd64"}, 1, 512)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(e.repo.Digest(d.String()), img, e.opts...); err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	return v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}
}

// pushIndex pushes a two-platform index and returns it and its platforms.
func (e *ecrEnv) pushIndex(t testing.TB, seed uint64) (v1.Descriptor, []v1.Descriptor) {
	t.Helper()
	idx, err := ocitest.RandomIndex(seed, 2, 1, 256)
	if err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(e.repo.Digest(d.String()), idx, e.opts...); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	raw, _ := idx.RawManifest()
	mt, _ := idx.MediaType()
	var children []v1.Descriptor
	for _, m := range im.Manifests {
		if m.Platform != nil && m.Platform.OS != "unknown" {
			children = append(children, m)
		}
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}, children
}

// manifest is an OCI manifest as the signature formats write it.
type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

func blob(mt string, b []byte) v1.Descriptor {
	h, n, _ := v1.SHA256(bytes.NewReader(b))
	return v1.Descriptor{MediaType: types.MediaType(mt), Digest: h, Size: n}
}

// push uploads blobs and the manifest (under tag, or by digest) and returns its digest.
func (e *ecrEnv) push(t testing.TB, m manifest, tag string, blobs ...[]byte) v1.Hash {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	a := ocitest.Artifact{Manifest: ocitest.Raw{Bytes: raw, Type: types.OCIManifestSchema1}, Blobs: blobs}
	d, err := a.Push(context.Background(), e.repo, tag, e.opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest
}

// --- cosign, simple-signing form ---

func simpleSigningPayload(ref string, d v1.Hash) []byte {
	return []byte(fmt.Sprintf(`{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, ref, d))
}

// cosignSig describes one cosign signature to attach.
type cosignSig struct {
	// signs is the digest written in the payload (normally the subject).
	signs   v1.Hash
	keypair sign.Keypair
	// cert and chain are PEM, for keyless.
	cert, chain string
	// referrer pushes the OCI 1.1 form (subject, artifactType) instead of the .sig tag.
	referrer bool
	// tamperPayload changes the payload after signing; tamperSig flips a signature byte.
	tamperPayload, tamperSig bool
}

// attachCosign signs and pushes a cosign simple-signing signature for subject.
func (e *ecrEnv) attachCosign(t testing.TB, subject v1.Descriptor, s cosignSig) v1.Hash {
	t.Helper()
	if s.signs == (v1.Hash{}) {
		s.signs = subject.Digest
	}
	payload := simpleSigningPayload(e.repo.String(), s.signs)
	sig, _, err := s.keypair.SignData(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if s.tamperSig {
		sig[len(sig)/2] ^= 0xff
	}
	if s.tamperPayload {
		payload = bytes.Replace(payload, []byte(`"optional":null`), []byte(`"optional":{"x":1}`), 1)
	}
	layer := blob(signature.MediaCosignSimpleSigning, payload)
	layer.Annotations = map[string]string{signature.AnnotationCosignSignature: base64.StdEncoding.EncodeToString(sig)}
	if s.cert != "" {
		layer.Annotations[signature.AnnotationCosignCertificate] = s.cert
		layer.Annotations[signature.AnnotationCosignChain] = s.chain
	}
	m := manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Layers: []v1.Descriptor{layer}}
	cfg := []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)
	tag := subject.Digest.Algorithm + "-" + subject.Digest.Hex + ".sig"
	if s.referrer {
		m.Config = blob(signature.MediaCosignSigArtifact, cfg)
		sub := subject
		m.Subject = &sub
		tag = ""
	} else {
		m.Config = blob(string(types.OCIConfigJSON), cfg)
	}
	return e.push(t, m, tag, cfg, payload)
}

// --- Sigstore bundle as an OCI 1.1 referrer ---

func inTotoStatement(d v1.Hash) []byte {
	return []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"image","digest":{"sha256":%q}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`, d.Hex))
}

// attachBundle signs a DSSE in-toto statement over signs with keypair (and a certificate,
// when cp is set) and pushes the bundle as a referrer of subject.
func (e *ecrEnv) attachBundle(t testing.TB, subject v1.Descriptor, signs v1.Hash, kp sign.Keypair, cp sign.CertificateProvider) v1.Hash {
	t.Helper()
	pb, err := sign.Bundle(&sign.DSSEData{Data: inTotoStatement(signs), PayloadType: "application/vnd.in-toto+json"}, kp, sign.BundleOptions{CertificateProvider: cp, Context: context.Background()})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	empty := []byte("{}")
	sub := subject
	m := manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		Config: blob("application/vnd.oci.empty.v1+json", empty), Layers: []v1.Descriptor{blob("application/vnd.dev.sigstore.bundle.v0.3+json", raw)},
		Subject: &sub, Annotations: map[string]string{"dev.sigstore.bundle.content": "dsse-envelope", "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1"}}
	return e.push(t, m, "", empty, raw)
}

// --- Notary Project ---

// attachNotation signs subject's descriptor (or signs, when set) with notation-go and
// pushes the signature as a referrer of subject.
func (e *ecrEnv) attachNotation(t testing.TB, subject v1.Descriptor, signs *v1.Descriptor, key crypto.PrivateKey, chain []*x509.Certificate) v1.Hash {
	t.Helper()
	s, err := notationsigner.NewGenericSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	what := subject
	if signs != nil {
		what = *signs
	}
	env, _, err := s.Sign(context.Background(), ocispec.Descriptor{MediaType: string(what.MediaType), Digest: digest.Digest(what.Digest.String()), Size: what.Size},
		notation.SignerSignOptions{SignatureMediaType: signature.MediaJWS})
	if err != nil {
		t.Fatal(err)
	}
	empty := []byte("{}")
	sub := subject
	m := manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: signature.MediaNotationSignature,
		Config: blob("application/vnd.oci.empty.v1+json", empty), Layers: []v1.Descriptor{blob(signature.MediaJWS, env)}, Subject: &sub}
	return e.push(t, m, "", empty, env)
}

// --- keys and CAs made in the test ---

func keypair(t testing.TB) *sign.EphemeralKeypair {
	t.Helper()
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func pubPEM(t testing.TB, kp *sign.EphemeralKeypair) string {
	t.Helper()
	p, err := kp.GetPublicKeyPem()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testCA is a root CA generated for the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t testing.TB, cn string) *testCA {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"regflow test"}},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: c, key: k}
}

func (ca *testCA) pem() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
}

// oidIssuerV2 is Fulcio's OIDC issuer extension (1.3.6.1.4.1.57264.1.8, a DER UTF8String).
var oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}

// leafOpts shapes a leaf certificate.
type leafOpts struct {
	san, issuer string // keyless identity (URI SAN and Fulcio issuer extension)
	subject     pkix.Name
	notBefore   time.Time
	notAfter    time.Time
}

func (ca *testCA) issue(t testing.TB, pub crypto.PublicKey, o leafOpts) *x509.Certificate {
	t.Helper()
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(time.Hour)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: o.subject, NotBefore: o.notBefore, NotAfter: o.notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, BasicConstraintsValid: true}
	if o.san != "" {
		u, err := url.Parse(o.san)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	if o.issuer != "" {
		v, err := asn1.MarshalWithParams(o.issuer, "utf8")
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidIssuerV2, Value: v}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// trustedRoot is a Sigstore trusted_root.json naming ca as the only certificate authority.
func trustedRoot(t testing.TB, ca *testCA) string {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: ca.cert, ValidityPeriodStart: ca.cert.NotBefore, URI: "https://fulcio.test"}},
		map[string]*root.TransparencyLog{}, []root.TimestampingAuthority{}, map[string]*root.TransparencyLog{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// caProvider hands sigstore-go's signer a certificate from a test CA, as Fulcio would.
type caProvider struct {
	t  testing.TB
	ca *testCA
	o  leafOpts
}

func (p caProvider) GetCertificate(_ context.Context, kp sign.Keypair, _ *sign.CertificateProviderOptions) ([]byte, error) {
	return p.ca.issue(p.t, kp.GetPublicKey(), p.o).Raw, nil
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
