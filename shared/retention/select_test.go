package retention

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/config"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// d is the digest of a named test image.
func d(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ab is how reasons abbreviate the digest of a named image (written out here rather
// than calling the code under test).
func ab(name string) string { return d(name)[:len("sha256:")+12] + "…" }

func ago(days float64) time.Time { return now.Add(-time.Duration(days * float64(24*time.Hour))) }

func days(n int) config.Duration { return config.Duration(time.Duration(n) * 24 * time.Hour) }

func img(name string, pushedDaysAgo float64, tags ...string) Image {
	return Image{Digest: d(name), Tags: tags, PushedAt: ago(pushedDaysAgo), SizeBytes: 1000,
		MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: "application/vnd.oci.image.config.v1+json"}
}

func index(name string, pushedDaysAgo float64, children []string, tags ...string) Image {
	i := img(name, pushedDaysAgo, tags...)
	i.MediaType, i.ArtifactType, i.Children, i.SizeBytes = mediaTypeOCIIndex, "", children, 300
	return i
}

func referrer(name string, pushedDaysAgo float64, subject, artifactType string) Image {
	i := img(name, pushedDaysAgo)
	i.Subject, i.ArtifactType, i.SizeBytes = subject, artifactType, 50
	return i
}

func pulled(i Image, daysAgo float64) Image { i.LastPulledAt = ago(daysAgo); return i }

func basePolicy() Policy {
	return Policy{MaxAge: days(90), UntaggedMaxAge: days(14), KeepReleases: 3}
}

const (
	cosignSig = "application/vnd.dev.cosign.artifact.sig.v1+json"
	spdx      = "application/spdx+json"
	inToto    = "application/vnd.in-toto+json"
)

type want struct {
	action  Action
	code    Code
	reason  string
	related string // name of the related image, if checked
}

func TestSelectRules(t *testing.T) {
	tests := []struct {
		name      string
		policy    func(*Policy)
		images    []Image
		protected Protected
		want      map[string]want
	}{
		{
			name:   "tagged image inside max age is kept, outside deleted",
			images: []Image{img("young", 12, "a"), img("old", 123, "b")},
			want: map[string]want{
				"young": {Keep, CodeYoung, "kept: pushed 12 days ago (policy 90d)", ""},
				"old":   {Delete, CodeExpired, "delete: pushed 123 days ago (policy 90d)", ""},
			},
		},
		{
			name:   "an image exactly max age old is kept; a second older is not",
			images: []Image{img("edge", 90, "a"), {Digest: d("over"), Tags: []string{"b"}, PushedAt: ago(90).Add(-time.Second)}},
			want: map[string]want{
				"edge": {Keep, CodeYoung, "kept: pushed 90 days ago (policy 90d)", ""},
				"over": {Delete, CodeExpired, "delete: pushed 90 days ago (policy 90d)", ""},
			},
		},
		{
			name:   "ages under a day are given in hours and minutes",
			images: []Image{img("hours", 5.0/24, "a"), img("minutes", 3.0/(24*60)), img("now", 0), img("future", -2, "c")},
			want: map[string]want{
				"hours":   {Keep, CodeYoung, "kept: pushed 5 hours ago (policy 90d)", ""},
				"minutes": {Keep, CodeUntaggedYoung, "kept: untagged, pushed 3 minutes ago (policy 14d)", ""},
				"now":     {Keep, CodeUntaggedYoung, "kept: untagged, pushed less than a minute ago (policy 14d)", ""},
				"future":  {Keep, CodeYoung, "kept: pushed less than a minute ago (policy 90d)", ""},
			},
		},
		{
			name:   "unpulledFor spares recently pulled images and explains the others",
			policy: func(p *Policy) { p.UnpulledFor = days(30) },
			images: []Image{
				pulled(img("pulled", 123, "a"), 3),
				pulled(img("stale", 123, "b"), 95),
				img("never", 123, "c"),
				pulled(img("untagged-pulled", 20), 1),
				pulled(img("untagged-stale", 20), 40),
				pulled(img("young", 10, "d"), 95),
			},
			want: map[string]want{
				"pulled":          {Keep, CodeRecentlyPulled, "kept: pushed 123 days ago but pulled 3 days ago (policy: unpulled for 30d)", ""},
				"stale":           {Delete, CodeExpired, "delete: pushed 123 days ago (policy 90d), not pulled for 95 days (policy 30d)", ""},
				"never":           {Delete, CodeExpired, "delete: pushed 123 days ago (policy 90d), never pulled", ""},
				"untagged-pulled": {Keep, CodeRecentlyPulled, "kept: untagged, pushed 20 days ago but pulled 1 day ago (policy: unpulled for 30d)", ""},
				"untagged-stale":  {Delete, CodeUntaggedExpired, "delete: untagged, pushed 20 days ago (policy 14d), not pulled for 40 days (policy 30d)", ""},
				"young":           {Keep, CodeYoung, "kept: pushed 10 days ago (policy 90d)", ""},
			},
		},
		{
			name:   "without unpulledFor a recent pull does not save an expired image",
			images: []Image{pulled(img("pulled", 123, "a"), 1)},
			want:   map[string]want{"pulled": {Delete, CodeExpired, "delete: pushed 123 days ago (policy 90d)", ""}},
		},
		{
			name:   "an expired image that runs is kept with where it runs, before any pointer",
			images: []Image{img("runs", 123, "a"), img("idle", 123, "b"), img("both", 123, "c"), img("orphan", 40)},
			protected: Protected{
				Releases: []Release{{Env: "prod", Current: d("both")}},
				InUse: []InUse{
					{Digest: d("runs"), Where: "ECS service prod/web, 3 tasks"},
					{Digest: d("both"), Where: "Lambda function api:live"},
					{Digest: d("orphan"), Where: "ECS task prod/batch, 1 task"},
					{Digest: d("gone"), Where: "ECS service prod/old, 1 task"},
				},
			},
			want: map[string]want{
				"runs":   {Keep, CodeInUse, "kept: running in ECS service prod/web, 3 tasks", ""},
				"idle":   {Delete, CodeExpired, "delete: pushed 123 days ago (policy 90d)", ""},
				"both":   {Keep, CodeInUse, "kept: running in Lambda function api:live (also prod current)", ""},
				"orphan": {Keep, CodeInUse, "kept: running in ECS task prod/batch, 1 task", ""},
			},
		},
		{
			name: "a running index keeps its children; a running child does not keep its index",
			images: []Image{
				index("idx", 123, []string{d("c1")}, "v1"), img("c1", 123),
				index("idx2", 123, []string{d("c2")}, "v2"), img("c2", 123),
			},
			protected: Protected{InUse: []InUse{{Digest: d("idx"), Where: "ECS service prod/web, 1 task"}, {Digest: d("c2"), Where: "ECS service prod/arm, 1 task"}}},
			want: map[string]want{
				"idx":  {Keep, CodeInUse, "kept: running in ECS service prod/web, 1 task", ""},
				"c1":   {Keep, CodeChildOfKept, "kept: child of kept index " + ab("idx"), "idx"},
				"idx2": {Delete, CodeExpired, "delete: pushed 123 days ago (policy 90d)", ""},
				"c2":   {Keep, CodeInUse, "kept: running in ECS service prod/arm, 1 task", ""},
			},
		},
		{
			name:   "untagged images use the shorter age",
			images: []Image{img("u-young", 3), img("u-old", 20)},
			want: map[string]want{
				"u-young": {Keep, CodeUntaggedYoung, "kept: untagged, pushed 3 days ago (policy 14d)", ""},
				"u-old":   {Delete, CodeUntaggedExpired, "delete: untagged, pushed 20 days ago (policy 14d)", ""},
			},
		},
		{
			name:   "keepNewest keeps the newest tagged images whatever their age, untagged ones do not count",
			policy: func(p *Policy) { p.KeepNewest = 2 },
			images: []Image{img("t1", 300, "a"), img("t2", 200, "b"), img("t3", 100, "c"), img("u", 50), img("t4", 400, "d")},
			want: map[string]want{
				"t1": {Delete, CodeExpired, "delete: pushed 300 days ago (policy 90d)", ""},
				"t2": {Keep, CodeNewestTagged, "kept: among newest 2 tagged", ""},
				"t3": {Keep, CodeNewestTagged, "kept: among newest 2 tagged", ""},
				"u":  {Delete, CodeUntaggedExpired, "delete: untagged, pushed 50 days ago (policy 14d)", ""},
				"t4": {Delete, CodeExpired, "delete: pushed 400 days ago (policy 90d)", ""},
			},
		},
		{
			name:   "keepNewest breaks push-time ties by digest and skips signatures",
			policy: func(p *Policy) { p.KeepNewest = 1 },
			images: []Image{
				img("tie-a", 200, "a"), img("tie-b", 200, "b"),
				{Digest: d("sig"), Tags: []string{"sha256-" + strings.TrimPrefix(d("tie-a"), "sha256:") + ".sig"}, PushedAt: ago(1)},
			},
			want: func() map[string]want {
				first, second := "tie-a", "tie-b"
				if d("tie-b") < d("tie-a") {
					first, second = second, first
				}
				return map[string]want{
					first:  {Keep, CodeNewestTagged, "kept: among newest 1 tagged", ""},
					second: {Delete, CodeExpired, "delete: pushed 200 days ago (policy 90d)", ""},
				}
			}(),
		},
		{
			name:   "includeTags: only matching tagged images are candidates; untagged still expire",
			policy: func(p *Policy) { p.IncludeTags = "^pr-" },
			images: []Image{img("pr", 200, "pr-12"), img("release", 200, "v1.0.0"), img("mixed", 200, "v2", "pr-3"), img("untagged", 20)},
			want: map[string]want{
				"pr":       {Delete, CodeExpired, "delete: pushed 200 days ago (policy 90d)", ""},
				"release":  {Keep, CodeNotIncluded, "kept: no tag matches includeTags", ""},
				"mixed":    {Delete, CodeExpired, "delete: pushed 200 days ago (policy 90d)", ""},
				"untagged": {Delete, CodeUntaggedExpired, "delete: untagged, pushed 20 days ago (policy 14d)", ""},
			},
		},
		{
			name:   "includeTags narrows keepNewest to the candidates",
			policy: func(p *Policy) { p.IncludeTags = "^pr-"; p.KeepNewest = 1 },
			images: []Image{img("release", 100, "v1"), img("pr-new", 150, "pr-2"), img("pr-old", 160, "pr-1")},
			want: map[string]want{
				"release": {Keep, CodeNotIncluded, "kept: no tag matches includeTags", ""},
				"pr-new":  {Keep, CodeNewestTagged, "kept: among newest 1 tagged", ""},
				"pr-old":  {Delete, CodeExpired, "delete: pushed 160 days ago (policy 90d)", ""},
			},
		},
		{
			name:   "excludeTags keeps any image with a matching tag and names the tag",
			policy: func(p *Policy) { p.ExcludeTags = "^(latest|stable)$" },
			images: []Image{img("latest", 300, "zzz", "latest"), img("other", 300, "latest-ish")},
			want: map[string]want{
				"latest": {Keep, CodeExcludedTag, `kept: tag "latest" matches excludeTags`, ""},
				"other":  {Delete, CodeExpired, "delete: pushed 300 days ago (policy 90d)", ""},
			},
		},
		{
			name:   "release pointers: current and the previous within keepReleases are kept",
			images: []Image{img("cur", 300, "a"), img("p1", 310, "b"), img("p2", 320, "c"), img("p3", 330, "d"), img("stg", 400)},
			protected: Protected{Releases: []Release{
				{Env: "prod", Current: d("cur"), Previous: []string{d("p1"), d("p2"), d("p3")}},
				{Env: "staging", Current: d("stg")},
			}},
			want: map[string]want{
				"cur": {Keep, CodeReleaseCurrent, "kept: prod current", ""},
				"p1":  {Keep, CodeReleasePrevious, "kept: prod previous release (1 back)", ""},
				"p2":  {Keep, CodeReleasePrevious, "kept: prod previous release (2 back)", ""},
				"p3":  {Delete, CodeExpired, "delete: pushed 330 days ago (policy 90d)", ""},
				"stg": {Keep, CodeReleaseCurrent, "kept: staging current", ""},
			},
		},
		{
			name:      "keepReleases 1 protects only the current release",
			policy:    func(p *Policy) { p.KeepReleases = 1 },
			images:    []Image{img("cur", 300, "a"), img("p1", 310, "b")},
			protected: Protected{Releases: []Release{{Env: "prod", Current: d("cur"), Previous: []string{d("p1")}}}},
			want: map[string]want{
				"cur": {Keep, CodeReleaseCurrent, "kept: prod current", ""},
				"p1":  {Delete, CodeExpired, "delete: pushed 310 days ago (policy 90d)", ""},
			},
		},
		{
			name:      "pending approvals are kept, even untagged and ancient",
			images:    []Image{img("waiting", 500)},
			protected: Protected{Pending: []Pending{{Env: "prod", Digest: d("waiting")}}},
			want:      map[string]want{"waiting": {Keep, CodePendingApproval, "kept: awaiting approval for prod", ""}},
		},
		{
			name:   "several protections: the most significant leads, the rest are listed once",
			images: []Image{img("x", 500, "a")},
			protected: Protected{
				Releases: []Release{
					{Env: "staging", Current: d("x")},
					{Env: "prod", Current: d("x"), Previous: []string{d("x")}},
					{Env: "dev", Current: d("other"), Previous: []string{d("x")}},
				},
				Pending: []Pending{{Env: "qa", Digest: d("x")}},
			},
			want: map[string]want{"x": {Keep, CodeReleaseCurrent,
				"kept: prod current (also staging current, dev previous release (1 back), awaiting approval for qa)", ""}},
		},
		{
			name:      "protection outranks excludeTags and includeTags",
			policy:    func(p *Policy) { p.ExcludeTags = "a"; p.IncludeTags = "nomatch" },
			images:    []Image{img("x", 500, "a")},
			protected: Protected{Pending: []Pending{{Env: "prod", Digest: d("x")}}},
			want:      map[string]want{"x": {Keep, CodePendingApproval, "kept: awaiting approval for prod", ""}},
		},
		{
			name:   "protected digests absent from the repository change nothing",
			images: []Image{img("old", 200, "a")},
			protected: Protected{Releases: []Release{{Env: "prod", Current: d("elsewhere")}},
				Pending: []Pending{{Env: "prod", Digest: d("gone")}}},
			want: map[string]want{"old": {Delete, CodeExpired, "delete: pushed 200 days ago (policy 90d)", ""}},
		},
		{
			name:   "children of a kept index are kept however old and untagged",
			images: []Image{index("idx", 5, []string{d("amd64"), d("arm64")}, "v1"), img("amd64", 30), img("arm64", 30)},
			want: map[string]want{
				"idx":   {Keep, CodeYoung, "kept: pushed 5 days ago (policy 90d)", ""},
				"amd64": {Keep, CodeChildOfKept, "kept: child of kept index " + ab("idx"), "idx"},
				"arm64": {Keep, CodeChildOfKept, "kept: child of kept index " + ab("idx"), "idx"},
			},
		},
		{
			name:   "children of a deleted index go with it, even young ones",
			images: []Image{index("idx", 200, []string{d("amd64"), d("arm64")}, "v1"), img("amd64", 200), img("arm64", 1)},
			want: map[string]want{
				"idx":   {Delete, CodeExpired, "delete: pushed 200 days ago (policy 90d)", ""},
				"amd64": {Delete, CodeChildOfDeleted, "delete: child of deleted index " + ab("idx"), "idx"},
				"arm64": {Delete, CodeChildOfDeleted, "delete: child of deleted index " + ab("idx"), "idx"},
			},
		},
		{
			name: "a child shared with a kept index stays when another parent goes",
			images: []Image{
				index("old", 200, []string{d("shared"), d("only-old")}, "v1"),
				index("new", 2, []string{d("shared")}, "v2"),
				img("shared", 200), img("only-old", 200),
			},
			want: map[string]want{
				"old":      {Delete, CodeExpired, "delete: pushed 200 days ago (policy 90d)", ""},
				"new":      {Keep, CodeYoung, "kept: pushed 2 days ago (policy 90d)", ""},
				"shared":   {Keep, CodeChildOfKept, "kept: child of kept index " + ab("new"), "new"},
				"only-old": {Delete, CodeChildOfDeleted, "delete: child of deleted index " + ab("old"), "old"},
			},
		},
		{
			name: "nested indexes: a kept top index keeps its grandchildren",
			images: []Image{
				index("top", 300, []string{d("mid")}, "v1"), index("mid", 300, []string{d("leaf")}), img("leaf", 300),
			},
			protected: Protected{Releases: []Release{{Env: "prod", Current: d("top")}}},
			want: map[string]want{
				"top":  {Keep, CodeReleaseCurrent, "kept: prod current", ""},
				"mid":  {Keep, CodeChildOfKept, "kept: child of kept index " + ab("top"), "top"},
				"leaf": {Keep, CodeChildOfKept, "kept: child of kept index " + ab("mid"), "mid"},
			},
		},
		{
			name: "a tagged child is judged on its own too",
			images: []Image{
				index("idx", 200, []string{d("tagged-young"), d("tagged-old")}, "v1"),
				img("tagged-young", 10, "amd64-v1"), img("tagged-old", 200, "arm64-v1"),
			},
			want: map[string]want{
				"idx":          {Delete, CodeExpired, "delete: pushed 200 days ago (policy 90d)", ""},
				"tagged-young": {Keep, CodeYoung, "kept: pushed 10 days ago (policy 90d)", ""},
				"tagged-old":   {Delete, CodeExpired, "delete: pushed 200 days ago (policy 90d)", ""},
			},
		},
		{
			name: "referrers of a kept image are kept, named by kind",
			images: []Image{
				img("app", 5, "v1"),
				referrer("sig", 300, d("app"), cosignSig),
				referrer("sbom", 300, d("app"), spdx),
				referrer("att", 300, d("app"), inToto),
				referrer("other", 300, d("app"), "application/x-custom"),
			},
			want: map[string]want{
				"sig":   {Keep, CodeReferrerOfKept, "kept: signature of kept image " + ab("app"), "app"},
				"sbom":  {Keep, CodeReferrerOfKept, "kept: SBOM of kept image " + ab("app"), "app"},
				"att":   {Keep, CodeReferrerOfKept, "kept: attestation of kept image " + ab("app"), "app"},
				"other": {Keep, CodeReferrerOfKept, "kept: referrer of kept image " + ab("app"), "app"},
			},
		},
		{
			name: "referrers of a deleted image go with it, however young; referrers of referrers too",
			images: []Image{
				img("app", 200, "v1"),
				referrer("sig", 1, d("app"), cosignSig),
				referrer("sig-of-sbom", 1, d("sbom"), "application/x-custom"),
				referrer("sbom", 1, d("app"), spdx),
			},
			want: map[string]want{
				"app":         {Delete, CodeExpired, "delete: pushed 200 days ago (policy 90d)", ""},
				"sig":         {Delete, CodeReferrerOfDeleted, "delete: signature of deleted image " + ab("app"), "app"},
				"sbom":        {Delete, CodeReferrerOfDeleted, "delete: SBOM of deleted image " + ab("app"), "app"},
				"sig-of-sbom": {Delete, CodeReferrerOfDeleted, "delete: referrer of deleted image " + ab("sbom"), "sbom"},
			},
		},
		{
			name: "a referrer of a kept referrer is kept",
			images: []Image{
				img("app", 5, "v1"), referrer("sbom", 300, d("app"), spdx), referrer("sbom-sig", 300, d("sbom"), cosignSig),
			},
			want: map[string]want{
				"sbom":     {Keep, CodeReferrerOfKept, "kept: SBOM of kept image " + ab("app"), "app"},
				"sbom-sig": {Keep, CodeReferrerOfKept, "kept: signature of kept image " + ab("sbom"), "sbom"},
			},
		},
		{
			name: "a protected referrer keeps its subject, so it is never orphaned",
			images: []Image{
				img("app", 300, "v1"), referrer("sig", 300, d("app"), cosignSig), referrer("sbom", 300, d("app"), spdx),
			},
			protected: Protected{Pending: []Pending{{Env: "prod", Digest: d("sig")}}},
			want: map[string]want{
				"sig":  {Keep, CodePendingApproval, "kept: awaiting approval for prod", ""},
				"app":  {Keep, CodeSubjectOfKept, "kept: subject of kept signature " + ab("sig"), "sig"},
				"sbom": {Keep, CodeReferrerOfKept, "kept: SBOM of kept image " + ab("app"), "app"},
			},
		},
		{
			name: "signatures of an index and of its children follow them",
			images: []Image{
				index("idx", 200, []string{d("c1")}, "v1"), img("c1", 200),
				referrer("idx-sig", 200, d("idx"), cosignSig), referrer("c1-sig", 200, d("c1"), cosignSig),
				index("kept", 1, []string{d("c2")}, "v2"), img("c2", 200), referrer("c2-sig", 200, d("c2"), cosignSig),
			},
			want: map[string]want{
				"idx-sig": {Delete, CodeReferrerOfDeleted, "delete: signature of deleted image " + ab("idx"), "idx"},
				"c1":      {Delete, CodeChildOfDeleted, "delete: child of deleted index " + ab("idx"), "idx"},
				"c1-sig":  {Delete, CodeReferrerOfDeleted, "delete: signature of deleted image " + ab("c1"), "c1"},
				"c2":      {Keep, CodeChildOfKept, "kept: child of kept index " + ab("kept"), "kept"},
				"c2-sig":  {Keep, CodeReferrerOfKept, "kept: signature of kept image " + ab("c2"), "c2"},
			},
		},
		{
			name: "cosign tag-scheme signatures follow the image their tag names",
			images: []Image{
				img("kept", 5, "v1"), img("gone", 200, "v0"),
				{Digest: d("kept.sig"), Tags: []string{"sha256-" + strings.TrimPrefix(d("kept"), "sha256:") + ".sig"}, PushedAt: ago(300)},
				{Digest: d("gone.att"), Tags: []string{"sha256-" + strings.TrimPrefix(d("gone"), "sha256:") + ".att"}, PushedAt: ago(1)},
				{Digest: d("kept.sbom"), Tags: []string{"sha256-" + strings.TrimPrefix(d("kept"), "sha256:") + ".sbom"}, PushedAt: ago(300)},
			},
			want: map[string]want{
				"kept.sig":  {Keep, CodeReferrerOfKept, "kept: signature of kept image " + ab("kept"), "kept"},
				"gone.att":  {Delete, CodeReferrerOfDeleted, "delete: attestation of deleted image " + ab("gone"), "gone"},
				"kept.sbom": {Keep, CodeReferrerOfKept, "kept: SBOM of kept image " + ab("kept"), "kept"},
			},
		},
		{
			name: "a referrer whose subject is not in the repository is judged by its own age",
			images: []Image{
				referrer("dangling-old", 20, d("missing"), cosignSig),
				referrer("dangling-new", 2, d("missing"), cosignSig),
			},
			want: map[string]want{
				"dangling-old": {Delete, CodeUntaggedExpired, "delete: untagged, pushed 20 days ago (policy 14d)", ""},
				"dangling-new": {Keep, CodeUntaggedYoung, "kept: untagged, pushed 2 days ago (policy 14d)", ""},
			},
		},
		{
			name:   "an image without a push time is kept",
			images: []Image{{Digest: d("nodate"), Tags: []string{"a"}}},
			want:   map[string]want{"nodate": {Keep, CodeUnknownAge, "kept: push time unknown", ""}},
		},
		{
			name:   "children of an index that is listed but empty are fine",
			images: []Image{index("empty", 200, []string{}, "v1")},
			want:   map[string]want{"empty": {Delete, CodeExpired, "delete: pushed 200 days ago (policy 90d)", ""}},
		},
		{
			name:   "children missing from the repository are ignored",
			images: []Image{index("idx", 5, []string{d("not-here")}, "v1")},
			want:   map[string]want{"idx": {Keep, CodeYoung, "kept: pushed 5 days ago (policy 90d)", ""}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := basePolicy()
			if tc.policy != nil {
				tc.policy(&p)
			}
			res, err := Select(Input{Repository: "app", Images: tc.images, Protected: tc.protected, Policy: p, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]string{}
			for _, im := range tc.images {
				for n := range tc.want {
					if d(n) == im.Digest {
						names[im.Digest] = n
					}
				}
			}
			if len(names) != len(tc.want) {
				t.Fatalf("test names an image it does not list: have %d of %d", len(names), len(tc.want))
			}
			if len(res.Decisions) != len(tc.images) {
				t.Fatalf("%d decisions for %d images", len(res.Decisions), len(tc.images))
			}
			for _, got := range res.Decisions {
				name, ok := names[got.Digest]
				if !ok {
					continue
				}
				w := tc.want[name]
				if got.Action != w.action || got.Code != w.code || got.Reason != w.reason {
					t.Errorf("%s:\n got  %s %s %q\n want %s %s %q", name, got.Action, got.Code, got.Reason, w.action, w.code, w.reason)
				}
				wantRel := ""
				if w.related != "" {
					wantRel = d(w.related)
				}
				if got.Related != wantRel {
					t.Errorf("%s: related = %s, want %s (%s)", name, got.Related, wantRel, w.related)
				}
				if got.Repository != "app" {
					t.Errorf("%s: repository = %q", name, got.Repository)
				}
			}
		})
	}
}

func TestSelectRejectsBadInput(t *testing.T) {
	good := basePolicy()
	tests := []struct {
		name      string
		in        Input
		wantInErr string
	}{
		{"no repository", Input{Policy: good, Now: now}, "repository name is required"},
		{"no time", Input{Repository: "app", Policy: good}, "now) is required"},
		{"zero max age", Input{Repository: "app", Policy: Policy{UntaggedMaxAge: days(1), KeepReleases: 1}, Now: now}, "maxAge 0s must be more than zero"},
		{"zero untagged age", Input{Repository: "app", Policy: Policy{MaxAge: days(1), KeepReleases: 1}, Now: now}, "untaggedMaxAge 0s must be more than zero"},
		{"negative unpulled", Input{Repository: "app", Policy: func() Policy { p := good; p.UnpulledFor = -1; return p }(), Now: now}, "unpulledFor"},
		{"negative keepNewest", Input{Repository: "app", Policy: func() Policy { p := good; p.KeepNewest = -1; return p }(), Now: now}, "keepNewest -1"},
		{"keepReleases zero", Input{Repository: "app", Policy: func() Policy { p := good; p.KeepReleases = 0; return p }(), Now: now}, "keepReleases 0 must be at least 1"},
		{"bad include regex", Input{Repository: "app", Policy: func() Policy { p := good; p.IncludeTags = "("; return p }(), Now: now}, "includeTags \"(\""},
		{"bad exclude regex", Input{Repository: "app", Policy: func() Policy { p := good; p.ExcludeTags = "[z-a]"; return p }(), Now: now}, "excludeTags"},
		{"bad digest", Input{Repository: "app", Policy: good, Now: now, Images: []Image{{Digest: "latest"}}}, `"latest" is not a digest`},
		{"empty digest", Input{Repository: "app", Policy: good, Now: now, Images: []Image{{}}}, `"" is not a digest`},
		{"duplicate", Input{Repository: "app", Policy: good, Now: now, Images: []Image{img("a", 1), img("a", 2)}}, "listed twice"},
		{"negative size", Input{Repository: "app", Policy: good, Now: now, Images: []Image{{Digest: d("a"), SizeBytes: -1}}}, "must not be negative"},
		{"empty tag", Input{Repository: "app", Policy: good, Now: now, Images: []Image{img("a", 1, "")}}, "empty tag"},
		{"index without children", Input{Repository: "app", Policy: good, Now: now, Images: []Image{index("i", 1, nil)}}, "child manifests were not given"},
		{"docker list without children", Input{Repository: "app", Policy: good, Now: now,
			Images: []Image{{Digest: d("l"), MediaType: "application/vnd.docker.distribution.manifest.list.v2+json"}}}, "child manifests were not given"},
		{"bad child", Input{Repository: "app", Policy: good, Now: now, Images: []Image{index("i", 1, []string{"nope"})}}, `child "nope"`},
		{"bad subject", Input{Repository: "app", Policy: good, Now: now, Images: []Image{referrer("r", 1, "sha256", "")}}, `subject "sha256"`},
		{"self reference", Input{Repository: "app", Policy: good, Now: now, Images: []Image{referrer("r", 1, d("r"), "")}}, "cycle (" + d("r") + " → " + d("r") + ")"},
		{"index cycle", Input{Repository: "app", Policy: good, Now: now, Images: []Image{
			index("a", 1, []string{d("b")}), index("b", 1, []string{d("c")}), referrer("c", 1, d("a"), "")}}, "cycle"},
		{"release without env", Input{Repository: "app", Policy: good, Now: now, Protected: Protected{Releases: []Release{{Current: d("a")}}}}, "no environment name"},
		{"release bad current", Input{Repository: "app", Policy: good, Now: now, Protected: Protected{Releases: []Release{{Env: "prod", Current: "v1"}}}}, `current "v1"`},
		{"release bad previous", Input{Repository: "app", Policy: good, Now: now, Protected: Protected{Releases: []Release{{Env: "prod", Previous: []string{"x"}}}}}, `previous release "x"`},
		{"pending without env", Input{Repository: "app", Policy: good, Now: now, Protected: Protected{Pending: []Pending{{Digest: d("a")}}}}, "no environment name"},
		{"in use bad digest", Input{Repository: "app", Policy: good, Now: now, Protected: Protected{InUse: []InUse{{Digest: "latest", Where: "ECS service prod/web"}}}}, `"latest" for a digest`},
		{"in use nowhere", Input{Repository: "app", Policy: good, Now: now, Protected: Protected{InUse: []InUse{{Digest: d("a")}}}}, "does not say where it runs"},
		{"pending bad digest", Input{Repository: "app", Policy: good, Now: now, Protected: Protected{Pending: []Pending{{Env: "prod", Digest: "x"}}}}, `"x" is not a digest`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Select(tc.in)
			if err == nil {
				t.Fatalf("accepted: %+v", res)
			}
			if !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantInErr)
			}
			if tc.in.Repository != "" && !strings.Contains(err.Error(), "repository "+tc.in.Repository) {
				t.Errorf("error %q does not name the repository", err)
			}
		})
	}
}

