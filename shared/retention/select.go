package retention

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/regflow"
)

// Select decides the fate of every image of one repository. It is pure and
// deterministic: the same input in any order gives the same Result.
func Select(in Input) (*Result, error) { return selectBatched(in, MaxBatch) }

// verdict is a decision before it becomes a Decision. An empty action marks a
// follower: an image with no reason of its own that goes wherever its parents or
// subject go.
type verdict struct {
	action  Action
	code    Code
	reason  string
	related string
}

func selectBatched(in Input, batchSize int) (*Result, error) {
	if in.Repository == "" {
		return nil, fmt.Errorf("retention: repository name is required")
	}
	fail := func(err error) (*Result, error) {
		return nil, fmt.Errorf("retention of repository %s: %w", in.Repository, err)
	}
	if in.Now.IsZero() {
		return fail(fmt.Errorf("the time to measure ages against (now) is required"))
	}
	pol, err := in.Policy.compile()
	if err != nil {
		return fail(err)
	}
	g, err := buildGraph(in.Images)
	if err != nil {
		return fail(err)
	}
	prot, err := protections(g, in.Protected, pol.KeepReleases)
	if err != nil {
		return fail(err)
	}
	newest := g.newestTagged(pol)

	n := len(g.nodes)
	dec := make([]verdict, n)
	kept := make([]bool, n)
	queue := make([]int32, 0, n)
	for i := range g.nodes {
		v := g.own(int32(i), pol, prot[i], newest[i], in.Now)
		if v.action == Keep {
			dec[i], kept[i] = v, true
			queue = append(queue, int32(i))
		} else {
			dec[i] = v
		}
	}

	// Close the kept set: breadth-first from the images kept for their own reasons,
	// so every closure reason points one step closer to such an image.
	for head := 0; head < len(queue); head++ {
		i := queue[head]
		ni := &g.nodes[i]
		mark := func(j int32, code Code, reason string) {
			if !kept[j] {
				kept[j] = true
				dec[j] = verdict{action: Keep, code: code, reason: reason, related: ni.img.Digest}
				queue = append(queue, j)
			}
		}
		for _, c := range ni.children {
			mark(c, CodeChildOfKept, "kept: child of kept index "+short(ni.img.Digest))
		}
		for _, r := range ni.referrers {
			mark(r, CodeReferrerOfKept, fmt.Sprintf("kept: %s of kept image %s", g.nodes[r].kind, short(ni.img.Digest)))
		}
		if ni.subject != none {
			mark(ni.subject, CodeSubjectOfKept, fmt.Sprintf("kept: subject of kept %s %s", ni.kind, short(ni.img.Digest)))
		}
	}

	for i := range g.nodes {
		if kept[i] {
			continue
		}
		ni := &g.nodes[i]
		switch {
		case len(ni.img.Tags) == 0 && len(ni.parents) > 0:
			p := g.nodes[ni.parents[0]].img.Digest
			dec[i] = verdict{action: Delete, code: CodeChildOfDeleted, reason: "delete: child of deleted index " + short(p), related: p}
		case ni.subject != none:
			s := g.nodes[ni.subject].img.Digest
			dec[i] = verdict{action: Delete, code: CodeReferrerOfDeleted, reason: fmt.Sprintf("delete: %s of deleted image %s", ni.kind, short(s)), related: s}
		}
		// Otherwise own() already gave a delete verdict: only followers lack one.
	}

	batches := g.batches(kept, batchSize)
	res := &Result{
		Repository: in.Repository,
		Now:        in.Now,
		Policy:     in.Policy,
		Decisions:  make([]Decision, n),
		Batches:    make([][]string, len(batches)),
	}
	batchOf := make([]int, n)
	for b, batch := range batches {
		res.Batches[b] = make([]string, len(batch))
		for k, i := range batch {
			res.Batches[b][k] = g.nodes[i].img.Digest
			batchOf[i] = b + 1
		}
	}
	for i := range g.nodes {
		img := &g.nodes[i].img
		v := dec[i]
		res.Decisions[i] = Decision{
			Repository: in.Repository,
			Digest:     img.Digest,
			Tags:       img.Tags,
			Action:     v.action,
			Code:       v.code,
			Reason:     v.reason,
			Related:    v.related,
			PushedAt:   img.PushedAt,
			SizeBytes:  img.SizeBytes,
			Batch:      batchOf[i],
		}
		if v.action == Delete {
			res.Deleted++
			res.BytesReclaimedUpperBound += img.SizeBytes
		} else {
			res.Kept++
		}
	}
	return res, nil
}

