package retention

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// genInput draws a repository: plain images, indexes (nested, sharing children, some
// listing manifests not in the repository), OCI referrers and cosign tag-scheme
// referrers (of images, indexes, children and other referrers), tags, push and pull
// times, release pointers, pending approvals and a policy. References only point at
// earlier images, as content addressing guarantees.
func genInput(t *rapid.T, minImages, maxImages int) Input {
	n := rapid.IntRange(minImages, maxImages).Draw(t, "images")
	digest := func(i int) string { return fmt.Sprintf("sha256:%064x", i+1) }
	absent := func() string { return digest(100000 + rapid.IntRange(0, 3).Draw(t, "absent")) }
	earlierOrAbsent := func(i int) string {
		if i == 0 || rapid.IntRange(0, 7).Draw(t, "dangling") == 0 {
			return absent()
		}
		return digest(rapid.IntRange(0, i-1).Draw(t, "ref"))
	}
	tagPool := []string{"v1", "v2", "v3.1", "latest", "stable", "pr-1", "pr-2", "rc-1", "keep-me", "amd64", "dev", "x"}
	used := map[string]bool{}
	addTag := func(im *Image, tag string) {
		if !used[tag] {
			used[tag] = true
			im.Tags = append(im.Tags, tag)
		}
	}

	images := make([]Image, n)
	for i := range n {
		im := Image{Digest: digest(i), SizeBytes: rapid.Int64Range(0, 1<<30).Draw(t, "size")}
		if rapid.IntRange(0, 29).Draw(t, "has-date") != 0 {
			// -2 days (clock skew) to 200 days, hour resolution, so ages land on and
			// around every policy boundary.
			im.PushedAt = now.Add(-time.Duration(rapid.IntRange(-48, 200*24).Draw(t, "age-hours")) * time.Hour)
		}
		if rapid.Bool().Draw(t, "pulled") {
			im.LastPulledAt = now.Add(-time.Duration(rapid.IntRange(0, 200*24).Draw(t, "pull-hours")) * time.Hour)
		}
		for range rapid.IntRange(0, 2).Draw(t, "tags") {
			addTag(&im, rapid.SampledFrom(tagPool).Draw(t, "tag"))
		}
		switch kind := rapid.IntRange(0, 9).Draw(t, "kind"); {
		case kind >= 4 && kind <= 6:
			im.MediaType = rapid.SampledFrom([]string{mediaTypeOCIIndex, mediaTypeDockerList}).Draw(t, "index-type")
			im.Children = []string{}
			for range rapid.IntRange(0, min(4, i+1)).Draw(t, "children") {
				im.Children = append(im.Children, earlierOrAbsent(i))
			}
		case kind == 7 || kind == 8:
			im.Subject = earlierOrAbsent(i)
			im.ArtifactType = rapid.SampledFrom([]string{cosignSig, spdx, inToto, "application/x-other"}).Draw(t, "artifact")
		case kind == 9:
			subject := earlierOrAbsent(i)
			suffix := rapid.SampledFrom([]string{"sig", "att", "sbom"}).Draw(t, "suffix")
			addTag(&im, "sha256-"+strings.TrimPrefix(subject, "sha256:")+"."+suffix)
		default:
			im.MediaType = "application/vnd.oci.image.manifest.v1+json"
		}
		images[i] = im
	}

	pick := func() string {
		if n == 0 || rapid.IntRange(0, 9).Draw(t, "pick-absent") == 0 {
			return absent()
		}
		return digest(rapid.IntRange(0, n-1).Draw(t, "pick"))
	}
	envs := []string{"dev", "staging", "prod"}
	var prot Protected
	for _, env := range envs {
		if !rapid.Bool().Draw(t, "has-"+env) {
			continue
		}
		r := Release{Env: env, Current: pick()}
		for range rapid.IntRange(0, 4).Draw(t, "previous") {
			r.Previous = append(r.Previous, pick())
		}
		prot.Releases = append(prot.Releases, r)
	}
	for range rapid.IntRange(0, 3).Draw(t, "pending") {
		prot.Pending = append(prot.Pending, Pending{Env: rapid.SampledFrom(envs).Draw(t, "pending-env"), Digest: pick()})
	}

	pol := Policy{
		MaxAge:         days(rapid.IntRange(1, 120).Draw(t, "max-age")),
		UntaggedMaxAge: days(rapid.IntRange(1, 30).Draw(t, "untagged-max-age")),
		KeepNewest:     rapid.IntRange(0, 4).Draw(t, "keep-newest"),
		KeepReleases:   rapid.IntRange(1, 4).Draw(t, "keep-releases"),
		IncludeTags:    rapid.SampledFrom([]string{"", "^v", "pr|rc", "^sha256-"}).Draw(t, "include"),
		ExcludeTags:    rapid.SampledFrom([]string{"", "^keep", "^latest$", "stable"}).Draw(t, "exclude"),
	}
	if rapid.Bool().Draw(t, "unpulled") {
		pol.UnpulledFor = days(rapid.IntRange(1, 60).Draw(t, "unpulled-for"))
	}
	return Input{Repository: "app", Images: images, Protected: prot, Policy: pol, Now: now}
}

func TestSelectProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t, 0, 40)
		size := rapid.IntRange(1, 5).Draw(t, "batch-size")
		res, err := selectBatched(in, size)
		if err != nil {
			t.Fatalf("valid input refused: %v", err)
		}
		checkInvariants(t, in, res, size)
		checkSecondSweepDeletesNothing(t, in, res)
		checkOrderIndependent(t, in, res, size)

		full, err := Select(in)
		if err != nil {
			t.Fatal(err)
		}
		if diff := gocmp.Diff(withoutBatches(res), withoutBatches(full)); diff != "" {
			t.Fatalf("batch size changed decisions (-size %d +size %d):\n%s", size, MaxBatch, diff)
		}
		checkOrder(t, in.Images, full, MaxBatch)
	})
}

// TestSelectPropertiesLarge exercises the real 100-id cap with repositories of hundreds of images.
func TestSelectPropertiesLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large random repositories under -short")
	}
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t, 150, 400)
		res, err := Select(in)
		if err != nil {
			t.Fatalf("valid input refused: %v", err)
		}
		checkInvariants(t, in, res, MaxBatch)
		checkSecondSweepDeletesNothing(t, in, res)
	})
}

func withoutBatches(r *Result) *Result {
	c := *r
	c.Batches = nil
	c.Decisions = slices.Clone(r.Decisions)
	for i := range c.Decisions {
		c.Decisions[i].Batch = 0
	}
	return &c
}

