package webui

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

// allStatuses are every request state, for a repository's full list.
var allStatuses = []string{
	regflow.StatusPending, regflow.StatusWaiting, regflow.StatusBlocked, regflow.StatusApproved,
	regflow.StatusFailed, regflow.StatusPromoted, regflow.StatusRejected, regflow.StatusExpired,
}

// timelineActions are the audit actions that move (or try to move) an environment.
var timelineActions = map[string]string{
	"image.promoted":      "promoted",
	"release.rolled-back": "rolled back",
}

type entryView struct {
	regflow.AuditEntry
	Digest string
	Env    string
	Kind   string // promoted, rolled-back, request, approval, verification, other
	Label  string
	URL    string
	Extra  []string
}

type envHistory struct {
	Env          string
	Source       bool
	Release      *regflow.Release
	Image        *regflow.Image
	Verification *regflow.Verification
	// Superseded are the earlier releases the pointer remembers, most recent first.
	Superseded []string
	Timeline   []entryView
	// Runs is what each deployment target runs; Drift a target running another digest.
	Runs  []runView
	Drift bool
}

type runView struct {
	deploy.Observed
	Drift bool
}

type requestView struct {
	regflow.ApprovalRequest
	SlackURL string
}

type repositoryData struct {
	Repository string
	Envs       []envHistory
	Requests   []requestView
	Audit      []entryView
	AuditTotal int
}

// maxAuditRows bounds the audit table of one repository page.
const maxAuditRows = 500

func (s *server) repository(w http.ResponseWriter, r *http.Request) {
	name := strings.Trim(r.PathValue("name"), "/")
	if name == "" {
		s.fail(w, r, http.StatusNotFound, "Name a repository: /repositories/<name>.")
		return
	}
	ctx := r.Context()
	cfg := s.o.Config
	rels, err := s.o.Store.Releases(ctx)
	if err != nil {
		s.failRead(w, r, "the release pointers", err)
		return
	}
	d := repositoryData{Repository: name}
	digests := map[string]bool{}
	envOf := map[string]string{} // request id → env
	for _, st := range allStatuses {
		reqs, err := s.o.Store.Requests(ctx, st)
		if err != nil {
			s.failRead(w, r, "the "+st+" approval requests", err)
			return
		}
		for _, q := range reqs {
			if q.Repository != name {
				continue
			}
			d.Requests = append(d.Requests, requestView{ApprovalRequest: q, SlackURL: s.o.SlackURL(q.SlackChannel, q.SlackTS)})
			digests[q.Digest] = true
			envOf[q.ID] = q.Env
		}
	}
	slices.SortFunc(d.Requests, func(a, b requestView) int { return b.CreatedAt.Compare(a.CreatedAt) })
	for _, env := range cfg.PromotionPath {
		h := envHistory{Env: env, Source: env == cfg.Source()}
		for i := range rels {
			if rels[i].Env == env && rels[i].Repository == name {
				rel := rels[i]
				h.Release, h.Superseded = &rel, rel.Previous
				digests[rel.Digest] = true
				for _, p := range rel.Previous {
					digests[p] = true
				}
			}
		}
		if h.Release != nil {
			img, err := s.o.Store.GetImage(ctx, name, h.Release.Digest)
			switch {
			case err == nil:
				h.Image = &img
			case !errors.Is(err, store.ErrNotFound):
				s.failRead(w, r, "the image record of "+regflow.ShortDigest(h.Release.Digest), err)
				return
			}
			v, err := s.o.Store.GetVerification(ctx, env, name, h.Release.Digest)
			switch {
			case err == nil:
				h.Verification = &v
			case !errors.Is(err, store.ErrNotFound):
				s.failRead(w, r, "the verification of "+regflow.ShortDigest(h.Release.Digest), err)
				return
			}
		}
		if s.o.Targets != nil && !h.Source {
			for _, o := range s.o.Targets(ctx, env, name) {
				drift := h.Release != nil && o.Error == "" && o.Digest != h.Release.Digest
				h.Runs = append(h.Runs, runView{Observed: o, Drift: drift})
				h.Drift = h.Drift || drift
			}
		}
		d.Envs = append(d.Envs, h)
	}
	if len(d.Requests) == 0 && len(digests) == 0 {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("regflow has no release pointer or approval request for %q. Check the name on the estate page.", name))
		return
	}

	subjects := []string{name}
	for dg := range digests {
		subjects = append(subjects, name+"@"+dg)
	}
	slices.Sort(subjects[1:])
	for _, subj := range subjects {
		entries, err := s.o.Store.Audit(ctx, subj)
		if err != nil {
			s.failRead(w, r, "the audit trail of "+subj, err)
			return
		}
		for _, e := range entries {
			d.Audit = append(d.Audit, view(e, envOf))
		}
	}
	slices.SortStableFunc(d.Audit, func(a, b entryView) int { return cmp.Or(b.Time.Compare(a.Time), strings.Compare(b.ID, a.ID)) })
	for i := range d.Envs {
		for _, e := range d.Audit {
			// Votes stay in the audit trail: the promotion entry names the approvers.
			if e.Env == d.Envs[i].Env && e.Kind != "other" && e.Kind != "approval" {
				d.Envs[i].Timeline = append(d.Envs[i].Timeline, e)
			}
		}
	}
	// A long-lived repository's trail grows without bound: show the newest, say where the rest is.
	if d.AuditTotal = len(d.Audit); d.AuditTotal > maxAuditRows {
		d.Audit = d.Audit[:maxAuditRows]
	}
	s.render(w, r, "repository", name, http.StatusOK, d)
}

// view classifies an audit entry for the page: which environment it is about and what kind.
func view(e regflow.AuditEntry, envOf map[string]string) entryView {
	v := entryView{AuditEntry: e, Env: e.Details["env"], Kind: "other", Label: e.Action, URL: e.Details["url"]}
	if _, dg, ok := strings.Cut(e.Subject, "@"); ok {
		v.Digest = dg
	}
	if v.Env == "" {
		if rest, ok := strings.CutPrefix(e.ID, "verify/"); ok {
			v.Env, _, _ = strings.Cut(rest, "/")
		} else if id := e.Details["request"]; id != "" {
			v.Env = envOf[id]
		}
	}
	action, _, _ := strings.Cut(e.Action, ".")
	switch {
	case timelineActions[e.Action] != "":
		v.Kind, v.Label = strings.ReplaceAll(e.Action[strings.Index(e.Action, ".")+1:], ".", "-"), timelineActions[e.Action]
	case action == "request" || action == "approval" || action == "verification":
		v.Kind = action
	}
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		if k != "env" && k != "url" && e.Details[k] != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		val := e.Details[k]
		if strings.HasPrefix(val, "sha256:") {
			val = regflow.ShortDigest(val)
		}
		v.Extra = append(v.Extra, k+" "+val)
	}
	return v
}
