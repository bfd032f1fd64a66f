// Command benchimage pushes the benchmark image: a random multi-platform OCI index
// (incompressible layers, reproducible from -seed), optionally with a signature and an SBOM
// referrer (OCI subject) and a cosign-style .sig tag. It prints the index digest.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/local/ocitest"
)

func main() {
	ref := flag.String("ref", "", "where to push, registry/repo:tag")
	platforms := flag.Int("platforms", 2, "platform images in the index")
	layers := flag.Int("layers", 10, "layers per platform image")
	size := flag.Int64("layer-size", 10<<20, "bytes per layer")
	seed := flag.Uint64("seed", 1, "random seed")
	referrers := flag.Bool("referrers", true, "attach a signature, an SBOM and a cosign .sig tag")
	flag.Parse()
	if err := run(*ref, *platforms, *layers, *size, *seed, *referrers); err != nil {
		fmt.Fprintln(os.Stderr, "benchimage:", err)
		os.Exit(1)
	}
}

func run(ref string, platforms, layers int, size int64, seed uint64, referrers bool) error {
	ctx := context.Background()
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("-ref %q: %w", ref, err)
	}
	idx, err := ocitest.RandomIndex(seed, platforms, layers, size)
	if err != nil {
		return err
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithJobs(4)}
	if err := remote.WriteIndex(tag, idx, opts...); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	if referrers {
		mt, _ := idx.MediaType()
		n, _ := idx.Size()
		subject := v1.Descriptor{MediaType: mt, Digest: d, Size: n}
		for _, a := range []ocitest.Artifact{ocitest.Signature(seed, subject), ocitest.SBOM(seed, subject)} {
			if _, err := a.Push(ctx, tag.Context(), "", opts...); err != nil {
				return err
			}
		}
		if _, err := ocitest.CosignArtifact(seed, d, "sig").Push(ctx, tag.Context(), ocitest.CosignTag(d, "sig"), opts...); err != nil {
			return err
		}
	}
	fmt.Println(d)
	return nil
}