func checkInvariants(t *rapid.T, in Input, res *Result, size int) {
	byDigest := map[string]Decision{}
	for _, dec := range res.Decisions {
		if _, dup := byDigest[dec.Digest]; dup {
			t.Fatalf("%s decided twice", dec.Digest)
		}
		byDigest[dec.Digest] = dec
		prefix := map[Action]string{Keep: "kept: ", Delete: "delete: "}[dec.Action]
		if prefix == "" || dec.Code == "" || !strings.HasPrefix(dec.Reason, prefix) {
			t.Fatalf("%s: malformed decision %+v", dec.Digest, dec)
		}
	}
	images := map[string]Image{}
	var bytes int64
	for _, im := range in.Images {
		images[im.Digest] = im
		if _, ok := byDigest[im.Digest]; !ok {
			t.Fatalf("%s got no decision", im.Digest)
		}
		if byDigest[im.Digest].Action == Delete {
			bytes += im.SizeBytes
		}
	}
	if len(byDigest) != len(in.Images) {
		t.Fatalf("%d decisions for %d images", len(byDigest), len(in.Images))
	}
	if res.Kept+res.Deleted != len(in.Images) || res.BytesReclaimedUpperBound != bytes {
		t.Fatalf("totals kept %d deleted %d bytes %d; want %d images, %d bytes", res.Kept, res.Deleted, res.BytesReclaimedUpperBound, len(in.Images), bytes)
	}
	kept := func(dg string) bool { dec, ok := byDigest[dg]; return ok && dec.Action == Keep }
	deleted := func(dg string) bool { dec, ok := byDigest[dg]; return ok && dec.Action == Delete }

	// Protected images are never selected, and say why they stay.
	protected := map[string]bool{}
	for _, r := range in.Protected.Releases {
		protected[r.Current] = true
		for k, dg := range r.Previous {
			if k+1 < in.Policy.KeepReleases {
				protected[dg] = true
			}
		}
	}
	for _, p := range in.Protected.Pending {
		protected[p.Digest] = true
	}
	for dg := range protected {
		if dec, ok := byDigest[dg]; ok && !slices.Contains([]Code{CodeReleaseCurrent, CodeReleasePrevious, CodePendingApproval}, dec.Code) {
			t.Fatalf("protected %s decided %s %s", dg, dec.Action, dec.Reason)
		}
	}
	exclude := regexp.MustCompile(in.Policy.ExcludeTags)
	include := regexp.MustCompile(in.Policy.IncludeTags)
	for _, im := range in.Images {
		if in.Policy.ExcludeTags != "" && slices.ContainsFunc(im.Tags, exclude.MatchString) && !kept(im.Digest) {
			t.Fatalf("%s has a tag matching excludeTags but is deleted", im.Digest)
		}
	}

	// The newest KeepNewest tagged candidates are kept.
	var cands []Image
	for _, im := range in.Images {
		if len(im.Tags) > 0 && subjectOf(im) == "" && !im.PushedAt.IsZero() &&
			(in.Policy.IncludeTags == "" || slices.ContainsFunc(im.Tags, include.MatchString)) {
			cands = append(cands, im)
		}
	}
	slices.SortFunc(cands, func(a, b Image) int {
		return cmp.Or(b.PushedAt.Compare(a.PushedAt), strings.Compare(a.Digest, b.Digest))
	})
	for _, im := range cands[:min(len(cands), in.Policy.KeepNewest)] {
		if !kept(im.Digest) {
			t.Fatalf("%s is among the newest %d tagged but deleted: %s", im.Digest, in.Policy.KeepNewest, byDigest[im.Digest].Reason)
		}
	}

	parents := map[string][]string{}
	for _, im := range in.Images {
		for _, c := range im.Children {
			if _, ok := images[c]; ok && !slices.Contains(parents[c], im.Digest) {
				parents[c] = append(parents[c], im.Digest)
			}
		}
	}
	for _, im := range in.Images {
		dec := byDigest[im.Digest]
		// A kept index keeps every child it lists (applied at each level: transitive).
		if kept(im.Digest) {
			for _, c := range im.Children {
				if deleted(c) {
					t.Fatalf("kept index %s lost child %s: %s", im.Digest, c, byDigest[c].Reason)
				}
			}
		}
		// A referrer and its subject share their fate: no orphans, no lost signatures.
		if s := subjectOf(im); s != "" {
			if _, present := images[s]; present && kept(s) != kept(im.Digest) {
				t.Fatalf("referrer %s (%s) and its subject %s (%s) differ", im.Digest, dec.Reason, s, byDigest[s].Reason)
			}
		}

		// An untagged child stays only because something keeps it, never for its own age:
		// when its last parent goes, it goes too.
		if len(im.Tags) == 0 && len(parents[im.Digest]) > 0 && kept(im.Digest) &&
			!slices.Contains([]Code{CodeReleaseCurrent, CodeReleasePrevious, CodePendingApproval, CodeChildOfKept, CodeReferrerOfKept, CodeSubjectOfKept}, dec.Code) {
			t.Fatalf("untagged child %s of deleted indexes kept on its own: %s", im.Digest, dec.Reason)
		}

		// Each reason is true of the image.
		switch dec.Code {
		case CodeExpired, CodeUntaggedExpired:
			limit := in.Policy.MaxAge
			if len(im.Tags) == 0 {
				limit = in.Policy.UntaggedMaxAge
			}
			if (dec.Code == CodeUntaggedExpired) != (len(im.Tags) == 0) || im.PushedAt.IsZero() || in.Now.Sub(im.PushedAt) <= limit.D() {
				t.Fatalf("%s deleted for age but pushed %v with policy %s: %s", im.Digest, im.PushedAt, limit, dec.Reason)
			}
			if in.Policy.UnpulledFor > 0 && !im.LastPulledAt.IsZero() && in.Now.Sub(im.LastPulledAt) <= in.Policy.UnpulledFor.D() {
				t.Fatalf("%s deleted though pulled %v: %s", im.Digest, im.LastPulledAt, dec.Reason)
			}
			if subjectOf(im) != "" && images[subjectOf(im)].Digest != "" {
				t.Fatalf("referrer %s judged by its own age", im.Digest)
			}
		case CodeChildOfDeleted:
			if len(im.Tags) > 0 || !slices.Contains(parents[im.Digest], dec.Related) {
				t.Fatalf("%s: %s, but it is tagged or not a child of %s", im.Digest, dec.Reason, dec.Related)
			}
			for _, p := range parents[im.Digest] {
				if !deleted(p) {
					t.Fatalf("%s deleted as child of deleted index though parent %s is kept", im.Digest, p)
				}
			}
		case CodeReferrerOfDeleted:
			if subjectOf(im) != dec.Related || !deleted(dec.Related) {
				t.Fatalf("%s: %s, but its subject is %s", im.Digest, dec.Reason, subjectOf(im))
			}
		case CodeChildOfKept:
			if !kept(dec.Related) || !slices.Contains(parents[im.Digest], dec.Related) {
				t.Fatalf("%s: %s, but %s is not a kept parent", im.Digest, dec.Reason, dec.Related)
			}
		case CodeReferrerOfKept:
			if subjectOf(im) != dec.Related || !kept(dec.Related) {
				t.Fatalf("%s: %s, but its subject is %s", im.Digest, dec.Reason, subjectOf(im))
			}
		case CodeSubjectOfKept:
			if subjectOf(images[dec.Related]) != im.Digest || !kept(dec.Related) {
				t.Fatalf("%s: %s, but %s is not a kept referrer of it", im.Digest, dec.Reason, dec.Related)
			}
		}
		// Closure reasons lead, step by step, to an image kept for its own sake.
		seen := map[string]bool{}
		for cur := dec; cur.Code == CodeChildOfKept || cur.Code == CodeReferrerOfKept || cur.Code == CodeSubjectOfKept; cur = byDigest[cur.Related] {
			if seen[cur.Digest] {
				t.Fatalf("%s: circular explanation through %s", im.Digest, cur.Digest)
			}
			seen[cur.Digest] = true
		}
	}
	checkOrder(t, in.Images, res, size)
}

