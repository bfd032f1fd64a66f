// Package ocitest builds OCI content and registries for tests and benchmarks of the copy engine:
// deterministic multi-platform indexes, OCI 1.1 referrers and cosign tag-schema artifacts,
// in-process registries, and a fault-injecting proxy.
package ocitest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media and artifact types used by the fixtures.
const (
	EmptyMediaType        types.MediaType = "application/vnd.oci.empty.v1+json"
	SBOMArtifactType                      = "application/spdx+json"
	SignatureArtifactType                 = "application/vnd.dev.cosign.artifact.sig.v1+json"
	CosignSignatureLayer  types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	InTotoLayer           types.MediaType = "application/vnd.dsse.envelope.v1+json"
)

// RandomBytes returns n bytes from a ChaCha8 stream seeded with seed: incompressible and reproducible.
func RandomBytes(seed uint64, n int64) []byte {
	var key [32]byte
	for i := range 4 {
		key[i*8] = byte(seed >> (8 * i))
		key[i*8+1] = byte(i)
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b) // never fails
	return b
}

// gzipStored wraps b in a valid gzip stream without compressing it (random bytes would not
// shrink anyway), so tools that check a +gzip layer find gzip and copy it as it is.
func gzipStored(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b) + len(b)/1000 + 64)
	zw, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression) // valid level: cannot fail
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// Platforms lists the platforms RandomIndex assigns, in order.
func Platforms() []v1.Platform {
	return []v1.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
		{OS: "linux", Architecture: "arm", Variant: "v7"},
		{OS: "linux", Architecture: "ppc64le"},
		{OS: "linux", Architecture: "s390x"},
	}
}

// RandomImage builds an OCI image for platform p with layers random layers of layerSize bytes
// each, stored in gzip streams (a little larger than layerSize).
func RandomImage(seed uint64, p v1.Platform, layers int, layerSize int64) (v1.Image, error) {
	return randomImage(seed, p, sameSizes(layers, layerSize), false)
}

func sameSizes(n int, size int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = size
	}
	return out
}

func randomImage(seed uint64, p v1.Platform, layerSizes []int64, docker bool) (v1.Image, error) {
	mt, cmt, lmt := types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer
	if docker {
		mt, cmt, lmt = types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer
	}
	img := mutate.MediaType(empty.Image, mt)
	img = mutate.ConfigMediaType(img, cmt)
	adds := make([]mutate.Addendum, 0, len(layerSizes))
	for i, size := range layerSizes {
		l := static.NewLayer(gzipStored(RandomBytes(seed*1_000_003+uint64(i), size)), lmt)
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: fmt.Sprintf("layer %d of seed %d", i, seed)}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	return mutate.ConfigFile(img, cf)
}

// RandomIndex builds an OCI index of platforms images (see Platforms), each with layersPerImage
// random layers of layerSize bytes. The same arguments always give the same digest.
func RandomIndex(seed uint64, platforms, layersPerImage int, layerSize int64) (v1.ImageIndex, error) {
	return randomIndex(seed, platforms, sameSizes(layersPerImage, layerSize), false)
}

// RandomIndexSizes is RandomIndex with layers of the given sizes, in order, in every platform
// image (each platform's layers are its own random bytes).
func RandomIndexSizes(seed uint64, platforms int, layerSizes []int64) (v1.ImageIndex, error) {
	return randomIndex(seed, platforms, layerSizes, false)
}

// RandomDockerIndex is RandomIndex with Docker media types (manifest list, schema 2).
func RandomDockerIndex(seed uint64, platforms, layersPerImage int, layerSize int64) (v1.ImageIndex, error) {
	return randomIndex(seed, platforms, sameSizes(layersPerImage, layerSize), true)
}

func randomIndex(seed uint64, platforms int, layerSizes []int64, docker bool) (v1.ImageIndex, error) {
	all := Platforms()
	if platforms < 1 || platforms > len(all) {
		return nil, fmt.Errorf("platforms must be 1..%d, got %d", len(all), platforms)
	}
	mt := types.OCIImageIndex
	if docker {
		mt = types.DockerManifestList
	}
	idx := mutate.IndexMediaType(empty.Index, mt)
	adds := make([]mutate.IndexAddendum, 0, platforms)
	for i := range platforms {
		p := all[i]
		img, err := randomImage(seed*101+uint64(i), p, layerSizes, docker)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return withoutArtifactTypes(mutate.AppendManifests(idx, adds...))
}

// plainIndex is an index whose descriptors carry no artifactType, like those docker buildx
// writes (go-containerregistry's mutate adds it; skopeo then rewrites the index).
type plainIndex struct {
	base v1.ImageIndex
	raw  []byte
	im   *v1.IndexManifest
}

func withoutArtifactTypes(idx v1.ImageIndex) (v1.ImageIndex, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	im = im.DeepCopy()
	for i := range im.Manifests {
		im.Manifests[i].ArtifactType = ""
	}
	raw, err := json.Marshal(im)
	if err != nil {
		return nil, err
	}
	return &plainIndex{base: idx, raw: raw, im: im}, nil
}

func (p *plainIndex) MediaType() (types.MediaType, error)         { return p.base.MediaType() }
func (p *plainIndex) Image(h v1.Hash) (v1.Image, error)           { return p.base.Image(h) }
func (p *plainIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) { return p.base.ImageIndex(h) }
func (p *plainIndex) RawManifest() ([]byte, error)                { return p.raw, nil }
func (p *plainIndex) IndexManifest() (*v1.IndexManifest, error)   { return p.im.DeepCopy(), nil }
func (p *plainIndex) Size() (int64, error)                        { return int64(len(p.raw)), nil }
func (p *plainIndex) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(p.raw))
	return h, err
}

