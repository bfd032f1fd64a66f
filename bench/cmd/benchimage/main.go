// Command benchimage pushes the benchmark image: a random multi-platform OCI index
// (incompressible layers, reproducible from -seed), optionally with a signature and an SBOM
// referrer (OCI subject) and a cosign-style .sig tag. It prints the index digest.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

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
	sizes := flag.String("layer-sizes", "", "mixed layer sizes per platform image, e.g. 20x100Ki,8x5Mi,2x50Mi (overrides -layers and -layer-size)")
	seed := flag.Uint64("seed", 1, "random seed")
	referrers := flag.Bool("referrers", true, "attach a signature, an SBOM and a cosign .sig tag")
	flag.Parse()
	layerSizes, err := parseSizes(*sizes, *layers, *size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchimage:", err)
		os.Exit(2)
	}
	if err := run(*ref, *platforms, layerSizes, *seed, *referrers); err != nil {
		fmt.Fprintln(os.Stderr, "benchimage:", err)
		os.Exit(1)
	}
}

// parseSizes reads "<count>x<size>[Ki|Mi]" groups, or repeats size layers times when spec is empty.
func parseSizes(spec string, layers int, size int64) ([]int64, error) {
	if spec == "" {
		out := make([]int64, layers)
		for i := range out {
			out[i] = size
		}
		return out, nil
	}
	var out []int64
	for _, group := range strings.Split(spec, ",") {
		count, sz, ok := strings.Cut(strings.TrimSpace(group), "x")
		n, err := strconv.Atoi(count)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("-layer-sizes group %q: want <count>x<size>", group)
		}
		mult := int64(1)
		switch {
		case strings.HasSuffix(sz, "Ki"):
			mult, sz = 1<<10, strings.TrimSuffix(sz, "Ki")
		case strings.HasSuffix(sz, "Mi"):
			mult, sz = 1<<20, strings.TrimSuffix(sz, "Mi")
		}
		b, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || b < 1 {
			return nil, fmt.Errorf("-layer-sizes group %q: bad size", group)
		}
		for range n {
			out = append(out, b*mult)
		}
	}
	return out, nil
}

func run(ref string, platforms int, layerSizes []int64, seed uint64, referrers bool) error {
	ctx := context.Background()
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("-ref %q: %w", ref, err)
	}
	idx, err := ocitest.RandomIndexSizes(seed, platforms, layerSizes)
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
