package retention

import (
	"fmt"
	"regexp"
	"slices"
	"testing"
)

func TestDeletionBatches(t *testing.T) {
	// names turns batches of test names into batches of digests.
	names := func(batches ...[]string) [][]string {
		out := make([][]string, len(batches))
		for k, b := range batches {
			for _, n := range b {
				out[k] = append(out[k], d(n))
			}
			slices.Sort(out[k])
		}
		return out
	}
	many := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s-%d", prefix, i)
		}
		return out
	}

	tests := []struct {
		name   string
		images []Image
		want   [][]string // exact batches, when the shape has a single best answer
		count  int        // else the number of batches expected
	}{
		{
			name: "referrer, then index, then children",
			images: []Image{
				index("idx", 200, []string{d("c1"), d("c2")}, "v1"), img("c1", 200), img("c2", 200),
				referrer("sig", 200, d("idx"), cosignSig),
			},
			want: names([]string{"sig"}, []string{"idx"}, []string{"c1", "c2"}),
		},
		{
			name: "unrelated deletions share the first batch with the index",
			images: []Image{
				index("idx", 200, []string{d("c1")}, "v1"), img("c1", 200), img("lone", 200, "x"), img("u", 100),
			},
			want: names([]string{"idx", "lone", "u"}, []string{"c1"}),
		},
		{
			name: "nested index: three levels, three batches",
			images: []Image{
				index("top", 200, []string{d("mid")}, "v1"), index("mid", 200, []string{d("leaf")}), img("leaf", 200),
			},
			want: names([]string{"top"}, []string{"mid"}, []string{"leaf"}),
		},
		{
			name: "a deleted index's kept child is not deleted and does not wait",
			images: []Image{
				index("old", 200, []string{d("shared")}, "v1"), index("new", 1, []string{d("shared")}, "v2"), img("shared", 200),
			},
			want: names([]string{"old"}),
		},
		{
			name: "referrer of a child waits for nothing but goes before the child",
			images: []Image{
				index("idx", 200, []string{d("c")}, "v1"), img("c", 200), referrer("c-sig", 200, d("c"), cosignSig),
			},
			want: names([]string{"c-sig", "idx"}, []string{"c"}),
		},
		{
			name: "250 independent deletions: 100, 100, 50",
			images: func() []Image {
				var out []Image
				for _, n := range many("u", 250) {
					out = append(out, img(n, 100))
				}
				return out
			}(),
			count: 3,
		},
		{
			name: "120 indexes with 3 children each pack into the minimum of 5 batches",
			images: func() []Image {
				var out []Image
				for k := range 120 {
					var kids []string
					for c := range 3 {
						name := fmt.Sprintf("i%d-c%d", k, c)
						kids = append(kids, d(name))
						out = append(out, img(name, 200))
					}
					out = append(out, index(fmt.Sprintf("i%d", k), 200, kids, fmt.Sprintf("t%d", k)))
				}
				return out
			}(),
			count: 5,
		},
		{
			name:   "nothing deleted: no batches",
			images: []Image{img("young", 1, "v1")},
			want:   nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Select(Input{Repository: "app", Images: tc.images, Policy: basePolicy(), Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if tc.count == 0 {
				if !equalBatches(res.Batches, tc.want) {
					t.Errorf("batches\n got  %v\n want %v", res.Batches, tc.want)
				}
			} else if len(res.Batches) != tc.count {
				t.Errorf("%d batches, want %d (sizes %v)", len(res.Batches), tc.count, batchSizes(res.Batches))
			}
			checkOrder(t, tc.images, res, MaxBatch)
		})
	}
}

func equalBatches(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

func batchSizes(b [][]string) []int {
	out := make([]int, len(b))
	for i := range b {
		out[i] = len(b[i])
	}
	return out
}

// checkOrder verifies the batch contract against the images as given: every deleted
// image in exactly one batch of at most size ids, and anything that references it
// (index parent, referrer) and is deleted too in a strictly earlier batch.
func checkOrder(t fatalf, images []Image, res *Result, size int) {
	t.Helper()
	batchOf := map[string]int{}
	for b, batch := range res.Batches {
		if len(batch) == 0 || len(batch) > size {
			t.Fatalf("batch %d has %d ids (limit %d)", b+1, len(batch), size)
		}
		for _, dg := range batch {
			if _, dup := batchOf[dg]; dup {
				t.Fatalf("%s is in two batches", dg)
			}
			batchOf[dg] = b + 1
		}
	}
	for _, dec := range res.Decisions {
		if (dec.Action == Delete) != (batchOf[dec.Digest] > 0) {
			t.Fatalf("%s: action %s but batch %d", dec.Digest, dec.Action, batchOf[dec.Digest])
		}
		if dec.Batch != batchOf[dec.Digest] {
			t.Fatalf("%s: decision says batch %d, batches say %d", dec.Digest, dec.Batch, batchOf[dec.Digest])
		}
	}
	for _, im := range images {
		from := batchOf[im.Digest]
		if from == 0 {
			continue
		}
		refs := slices.Clone(im.Children)
		if s := subjectOf(im); s != "" {
			refs = append(refs, s)
		}
		for _, to := range refs {
			if b := batchOf[to]; b > 0 && b <= from {
				t.Fatalf("%s (batch %d) references %s, deleted in batch %d: must be later", im.Digest, from, to, b)
			}
		}
	}
}

// fatalf is what both *testing.T and *rapid.T offer.
type fatalf interface {
	Helper()
	Fatalf(format string, args ...any)
}

var cosignTag = regexp.MustCompile(`^sha256-([0-9a-f]{64})\.(sig|att|sbom)$`)

// subjectOf is the subject an image names: its subject field or, failing that, the
// first cosign-style tag (test inputs carry at most one).
func subjectOf(im Image) string {
	if im.Subject != "" {
		return im.Subject
	}
	for _, t := range im.Tags {
		if m := cosignTag.FindStringSubmatch(t); m != nil {
			return "sha256:" + m[1]
		}
	}
	return ""
}