// own judges an image on its own merits.
func (g *graph) own(i int32, pol *compiledPolicy, prot []protection, newest bool, now time.Time) verdict {
	ni := &g.nodes[i]
	img := &ni.img
	if len(prot) > 0 {
		return protectionVerdict(prot)
	}
	if pol.exclude != nil {
		if t, ok := firstMatch(pol.exclude, img.Tags); ok {
			return verdict{action: Keep, code: CodeExcludedTag, reason: fmt.Sprintf("kept: tag %q matches excludeTags", t)}
		}
	}
	tagged := len(img.Tags) > 0
	if ni.subject != none || (!tagged && len(ni.parents) > 0) {
		return verdict{} // follower: its subject or parents decide
	}
	if img.PushedAt.IsZero() {
		return verdict{action: Keep, code: CodeUnknownAge, reason: "kept: push time unknown"}
	}
	age := now.Sub(img.PushedAt)
	limit, pushed := pol.MaxAge, "pushed "+span(age)+" ago"
	youngCode, expiredCode := CodeYoung, CodeExpired
	if !tagged {
		limit, pushed = pol.UntaggedMaxAge, "untagged, "+pushed
		youngCode, expiredCode = CodeUntaggedYoung, CodeUntaggedExpired
	} else {
		if pol.include != nil {
			if _, ok := firstMatch(pol.include, img.Tags); !ok {
				return verdict{action: Keep, code: CodeNotIncluded, reason: "kept: no tag matches includeTags"}
			}
		}
		if newest {
			return verdict{action: Keep, code: CodeNewestTagged, reason: fmt.Sprintf("kept: among newest %d tagged", pol.KeepNewest)}
		}
	}
	if age <= limit.D() {
		return verdict{action: Keep, code: youngCode, reason: fmt.Sprintf("kept: %s (policy %s)", pushed, limit)}
	}
	reason := fmt.Sprintf("delete: %s (policy %s)", pushed, limit)
	if pol.UnpulledFor > 0 {
		if img.LastPulledAt.IsZero() {
			reason += ", never pulled"
		} else {
			since := now.Sub(img.LastPulledAt)
			if since <= pol.UnpulledFor.D() {
				return verdict{action: Keep, code: CodeRecentlyPulled,
					reason: fmt.Sprintf("kept: %s but pulled %s ago (policy: unpulled for %s)", pushed, span(since), pol.UnpulledFor)}
			}
			reason += fmt.Sprintf(", not pulled for %s (policy %s)", span(since), pol.UnpulledFor)
		}
	}
	return verdict{action: Delete, code: expiredCode, reason: reason}
}