// After deleting what was selected, the same sweep at the same time deletes nothing.
func checkSecondSweepDeletesNothing(t *rapid.T, in Input, res *Result) {
	keep := map[string]bool{}
	for _, dec := range res.Decisions {
		keep[dec.Digest] = dec.Action == Keep
	}
	again := in
	again.Images = slices.DeleteFunc(slices.Clone(in.Images), func(im Image) bool { return !keep[im.Digest] })
	res2, err := Select(again)
	if err != nil {
		t.Fatalf("second sweep refused: %v", err)
	}
	if res2.Deleted != 0 {
		for _, dec := range res2.Decisions {
			if dec.Action == Delete {
				t.Errorf("second sweep deletes %s: %s (first said %s)", dec.Digest, dec.Reason, decisionOf(res, dec.Digest).Reason)
			}
		}
		t.FailNow()
	}
}

func decisionOf(res *Result, dg string) Decision {
	for _, dec := range res.Decisions {
		if dec.Digest == dg {
			return dec
		}
	}
	return Decision{}
}

// The same repository listed in any order, with tags, children and protections in any
// order, gets exactly the same result.
func checkOrderIndependent(t *rapid.T, in Input, res *Result, size int) {
	sh := in
	sh.Images = rapid.Permutation(in.Images).Draw(t, "shuffled-images")
	for i := range sh.Images {
		im := &sh.Images[i]
		if len(im.Tags) > 1 {
			im.Tags = rapid.Permutation(im.Tags).Draw(t, "shuffled-tags")
		}
		if len(im.Children) > 1 {
			im.Children = rapid.Permutation(im.Children).Draw(t, "shuffled-children")
		}
	}
	if len(in.Protected.Releases) > 1 {
		sh.Protected.Releases = rapid.Permutation(in.Protected.Releases).Draw(t, "shuffled-releases")
	}
	if len(in.Protected.Pending) > 1 {
		sh.Protected.Pending = rapid.Permutation(in.Protected.Pending).Draw(t, "shuffled-pending")
	}
	res2, err := selectBatched(sh, size)
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(res, res2); diff != "" {
		t.Fatalf("input order changed the result (-listed +shuffled):\n%s", diff)
	}
}
