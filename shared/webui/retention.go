package webui

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/retention"
)

// reposPerRetentionPage is how many repositories one page previews: the dry run reads
// each from every registry, so a page sweeps only its own.
const reposPerRetentionPage = 10

type decisionView struct {
	retention.Decision
	Registry string
	Age      string
	Delete   bool
}

type retentionRepo struct {
	Repository string
	Policy     retention.Policy
	Decisions  []decisionView
	Kept       int
	Deleted    int
	Bytes      int64
	Chart      chart
}

type retentionData struct {
	Glob        string
	Error       string
	Unavailable bool
	Ran         bool
	Now         time.Time
	Summary     string
	// Matching is how many repositories match the glob, across every page.
	Matching int
	Images   int
	Kept     int
	Deleted  int
	Bytes    int64
	Failed   []retention.Failure
	Repos    []retentionRepo
	Pager    pager
}

func (s *server) retention(w http.ResponseWriter, r *http.Request) {
	d := retentionData{Unavailable: s.o.Preview == nil}
	g, err := repoFilter(r)
	d.Glob = g
	switch {
	case err != nil:
		d.Error = err.Error()
		s.render(w, r, "retention", "Retention preview", http.StatusBadRequest, d)
		return
	case d.Unavailable || g == "":
		s.render(w, r, "retention", "Retention preview", http.StatusOK, d)
		return
	}
	// One page of repositories is swept: the dry run reads each from every registry.
	rep, err := s.o.Preview.DryRun(r.Context(), g, func(names []string) []string {
		d.Pager = paginate(len(names), reposPerRetentionPage, r.URL.Query().Get("page"), "/retention", r.URL.Query())
		return names[d.Pager.From:d.Pager.To]
	})
	if err != nil {
		s.failRead(w, r, "the retention dry run for "+g, err)
		return
	}
	d.Ran, d.Matching = true, d.Pager.Total
	d.Now, d.Summary = rep.Run.Now, rep.Summary()
	byRepo := map[string]*retentionRepo{}
	for _, rr := range rep.Registries {
		d.Failed = append(d.Failed, rr.Report.Failed...)
		for _, dec := range rr.Report.Decisions {
			rp := byRepo[dec.Repository]
			if rp == nil {
				rp = &retentionRepo{Repository: dec.Repository, Policy: retention.PolicyFor(s.o.Config.Retention, dec.Repository)}
				byRepo[dec.Repository] = rp
			}
			v := decisionView{Decision: dec, Registry: rr.Target.Name, Delete: dec.Action == retention.Delete, Age: "unknown"}
			if !dec.PushedAt.IsZero() {
				v.Age = span(rep.Run.Now.Sub(dec.PushedAt))
			}
			rp.Decisions = append(rp.Decisions, v)
			d.Images++
			if v.Delete {
				rp.Deleted++
				rp.Bytes += dec.SizeBytes
			} else {
				rp.Kept++
			}
		}
	}
	shown := make([]string, 0, len(byRepo))
	for n, rp := range byRepo {
		shown = append(shown, n)
		d.Kept += rp.Kept
		d.Deleted += rp.Deleted
		d.Bytes += rp.Bytes
	}
	slices.Sort(shown)
	for _, n := range shown {
		rp := byRepo[n]
		slices.SortFunc(rp.Decisions, func(a, b decisionView) int {
			if a.Delete != b.Delete {
				if a.Delete {
					return -1
				}
				return 1
			}
			return cmp.Or(a.PushedAt.Compare(b.PushedAt), strings.Compare(a.Registry, b.Registry), strings.Compare(a.Digest, b.Digest))
		})
		rp.Chart = ageChart(rep.Run.Now, rp.Policy, rp.Decisions)
		d.Repos = append(d.Repos, *rp)
	}
	s.render(w, r, "retention", "Retention preview: "+g, http.StatusOK, d)
}