// newestTagged marks the KeepNewest most recently pushed tagged images that are
// not referrers and, with IncludeTags, carry a matching tag. Ties go to the smaller digest.
func (g *graph) newestTagged(pol *compiledPolicy) []bool {
	marked := make([]bool, len(g.nodes))
	if pol.KeepNewest == 0 {
		return marked
	}
	var cand []int32
	for i := range g.nodes {
		ni := &g.nodes[i]
		if len(ni.img.Tags) == 0 || ni.subjectRef != "" || ni.img.PushedAt.IsZero() {
			continue
		}
		if pol.include != nil {
			if _, ok := firstMatch(pol.include, ni.img.Tags); !ok {
				continue
			}
		}
		cand = append(cand, int32(i))
	}
	slices.SortFunc(cand, func(a, b int32) int {
		if c := g.nodes[b].img.PushedAt.Compare(g.nodes[a].img.PushedAt); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, i := range cand[:min(pol.KeepNewest, len(cand))] {
		marked[i] = true
	}
	return marked
}

// protection is one reason the store gives for keeping a digest.
type protection struct {
	inUse   string // where it runs
	pending bool
	back    int // 0 = current release, n = n releases back
	env     string
}

func (p protection) String() string {
	switch {
	case p.inUse != "":
		return "running in " + p.inUse
	case p.pending:
		return "awaiting approval for " + p.env
	case p.back == 0:
		return p.env + " current"
	default:
		return fmt.Sprintf("%s previous release (%d back)", p.env, p.back)
	}
}

func protectionVerdict(prot []protection) verdict {
	v := verdict{action: Keep, code: CodeReleasePrevious, reason: "kept: " + prot[0].String()}
	switch {
	case prot[0].inUse != "":
		v.code = CodeInUse
	case prot[0].pending:
		v.code = CodePendingApproval
	case prot[0].back == 0:
		v.code = CodeReleaseCurrent
	}
	if len(prot) > 1 {
		also := make([]string, len(prot)-1)
		for k, p := range prot[1:] {
			also[k] = p.String()
		}
		v.reason += " (also " + strings.Join(also, ", ") + ")"
	}
	return v
}

// protections maps each present image to its protections, most significant first:
// where it runs first (what an outage would follow from), then releases by how far back
// (current first) then environment, then pending approvals.
func protections(g *graph, p Protected, keepReleases int) ([][]protection, error) {
	out := make([][]protection, len(g.nodes))
	add := func(d string, pr protection) {
		if i, ok := g.idx[d]; ok {
			out[i] = append(out[i], pr)
		}
	}
	for _, r := range p.Releases {
		if r.Env == "" {
			return nil, fmt.Errorf("a release pointer has no environment name")
		}
		if r.Current != "" {
			if !validDigest(r.Current) {
				return nil, fmt.Errorf("release pointer of %s: current %q is not a digest", r.Env, r.Current)
			}
			add(r.Current, protection{env: r.Env})
		}
		for k, d := range r.Previous {
			if !validDigest(d) {
				return nil, fmt.Errorf("release pointer of %s: previous release %q is not a digest", r.Env, d)
			}
			if k+1 < keepReleases {
				add(d, protection{env: r.Env, back: k + 1})
			}
		}
	}
	for _, a := range p.Pending {
		if a.Env == "" {
			return nil, fmt.Errorf("a pending approval request for %s has no environment name", a.Digest)
		}
		if !validDigest(a.Digest) {
			return nil, fmt.Errorf("pending approval request for %s: %q is not a digest", a.Env, a.Digest)
		}
		add(a.Digest, protection{env: a.Env, pending: true})
	}
	for _, u := range p.InUse {
		if !validDigest(u.Digest) {
			return nil, fmt.Errorf("an image in use (%s) has %q for a digest", u.Where, u.Digest)
		}
		if u.Where == "" {
			return nil, fmt.Errorf("an image in use (%s) does not say where it runs", u.Digest)
		}
		add(u.Digest, protection{inUse: u.Where})
	}
	for i, prs := range out {
		if len(prs) < 2 {
			continue
		}
		slices.SortFunc(prs, func(a, b protection) int {
			if (a.inUse != "") != (b.inUse != "") {
				if a.inUse != "" {
					return -1
				}
				return 1
			}
			if a.inUse != "" {
				return strings.Compare(a.inUse, b.inUse)
			}
			if a.pending != b.pending {
				if a.pending {
					return 1
				}
				return -1
			}
			return cmp.Or(cmp.Compare(a.back, b.back), strings.Compare(a.env, b.env))
		})
		// The same environment may name a digest twice (rolled back and forth):
		// mention it once, at its most recent position.
		uniq := prs[:0]
		for _, pr := range prs {
			if !slices.ContainsFunc(uniq, func(u protection) bool { return u.inUse == pr.inUse && u.pending == pr.pending && u.env == pr.env }) {
				uniq = append(uniq, pr)
			}
		}
		out[i] = uniq
	}
	return out, nil
}

// short abbreviates a digest for reasons; Decision.Related carries it in full.
func short(d string) string {
	if s := regflow.ShortDigest(d); s != d {
		return s + "…"
	}
	return d
}

// span renders a duration the way people talk about image ages.
func span(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < 24*time.Hour:
		return plural(int64(d/time.Hour), "hour")
	default:
		return plural(int64(d/(24*time.Hour)), "day")
	}
}
