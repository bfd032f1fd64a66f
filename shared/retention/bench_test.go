package retention

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// estate builds repos repositories of 100 images each, shaped like a busy CI estate:
// 16 multi-arch builds (index, two untagged children, a signature on the index),
// 24 single-platform images tagged with a commit sha, 8 SBOMs on those, 4 untagged
// leftovers; pushed over the last year, some pulled; three environments pointing at
// a current and four previous releases; one pending approval.
func estate(repos int) []Input {
	rng := rand.New(rand.NewPCG(1, 2))
	seq := 0
	next := func() string { seq++; return fmt.Sprintf("sha256:%064x", seq) }
	sha := func() string { return fmt.Sprintf("%040x", rng.Uint64()) }
	age := func() time.Time { return now.Add(-time.Duration(rng.Int64N(int64(365 * 24 * time.Hour)))) }
	ins := make([]Input, repos)
	for r := range ins {
		var images []Image
		var releasable []string
		for range 16 {
			idx, c1, c2, sig := next(), next(), next(), next()
			pushed := age()
			images = append(images,
				Image{Digest: idx, Tags: []string{sha()}, PushedAt: pushed, MediaType: mediaTypeOCIIndex, Children: []string{c1, c2}, SizeBytes: 500},
				Image{Digest: c1, PushedAt: pushed, SizeBytes: 80 << 20},
				Image{Digest: c2, PushedAt: pushed, SizeBytes: 78 << 20},
				Image{Digest: sig, PushedAt: pushed, Subject: idx, ArtifactType: cosignSig, SizeBytes: 900})
			releasable = append(releasable, idx)
		}
		for k := range 24 {
			im := Image{Digest: next(), Tags: []string{sha()}, PushedAt: age(), SizeBytes: 60 << 20}
			if rng.IntN(3) == 0 {
				im.LastPulledAt = now.Add(-time.Duration(rng.Int64N(int64(60 * 24 * time.Hour))))
			}
			images = append(images, im)
			if k < 8 {
				images = append(images, Image{Digest: next(), PushedAt: im.PushedAt, Subject: im.Digest, ArtifactType: spdx, SizeBytes: 40 << 10})
			}
		}
		for range 4 {
			images = append(images, Image{Digest: next(), PushedAt: age(), SizeBytes: 50 << 20})
		}
		rng.Shuffle(len(images), func(i, j int) { images[i], images[j] = images[j], images[i] })
		var prot Protected
		for _, env := range []string{"dev", "staging", "prod"} {
			rel := Release{Env: env, Current: releasable[rng.IntN(len(releasable))]}
			for range 4 {
				rel.Previous = append(rel.Previous, releasable[rng.IntN(len(releasable))])
			}
			prot.Releases = append(prot.Releases, rel)
		}
		prot.Pending = []Pending{{Env: "prod", Digest: releasable[rng.IntN(len(releasable))]}}
		pol := basePolicy()
		pol.KeepNewest, pol.UnpulledFor, pol.ExcludeTags = 5, days(30), "^latest$"
		ins[r] = Input{Repository: fmt.Sprintf("team-%d/service", r), Images: images, Protected: prot, Policy: pol, Now: now}
	}
	return ins
}

// BenchmarkSelectEstate selects over 100,000 images in 1,000 repositories per op.
func BenchmarkSelectEstate(b *testing.B) {
	ins := estate(1000)
	images := 0
	for _, in := range ins {
		images += len(in.Images)
	}
	b.ReportAllocs()
	deleted := 0
	for b.Loop() {
		deleted = 0
		for _, in := range ins {
			res, err := Select(in)
			if err != nil {
				b.Fatal(err)
			}
			deleted += res.Deleted
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(images), "ns/image")
	b.ReportMetric(float64(deleted), "deleted/op")
}

// BenchmarkReportEstate folds 1,000 repository results (100,000 decisions) into a report.
func BenchmarkReportEstate(b *testing.B) {
	ins := estate(1000)
	results := make([]*Result, len(ins))
	for i, in := range ins {
		res, err := Select(in)
		if err != nil {
			b.Fatal(err)
		}
		results[i] = res
	}
	b.ReportAllocs()
	for b.Loop() {
		var r Report
		for _, res := range results {
			r.Add(res)
		}
		r.Sort()
	}
}