// chart is an SVG histogram of images by age, kept and deleted stacked, with the
// policy's cut-offs drawn across it. Coordinates are in the SVG's viewBox units.
type chart struct {
	Width, Height, Left, Bottom float64
	Bars                        []bar
	Cutoffs                     []cutoff
	Ticks                       []tick
	YMax                        int
	Title, Desc                 string
}

type bar struct {
	X, W, KeepY, KeepH, DelY, DelH float64
	Label                          string
}

type cutoff struct {
	X, Y  float64
	Label string
	Class string
}

type tick struct {
	X      float64
	Label  string
	Anchor string
}

const (
	chartW, chartH       = 640.0, 200.0
	chartLeft, chartBase = 36.0, 170.0
	chartTop             = 16.0
	chartBins            = 24
)

func ageChart(now time.Time, pol retention.Policy, decs []decisionView) chart {
	days := func(d time.Duration) float64 { return d.Hours() / 24 }
	maxAge := days(pol.MaxAge.D())
	limit := max(maxAge, days(pol.UntaggedMaxAge.D()))
	for _, dec := range decs {
		if !dec.PushedAt.IsZero() {
			limit = max(limit, days(now.Sub(dec.PushedAt)))
		}
	}
	limit = math.Ceil(limit*1.1/10) * 10
	if limit <= 0 {
		limit = 10
	}
	keep := make([]int, chartBins)
	del := make([]int, chartBins)
	for _, dec := range decs {
		if dec.PushedAt.IsZero() {
			continue
		}
		i := min(int(days(now.Sub(dec.PushedAt))/limit*chartBins), chartBins-1)
		i = max(i, 0)
		if dec.Delete {
			del[i]++
		} else {
			keep[i]++
		}
	}
	ymax := 1
	for i := range keep {
		ymax = max(ymax, keep[i]+del[i])
	}
	plotW := chartW - chartLeft - 8
	plotH := chartBase - chartTop
	x := func(day float64) float64 { return chartLeft + day/limit*plotW }
	c := chart{Width: chartW, Height: chartH, Left: chartLeft, Bottom: chartBase, YMax: ymax}
	bw := plotW / chartBins
	for i := range keep {
		kh := float64(keep[i]) / float64(ymax) * plotH
		dh := float64(del[i]) / float64(ymax) * plotH
		if keep[i]+del[i] == 0 {
			continue
		}
		from, to := limit*float64(i)/chartBins, limit*float64(i+1)/chartBins
		c.Bars = append(c.Bars, bar{X: chartLeft + float64(i)*bw + 1, W: bw - 2, KeepY: chartBase - kh, KeepH: kh, DelY: chartBase - kh - dh, DelH: dh,
			Label: fmt.Sprintf("%.0f–%.0f days: %d kept, %d deleted", from, to, keep[i], del[i])})
	}
	if maxAge > 0 {
		c.Cutoffs = append(c.Cutoffs, cutoff{X: x(maxAge), Y: chartTop, Label: "max age " + pol.MaxAge.String(), Class: "cut"})
	}
	if u := days(pol.UntaggedMaxAge.D()); u > 0 && u != maxAge {
		// Lower than the max-age label, so the two never overlap.
		c.Cutoffs = append(c.Cutoffs, cutoff{X: x(u), Y: chartTop + 14, Label: "untagged " + pol.UntaggedMaxAge.String(), Class: "cut-untagged"})
	}
	for i, t := range []float64{0, limit / 4, limit / 2, limit * 3 / 4, limit} {
		anchor := map[int]string{0: "start", 4: "end"}[i]
		if anchor == "" {
			anchor = "middle"
		}
		c.Ticks = append(c.Ticks, tick{X: x(t), Label: fmt.Sprintf("%.0fd", t), Anchor: anchor})
	}
	kept, deleted := 0, 0
	for _, dec := range decs {
		if dec.Delete {
			deleted++
		} else {
			kept++
		}
	}
	c.Title = "Images by age"
	c.Desc = fmt.Sprintf("%d images by age in days, up to %.0f: %d kept, %d to delete; the policy's cut-off is at %s.", len(decs), limit, kept, deleted, pol.MaxAge)
	return c
}
