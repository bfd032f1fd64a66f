package webui

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/regflow/regflow/shared/regflow"
)

// openStatuses are the request states the estate and approvals pages show, in the order
// a badge lists them.
var openStatuses = []string{regflow.StatusBlocked, regflow.StatusFailed, regflow.StatusWaiting, regflow.StatusPending}

// badge is one request's state shown on an estate cell.
type badge struct {
	Status    string
	Label     string
	Reason    string
	Digest    string
	RequestID string
}

var badgeLabels = map[string]string{
	regflow.StatusPending: "pending approval",
	regflow.StatusWaiting: "waiting for verification",
	regflow.StatusBlocked: "blocked",
	regflow.StatusFailed:  "failed",
}

type estateCell struct {
	Env     string
	Source  bool
	Release *regflow.Release
	Badges  []badge
}

type estateRow struct {
	Repository string
	Cells      []estateCell
}

type estateData struct {
	Envs   []string
	Source string
	Glob   string
	Error  string
	Rows   []estateRow
	Pager  pager
	Counts map[string]int
}

// openRequests reads the requests in every open status.
func (s *server) openRequests(r *http.Request) ([]regflow.ApprovalRequest, error) {
	var all []regflow.ApprovalRequest
	for _, st := range openStatuses {
		reqs, err := s.o.Store.Requests(r.Context(), st)
		if err != nil {
			return nil, fmt.Errorf("the %s approval requests: %w", st, err)
		}
		all = append(all, reqs...)
	}
	return all, nil
}

func (s *server) estate(w http.ResponseWriter, r *http.Request) {
	cfg := s.o.Config
	d := estateData{Envs: cfg.PromotionPath, Source: cfg.Source(), Counts: map[string]int{}}
	g, err := repoFilter(r)
	d.Glob = g
	if err != nil {
		d.Error = err.Error()
		s.render(w, r, "estate", "Estate", http.StatusBadRequest, d)
		return
	}
	rels, err := s.o.Store.Releases(r.Context())
	if err != nil {
		s.failRead(w, r, "the release pointers", err)
		return
	}
	reqs, err := s.openRequests(r)
	if err != nil {
		s.failRead(w, r, "the approval requests", err)
		return
	}
	type key struct{ env, repo string }
	pointers := map[key]*regflow.Release{}
	badges := map[key][]badge{}
	repos := map[string]bool{}
	for i := range rels {
		rel := &rels[i]
		if matches(g, rel.Repository) {
			pointers[key{rel.Env, rel.Repository}] = rel
			repos[rel.Repository] = true
		}
	}
	for _, q := range reqs {
		if !matches(g, q.Repository) {
			continue
		}
		repos[q.Repository] = true
		d.Counts[q.Status]++
		k := key{q.Env, q.Repository}
		badges[k] = append(badges[k], badge{Status: q.Status, Label: badgeLabels[q.Status], Reason: q.Reason, Digest: q.Digest, RequestID: q.ID})
	}
	names := make([]string, 0, len(repos))
	for n := range repos {
		names = append(names, n)
	}
	slices.Sort(names)
	d.Pager = paginate(len(names), s.o.PageSize, r.URL.Query().Get("page"), "/", r.URL.Query())
	for _, name := range names[d.Pager.From:d.Pager.To] {
		row := estateRow{Repository: name}
		for _, env := range cfg.PromotionPath {
			k := key{env, name}
			bs := badges[k]
			slices.SortStableFunc(bs, func(a, b badge) int {
				return slices.Index(openStatuses, a.Status) - slices.Index(openStatuses, b.Status)
			})
			row.Cells = append(row.Cells, estateCell{Env: env, Source: env == d.Source, Release: pointers[k], Badges: bs})
		}
		d.Rows = append(d.Rows, row)
	}
	title := "Estate"
	if g != "" {
		title = "Estate: " + g
	}
	s.render(w, r, "estate", title, http.StatusOK, d)
}
