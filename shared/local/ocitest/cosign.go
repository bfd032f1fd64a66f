package ocitest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// CosignKey is a cosign signing key made for a test or the demo: what CI would sign with.
type CosignKey struct{ key *ecdsa.PrivateKey }

// NewCosignKey makes a P-256 key, cosign's default.
func NewCosignKey() (*CosignKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &CosignKey{key: k}, nil
}

// PublicPEM is the public key as requireSignature's cosignKey.publicKey takes it.
func (k *CosignKey) PublicPEM() (string, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.key.PublicKey)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// Sign pushes a cosign signature of subject in the tag schema (sha256-<hex>.sig), as
// `cosign sign --key` does: a simple-signing payload naming the digest, signed with ECDSA
// over its SHA-256, in the layer's dev.cosignproject.cosign/signature annotation.
func (k *CosignKey) Sign(ctx context.Context, repo name.Repository, subject v1.Hash, opts ...remote.Option) (v1.Descriptor, error) {
	payload := []byte(fmt.Sprintf(`{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`,
		repo.String(), subject.String()))
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, sum[:])
	if err != nil {
		return v1.Descriptor{}, err
	}
	cfg := []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)
	desc := func(mt types.MediaType, b []byte) v1.Descriptor {
		h, n, _ := v1.SHA256(bytes.NewReader(b))
		return v1.Descriptor{MediaType: mt, Digest: h, Size: n}
	}
	layer := desc("application/vnd.dev.cosign.simplesigning.v1+json", payload)
	layer.Annotations = map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)}
	raw, err := json.Marshal(artifact{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: desc(types.OCIConfigJSON, cfg), Layers: []v1.Descriptor{layer}})
	if err != nil {
		return v1.Descriptor{}, err
	}
	a := Artifact{Manifest: Raw{Bytes: raw, Type: types.OCIManifestSchema1}, Blobs: [][]byte{cfg, payload}}
	return a.Push(ctx, repo, subject.Algorithm+"-"+subject.Hex+".sig", opts...)
}
