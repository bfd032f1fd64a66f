package webui

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/glob"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

// severities in the order people read them.
var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"}

type severityCount struct {
	Severity string
	Count    int
	// Cap is the environment gate's limit for this severity, -1 when it sets none.
	Cap  int
	Over bool
}

type approvalView struct {
	regflow.ApprovalRequest
	Findings []severityCount
	Allowed  []config.AllowedFinding
	// PrevEnv is the environment whose verification this request needs ("" if none).
	PrevEnv      string
	NeedsVerify  bool
	Verification *regflow.Verification
	Expired      bool
	SlackURL     string
	Approvers    []string
}

type statusTab struct {
	Status, Label, URL string
	Count              int
	Current            bool
}

type approvalsData struct {
	Glob     string
	Error    string
	Status   string
	Tabs     []statusTab
	Requests []approvalView
	Pager    pager
}

// approvalStatuses are the states the approvals page lists, in its tab order.
var approvalStatuses = []string{regflow.StatusPending, regflow.StatusWaiting, regflow.StatusBlocked}

func (s *server) approvals(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	d := approvalsData{Status: q.Get("status")}
	g, err := repoFilter(r)
	d.Glob = g
	if err != nil {
		d.Error = err.Error()
		s.render(w, r, "approvals", "Approvals", http.StatusBadRequest, d)
		return
	}
	if d.Status != "" && !slices.Contains(approvalStatuses, d.Status) {
		d.Error = "status must be one of pending, waiting or blocked"
		s.render(w, r, "approvals", "Approvals", http.StatusBadRequest, d)
		return
	}
	var list []regflow.ApprovalRequest
	counts := map[string]int{}
	for _, st := range approvalStatuses {
		reqs, err := s.o.Store.Requests(ctx, st)
		if err != nil {
			s.failRead(w, r, "the "+st+" approval requests", err)
			return
		}
		for _, rq := range reqs {
			if !matches(g, rq.Repository) {
				continue
			}
			counts[st]++
			if d.Status == "" || d.Status == st {
				list = append(list, rq)
			}
		}
	}
	total := 0
	for _, st := range approvalStatuses {
		total += counts[st]
	}
	tab := func(st, label string, n int) statusTab {
		v := cloneQuery(q)
		v.Del("page")
		v.Set("status", st)
		if st == "" {
			v.Del("status")
		}
		u := "/approvals"
		if enc := v.Encode(); enc != "" {
			u += "?" + enc
		}
		return statusTab{Status: st, Label: label, URL: u, Count: n, Current: d.Status == st}
	}
	d.Tabs = []statusTab{tab("", "All open", total), tab(regflow.StatusPending, "Pending", counts[regflow.StatusPending]),
		tab(regflow.StatusWaiting, "Waiting for verification", counts[regflow.StatusWaiting]), tab(regflow.StatusBlocked, "Blocked", counts[regflow.StatusBlocked])}
	d.Pager = paginate(len(list), s.o.PageSize, q.Get("page"), "/approvals", q)
	now := s.o.Now()
	for _, rq := range list[d.Pager.From:d.Pager.To] {
		v, err := s.approvalView(r, rq, now)
		if err != nil {
			s.failRead(w, r, "the verification of "+rq.Ref(), err)
			return
		}
		d.Requests = append(d.Requests, v)
	}
	s.render(w, r, "approvals", "Approvals", http.StatusOK, d)
}

func (s *server) approvalView(r *http.Request, rq regflow.ApprovalRequest, now time.Time) (approvalView, error) {
	cfg := s.o.Config
	env := cfg.Environments[rq.Env]
	v := approvalView{ApprovalRequest: rq, Expired: !rq.ExpiresAt.IsZero() && !now.Before(rq.ExpiresAt),
		SlackURL: s.o.SlackURL(rq.SlackChannel, rq.SlackTS), Approvers: env.Approvers.Users, NeedsVerify: env.RequireVerification}
	for _, sev := range severities {
		n, seen := rq.Findings[sev]
		limit, capped := env.Gate[sev]
		if !seen && !capped {
			continue
		}
		c := severityCount{Severity: sev, Count: n, Cap: -1}
		if capped {
			c.Cap, c.Over = limit, n > limit
		}
		v.Findings = append(v.Findings, c)
	}
	for _, a := range cfg.Allowlist {
		if allowedFor(a, rq.Repository, now) {
			v.Allowed = append(v.Allowed, a)
		}
	}
	if i := slices.Index(cfg.PromotionPath, rq.Env); i > 0 {
		v.PrevEnv = cfg.PromotionPath[i-1]
		ver, err := s.o.Store.GetVerification(r.Context(), v.PrevEnv, rq.Repository, rq.Digest)
		switch {
		case err == nil:
			v.Verification = &ver
		case !errors.Is(err, store.ErrNotFound):
			return v, err
		}
	}
	return v, nil
}

// allowedFor says whether an allow-list entry applies to repo at now, as the gate reads it:
// it ends at the start of its expiry day (UTC), and one without a valid date never applies.
func allowedFor(a config.AllowedFinding, repo string, now time.Time) bool {
	if a.Repositories != "" {
		if !glob.Match(a.Repositories, repo) {
			return false
		}
	}
	end, err := time.Parse(time.DateOnly, a.Expires)
	return err == nil && now.Before(end)
}
