package retention

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/regflow/regflow/shared/regflow"
)

func sampleResults(t *testing.T) []*Result {
	t.Helper()
	api, err := Select(Input{
		Repository: "api",
		Images: []Image{
			index("idx", 200, []string{d("c1")}, "v1"), img("c1", 200),
			img("cur", 300, "v0"), img("young", 3, "v2", "latest", "x", "y"),
		},
		Protected: Protected{Releases: []Release{{Env: "prod", Current: d("cur")}}},
		Policy:    basePolicy(),
		Now:       now,
	})
	if err != nil {
		t.Fatal(err)
	}
	big := img("old", 100, "a")
	big.SizeBytes = 3 << 30 // a big image, to show units
	web, err := Select(Input{
		Repository: "web\tbad",
		Images:     []Image{big, img("u", 20)},
		Policy:     basePolicy(),
		Now:        now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return []*Result{api, web}
}

func TestReportCountsAndJSON(t *testing.T) {
	rs := sampleResults(t)
	var r Report
	r.DryRun = true
	for _, res := range rs {
		r.Add(res)
	}
	r.AddFailure("broken", errors.New("image sha256:x is listed twice"))

	if r.Repositories != 2 || r.Images != 6 || r.Kept != 2 || r.Deleted != 4 || r.Batches != 3 {
		t.Errorf("totals = %d repos, %d images, %d kept, %d deleted, %d batches", r.Repositories, r.Images, r.Kept, r.Deleted, r.Batches)
	}
	if want := int64(300 + 1000 + 3<<30 + 1000); r.BytesReclaimedUpperBound != want {
		t.Errorf("bytes = %d, want %d", r.BytesReclaimedUpperBound, want)
	}
	// Deletions first, then by frequency, then by code.
	want := []ReasonCount{
		{Action: Delete, Code: CodeExpired, Images: 2, Bytes: 300 + 3<<30},
		{Action: Delete, Code: CodeChildOfDeleted, Images: 1, Bytes: 1000},
		{Action: Delete, Code: CodeUntaggedExpired, Images: 1, Bytes: 1000},
		{Action: Keep, Code: CodeReleaseCurrent, Images: 1, Bytes: 1000},
		{Action: Keep, Code: CodeYoung, Images: 1, Bytes: 1000},
	}
	if diff := gocmp.Diff(want, r.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}

	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(r, back); diff != "" {
		t.Errorf("JSON round trip changed the report:\n%s", diff)
	}
	for _, key := range []string{`"bytesReclaimedUpperBound"`, `"dryRun":true`, `"code":"child-of-deleted"`, `"failed":[{"repository":"broken"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func TestReportMergeEqualsAdd(t *testing.T) {
	rs := sampleResults(t)
	var whole Report
	whole.Add(rs[0])
	whole.Add(rs[1])
	whole.Sort()

	// Two workers, finishing in the other order.
	var a, b Report
	a.Add(rs[1])
	b.Add(rs[0])
	a.Merge(&b)
	a.Sort()
	if diff := gocmp.Diff(whole, a); diff != "" {
		t.Errorf("merged report differs from one built in a single pass:\n%s", diff)
	}
}

func TestReportTable(t *testing.T) {
	var r Report
	r.DryRun = true
	for _, res := range sampleResults(t) {
		r.Add(res)
	}
	r.AddFailure("broken", errors.New("image sha256:x is listed\ttwice"))
	var out strings.Builder
	if err := r.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	want := `Retention sweep at 2025-06-01T12:00:00Z (dry run: nothing deleted)
2 repositories, 6 images: 2 kept, 4 deleted in 3 batches; at most 3.0 GiB reclaimed (layers shared between images count once per image, so this is an upper bound)

ACTION  REASON            IMAGES  SIZE
delete  expired           2       3.0 GiB
delete  child-of-deleted  1       1000 B
delete  untagged-expired  1       1000 B
keep    release-current   1       1000 B
keep    young             1       1000 B

FAILED REPOSITORY  ERROR
broken             image sha256:x is listed twice

REPOSITORY  DIGEST                TAGS            PUSHED      SIZE     BATCH  DECISION
api         sha256:c66a8eb7e6a7…  v1              2024-11-13  300 B    1      delete: pushed 200 days ago (policy 90d)
api         sha256:d0f631ca1ddb…  -               2024-11-13  1000 B   2      delete: child of deleted index sha256:c66a8eb7e6a7…
api         sha256:dbba921ce205…  latest,v2,x,+1  2025-05-29  1000 B   -      kept: pushed 3 days ago (policy 90d)
api         sha256:b3ca0b199c8a…  v0              2024-08-05  1000 B   -      kept: prod current
web bad     sha256:0bfe935e70c3…  -               2025-05-12  1000 B   1      delete: untagged, pushed 20 days ago (policy 14d)
web bad     sha256:cba06b5736fa…  a               2025-02-21  3.0 GiB  1      delete: pushed 100 days ago (policy 90d)
`
	// The digests above are sha256 of the test names.
	for _, n := range []string{"idx", "c1", "young", "cur", "old", "u"} {
		if !strings.Contains(want, ab(n)) {
			t.Fatalf("golden table lacks %s", n)
		}
	}
	if got := out.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestReportSummary(t *testing.T) {
	var r Report
	for _, res := range sampleResults(t) {
		r.Add(res)
	}
	if got, want := r.Summary(), "Deleting 4 of 6 images in 2 repositories, at most 3.0 GiB"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	r.DryRun = true
	r.AddFailure("x", errors.New("boom"))
	if got, want := r.Summary(), "Dry run: would delete 4 of 6 images in 2 repositories, at most 3.0 GiB; 1 repository could not be judged"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {5 << 20, "5.0 MiB"},
		{3 << 30, "3.0 GiB"}, {1 << 40, "1.0 TiB"}, {1 << 62, "4.0 EiB"}, {-5, "-5 B"},
	} {
		if got := regflow.Bytes(tc.n); got != tc.want {
			t.Errorf("regflow.Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