func TestPolicyFor(t *testing.T) {
	ptr := func(v config.Duration) *config.Duration { return &v }
	n := func(v int) *int { return &v }
	base := config.Retention{
		MaxAge: days(90), UntaggedMaxAge: days(14), UnpulledFor: days(30), KeepNewest: 5, KeepReleases: 3,
		IncludeTags: "^v", ExcludeTags: "^latest$",
		Overrides: []config.RetentionOverride{
			{Repositories: "scratch-*", MaxAge: ptr(days(7))},
			{Repositories: "scratch-keep", KeepNewest: n(50)}, // shadowed by the first
			{Repositories: "team/*", UntaggedMaxAge: ptr(days(1)), KeepNewest: n(0)},
			{Repositories: "[", MaxAge: ptr(days(1))}, // malformed: never matches
		},
	}
	tests := []struct {
		repo string
		cfg  config.Retention
		want Policy
	}{
		{"app", base, Policy{MaxAge: days(90), UntaggedMaxAge: days(14), UnpulledFor: days(30), KeepNewest: 5, KeepReleases: 3, IncludeTags: "^v", ExcludeTags: "^latest$"}},
		{"scratch-keep", base, Policy{MaxAge: days(7), UntaggedMaxAge: days(14), UnpulledFor: days(30), KeepNewest: 5, KeepReleases: 3, IncludeTags: "^v", ExcludeTags: "^latest$", Override: "scratch-*"}},
		{"team/api", base, Policy{MaxAge: days(90), UntaggedMaxAge: days(1), UnpulledFor: days(30), KeepNewest: 0, KeepReleases: 3, IncludeTags: "^v", ExcludeTags: "^latest$", Override: "team/*"}},
		// One glob syntax everywhere (shared/glob): * crosses /, as the IAM grants do.
		{"team/api/v2", base, Policy{MaxAge: days(90), UntaggedMaxAge: days(1), UnpulledFor: days(30), KeepNewest: 0, KeepReleases: 3, IncludeTags: "^v", ExcludeTags: "^latest$", Override: "team/*"}},
		{"teams/api", base, Policy{MaxAge: days(90), UntaggedMaxAge: days(14), UnpulledFor: days(30), KeepNewest: 5, KeepReleases: 3, IncludeTags: "^v", ExcludeTags: "^latest$"}},
		{"anything", config.Retention{}, Policy{MaxAge: days(90), UntaggedMaxAge: days(14), KeepReleases: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.repo, func(t *testing.T) {
			got := PolicyFor(tc.cfg, tc.repo)
			if got != tc.want {
				t.Errorf("PolicyFor(%q)\n got  %+v\n want %+v", tc.repo, got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("policy from a valid config must validate: %v", err)
			}
		})
	}
}

func TestPolicyFromExampleConfig(t *testing.T) {
	cfg, err := config.Load("../../regflow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := PolicyFor(cfg.Retention, "any-repo")
	if p.MaxAge != days(90) || p.UntaggedMaxAge != days(14) || p.KeepNewest != 5 || p.KeepReleases != 3 {
		t.Errorf("policy from regflow.yaml = %+v", p)
	}
}

func TestValidDigest(t *testing.T) {
	ref := regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`) // the grammar, spelled as the spec does
	for _, s := range []string{
		d("x"), "sha512:abc", "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
		"", ":", "sha256:", ":abc", "SHA256:abc", "sha256-abc", "+sha:abc", "sha+:abc", "sh++a:abc", "sha256:ab c", "sha256:ab:c", "sha256:é", "latest",
	} {
		if got, want := validDigest(s), ref.MatchString(s); got != want {
			t.Errorf("validDigest(%q) = %v, grammar says %v", s, got, want)
		}
	}
}

func FuzzValidDigest(f *testing.F) {
	ref := regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	for _, s := range []string{d("x"), "a+b:c", "a..b:c", "a:b:c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validDigest(s), ref.MatchString(s); got != want {
			t.Errorf("validDigest(%q) = %v, grammar says %v", s, got, want)
		}
	})
}