// Nest wraps idx in an OCI index, as some build tools do.
func Nest(idx v1.ImageIndex) (v1.ImageIndex, error) {
	return withoutArtifactTypes(mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: idx, Descriptor: v1.Descriptor{Annotations: map[string]string{"org.example.nested": "true"}}}))
}

// Raw is a manifest as bytes with its media type, pushable with remote.Put.
type Raw struct {
	Bytes []byte
	Type  types.MediaType
}

// RawManifest implements remote.Taggable.
func (r Raw) RawManifest() ([]byte, error) { return r.Bytes, nil }

// MediaType implements remote.Taggable's media type lookup.
func (r Raw) MediaType() (types.MediaType, error) { return r.Type, nil }

// Descriptor describes r.
func (r Raw) Descriptor() v1.Descriptor {
	h, n, _ := v1.SHA256(bytes.NewReader(r.Bytes))
	return v1.Descriptor{MediaType: r.Type, Digest: h, Size: n}
}

type artifact struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Artifact is a manifest plus the blobs it needs.
type Artifact struct {
	Manifest Raw
	Blobs    [][]byte
}

// Descriptor describes the artifact's manifest.
func (a Artifact) Descriptor() v1.Descriptor { return a.Manifest.Descriptor() }

// Push uploads the artifact's blobs and then its manifest by digest (or under tag, if not empty).
func (a Artifact) Push(ctx context.Context, repo name.Repository, tag string, opts ...remote.Option) (v1.Descriptor, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	for _, b := range a.Blobs {
		if err := remote.WriteLayer(repo, static.NewLayer(b, types.OCILayer), opts...); err != nil {
			return v1.Descriptor{}, fmt.Errorf("push blob: %w", err)
		}
	}
	d := a.Descriptor()
	var ref name.Reference = repo.Digest(d.Digest.String())
	if tag != "" {
		ref = repo.Tag(tag)
	}
	if err := remote.Put(ref, a.Manifest, opts...); err != nil {
		return v1.Descriptor{}, fmt.Errorf("push manifest %s: %w", ref, err)
	}
	return d, nil
}

func blobDesc(mt types.MediaType, b []byte) v1.Descriptor {
	h, n, _ := v1.SHA256(bytes.NewReader(b))
	return v1.Descriptor{MediaType: mt, Digest: h, Size: n}
}

func newArtifact(artifactType string, subject *v1.Descriptor, layerType types.MediaType, payload []byte, ann map[string]string) Artifact {
	emptyCfg := []byte("{}")
	m := artifact{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        blobDesc(EmptyMediaType, emptyCfg),
		Layers:        []v1.Descriptor{blobDesc(layerType, payload)},
		Subject:       subject,
		Annotations:   ann,
	}
	b, _ := json.Marshal(m) // plain structs: cannot fail
	return Artifact{Manifest: Raw{Bytes: b, Type: types.OCIManifestSchema1}, Blobs: [][]byte{emptyCfg, payload}}
}

// SBOM is an OCI 1.1 SPDX artifact whose subject is subject.
func SBOM(seed uint64, subject v1.Descriptor) Artifact {
	payload := fmt.Appendf(nil, `{"spdxVersion":"SPDX-2.3","name":"fixture-%d","packages":[{"name":"random","versionInfo":"%x"}]}`, seed, RandomBytes(seed, 8))
	return newArtifact(SBOMArtifactType, &subject, "application/spdx+json", payload,
		map[string]string{"org.opencontainers.image.created": "2026-11-27T10:00:00Z"})
}

// Signature is an OCI 1.1 signature artifact whose subject is subject.
func Signature(seed uint64, subject v1.Descriptor) Artifact {
	payload := signaturePayload(seed, subject.Digest)
	return newArtifact(SignatureArtifactType, &subject, CosignSignatureLayer, payload,
		map[string]string{"dev.cosignproject.cosign/signature": fmt.Sprintf("%x", RandomBytes(seed+1, 32))})
}

func signaturePayload(seed uint64, d v1.Hash) []byte {
	return fmt.Appendf(nil, `{"critical":{"identity":{"docker-reference":"fixture"},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":{"seed":%d}}`, d.String(), seed)
}

// CosignTag returns the tag cosign's tag schema uses for subject and suffix ("sig", "att", "sbom").
func CosignTag(subject v1.Hash, suffix string) string {
	return fmt.Sprintf("%s-%s.%s", subject.Algorithm, subject.Hex, suffix)
}

// CosignArtifact is what cosign stores under CosignTag(subject, suffix): an image manifest without a subject.
func CosignArtifact(seed uint64, subject v1.Hash, suffix string) Artifact {
	switch suffix {
	case "sig":
		return newArtifact("", nil, CosignSignatureLayer, signaturePayload(seed, subject),
			map[string]string{})
	case "att":
		return newArtifact("", nil, InTotoLayer, fmt.Appendf(nil, `{"payloadType":"application/vnd.in-toto+json","payload":"%x"}`, RandomBytes(seed, 16)), nil)
	default:
		return newArtifact("", nil, "text/spdx+json", fmt.Appendf(nil, `{"spdxVersion":"SPDX-2.3","seed":%d}`, seed), nil)
	}
}
