package sweep

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/retention"
	"github.com/regflow/regflow/shared/store"
)

// Report is a sweep's result: per registry, the selection (every decision, as
// shared/retention explains it) and what the deletes did.
type Report struct {
	Run        Run               `json:"run"`
	Registries []*RegistryReport `json:"registries"`
}

// RegistryReport is one registry's part of a sweep.
type RegistryReport struct {
	Target Target `json:"target"`
	// Report is the selection: identical in a dry run and a real one.
	Report  retention.Report `json:"selection"`
	Outcome Outcome          `json:"outcome"`
	// NotDeleted are the selected images the registry refused to delete.
	NotDeleted []NotDeleted `json:"notDeleted,omitempty"`
	// Skipped are selected images left alone because the store protects them since
	// the selection (a rollback, a new request), with what protects them now.
	Skipped []NotDeleted `json:"skipped,omitempty"`
	// Drift are digests that run in the registry's account (kept for it) but that no
	// environment's release pointer names as current.
	Drift []Drift `json:"drift,omitempty"`
	// InUseNotRead says why what runs was not read for this registry (then nothing was
	// kept for running).
	InUseNotRead string `json:"inUseNotRead,omitempty"`
}

// Outcome is what the deletes did.
type Outcome struct {
	// Removed images were deleted by this sweep.
	Removed int `json:"removed"`
	// AlreadyGone were selected but gone when their delete ran.
	AlreadyGone int `json:"alreadyGone"`
	// Refused were selected but not deleted (see NotDeleted).
	Refused int `json:"refused"`
	// BytesRemoved sums the removed images' sizes: an upper bound, as layers are shared.
	BytesRemoved int64 `json:"bytesRemoved"`
	// Skipped were selected but protected by the time their delete call came (see Skipped).
	Skipped int `json:"skipped,omitempty"`
}

func (o Outcome) add(p Outcome) Outcome {
	return Outcome{o.Removed + p.Removed, o.AlreadyGone + p.AlreadyGone, o.Refused + p.Refused, o.BytesRemoved + p.BytesRemoved, o.Skipped + p.Skipped}
}

// NotDeleted is a selected image that stays, with the registry's reason.
type NotDeleted struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Code       string `json:"code"`
	Reason     string `json:"reason"`
}

func newRegistryReport(t Target, run Run) *RegistryReport {
	return &RegistryReport{Target: t, Report: retention.Report{Now: run.Now, DryRun: run.DryRun, Reasons: []retention.ReasonCount{}, Decisions: []retention.Decision{}}}
}

// AddFailure records a repository that could not be swept.
func (r *RegistryReport) AddFailure(repo string, err error) { r.Report.AddFailure(repo, err) }

// Merge folds another part of the same registry's report into r.
func (r *RegistryReport) Merge(o *RegistryReport) {
	r.Report.Merge(&o.Report)
	r.Outcome = r.Outcome.add(o.Outcome)
	r.NotDeleted = append(r.NotDeleted, o.NotDeleted...)
	r.Skipped = append(r.Skipped, o.Skipped...)
	r.Drift = append(r.Drift, o.Drift...)
	if r.InUseNotRead == "" {
		r.InUseNotRead = o.InUseNotRead
	}
}

// Sort orders decisions and failures so reports assembled in any order compare equal.
func (r *RegistryReport) Sort() {
	r.Report.Sort()
	r.Outcome.Refused, r.Outcome.Skipped = len(r.NotDeleted), len(r.Skipped)
	byName := func(a, b NotDeleted) int {
		return cmp.Or(strings.Compare(a.Repository, b.Repository), strings.Compare(a.Digest, b.Digest))
	}
	slices.SortFunc(r.NotDeleted, byName)
	slices.SortFunc(r.Skipped, byName)
	slices.SortFunc(r.Drift, func(a, b Drift) int {
		return cmp.Or(strings.Compare(a.Repository, b.Repository), strings.Compare(a.Digest, b.Digest), strings.Compare(a.Where, b.Where))
	})
	r.Drift = slices.Compact(r.Drift)
}

// Counts are the registry report's totals as the run's counters hold them.
func (r *RegistryReport) Counts() store.SweepCounts {
	return store.SweepCounts{
		Repositories: r.Report.Repositories, Images: r.Report.Images, Kept: r.Report.Kept,
		Selected: r.Report.Deleted, Deleted: r.Outcome.Removed, AlreadyGone: r.Outcome.AlreadyGone,
		NotDeleted: len(r.NotDeleted), FailedRepositories: len(r.Report.Failed), BytesReclaimed: r.Outcome.BytesRemoved,
	}
}

// Add folds a registry report into the sweep report, merging with the same registry's.
func (r *Report) Add(rr *RegistryReport) {
	for _, have := range r.Registries {
		if have.Target.Key() == rr.Target.Key() {
			have.Merge(rr)
			return
		}
	}
	r.Registries = append(r.Registries, rr)
}

// Sort orders registries by name and sorts each.
func (r *Report) Sort() {
	slices.SortStableFunc(r.Registries, func(a, b *RegistryReport) int { return strings.Compare(a.Target.Name, b.Target.Name) })
	for _, rr := range r.Registries {
		rr.Sort()
	}
}

// Totals sums the registries.
func (r *Report) Totals() (sel retention.Report, out Outcome) {
	sel.Now, sel.DryRun = r.Run.Now, r.Run.DryRun
	for _, rr := range r.Registries {
		s := rr.Report
		s.Decisions = nil // totals only
		sel.Merge(&s)
		out = out.add(rr.Outcome)
	}
	out.Refused, out.Skipped = 0, 0
	for _, rr := range r.Registries {
		out.Refused += len(rr.NotDeleted)
		out.Skipped += len(rr.Skipped)
	}
	return sel, out
}

// Summary is the chat line: what was (or would be) deleted, where, and what failed.
func (r *Report) Summary() string {
	sel, out := r.Totals()
	var b strings.Builder
	names := make([]string, len(r.Registries))
	for i, rr := range r.Registries {
		names[i] = rr.Target.Name
	}
	where := strings.Join(names, ", ")
	if where == "" {
		where = "no registries"
	}
	if r.Run.DryRun {
		fmt.Fprintf(&b, "Dry run: would delete %d of %d images in %d repositories (%s), at most %s; nothing was deleted",
			sel.Deleted, sel.Images, sel.Repositories, where, regflow.Bytes(sel.BytesReclaimedUpperBound))
	} else {
		fmt.Fprintf(&b, "Deleted %d of %d images in %d repositories (%s), at most %s reclaimed",
			out.Removed, sel.Images, sel.Repositories, where, regflow.Bytes(out.BytesRemoved))
		if out.AlreadyGone > 0 {
			fmt.Fprintf(&b, "; %d were already gone", out.AlreadyGone)
		}
		if out.Refused > 0 {
			fmt.Fprintf(&b, "; %d could not be deleted", out.Refused)
		}
		if out.Skipped > 0 {
			fmt.Fprintf(&b, "; %d kept: protected since the selection", out.Skipped)
		}
	}
	if n := r.DriftCount(); n > 0 {
		fmt.Fprintf(&b, "; %d running %s no release pointer names (drift)", n, map[bool]string{true: "image", false: "images"}[n == 1])
	}
	if n := len(sel.Failed); n > 0 {
		fmt.Fprintf(&b, "; partial: %d %s could not be swept (%s)", n, map[bool]string{true: "repository", false: "repositories"}[n == 1], strings.Join(r.NotSwept(10), ", "))
	}
	return b.String()
}

// DriftCount is how many running digests no pointer names, over every registry.
func (r *Report) DriftCount() int {
	n := 0
	for _, rr := range r.Registries {
		n += len(rr.Drift)
	}
	return n
}

// Partial says whether some repositories could not be swept.
func (r *Report) Partial() bool {
	for _, rr := range r.Registries {
		if len(rr.Report.Failed) > 0 {
			return true
		}
	}
	return false
}

// NotSwept names up to limit repositories that could not be swept, as
// registry/repository, and how many more there are.
func (r *Report) NotSwept(limit int) []string {
	var out []string
	more := 0
	for _, rr := range r.Registries {
		for _, f := range rr.Report.Failed {
			if len(out) == limit {
				more++
				continue
			}
			out = append(out, rr.Target.Name+"/"+f.Repository)
		}
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("%d more", more))
	}
	return out
}

// Alert is the summary as a regflow alert for Slack.
func (r *Report) Alert() regflow.Alert {
	sel, out := r.Totals()
	title := "Retention sweep completed"
	if r.Run.DryRun {
		title = "Retention sweep (dry run) completed"
	}
	if r.Partial() {
		title += " (partial)"
	}
	a := regflow.Alert{Kind: "retention-sweep", Title: title, Text: r.Summary(), Fields: []regflow.Field{
		{Label: "Run", Value: r.Run.ID},
		{Label: "Images", Value: fmt.Sprintf("%d kept, %d selected, %d deleted", sel.Kept, sel.Deleted, out.Removed)},
	}}
	for _, c := range sel.Reasons {
		if len(a.Fields) == 9 {
			break
		}
		a.Fields = append(a.Fields, regflow.Field{Label: string(c.Action) + ": " + string(c.Code), Value: fmt.Sprintf("%d images, %s", c.Images, regflow.Bytes(c.Bytes))})
	}
	if n := r.DriftCount(); n > 0 {
		a.Fields = append(a.Fields, regflow.Field{Label: "Drift", Value: fmt.Sprintf("%d running images no release pointer names", n)})
	}
	if len(sel.Failed) > 0 {
		f := sel.Failed[0]
		a.Fields = append(a.Fields, regflow.Field{Label: "Failed", Value: fmt.Sprintf("%d, first %s: %s", len(sel.Failed), f.Repository, f.Error)})
	}
	return a
}

// WriteTable renders the report for people, registry by registry.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "Sweep %s: %s\n", r.Run.ID, r.Summary())
	for _, rr := range r.Registries {
		fmt.Fprintf(w, "\n== %s ==\n", rr.Target)
		if err := rr.Report.WriteTable(w); err != nil {
			return err
		}
		for _, list := range []struct {
			title string
			items []NotDeleted
		}{{"NOT DELETED", rr.NotDeleted}, {"SKIPPED", rr.Skipped}} {
			if len(list.items) == 0 {
				continue
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "\n%s\tDIGEST\tCODE\tREASON\n", list.title)
			for _, n := range list.items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.Repository, regflow.ShortDigest(n.Digest), n.Code, n.Reason)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if len(rr.Drift) > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "\nDRIFT (runs, no pointer names it)\tDIGEST\tWHERE\n")
			for _, d := range rr.Drift {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Repository, regflow.ShortDigest(d.Digest), d.Where)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if rr.InUseNotRead != "" {
			fmt.Fprintf(w, "\nIn use: not read (%s)\n", rr.InUseNotRead)
		}
	}
	return nil
}

// encodeParts splits a registry report into gzipped JSON parts of at most limit
// bytes each: the first carries every total, later ones only more decisions, so
// merging them back with RegistryReport.Merge restores the report.
func encodeParts(rr *RegistryReport, limit int) ([][]byte, error) {
	for n := 1; ; n *= 2 {
		if n > len(rr.Report.Decisions) && n > 1 {
			return nil, fmt.Errorf("report of %s does not fit in parts of %d bytes", rr.Target, limit)
		}
		var parts [][]byte
		fits := true
		size := (len(rr.Report.Decisions) + n - 1) / n
		for i := 0; i < n && fits; i++ {
			lo, hi := min(i*size, len(rr.Report.Decisions)), min((i+1)*size, len(rr.Report.Decisions))
			var p RegistryReport
			if i == 0 {
				p = *rr
			} else {
				p = RegistryReport{Target: rr.Target}
			}
			p.Report.Decisions = rr.Report.Decisions[lo:hi]
			b, err := gzipJSON(&p)
			if err != nil {
				return nil, err
			}
			fits = len(b) <= limit
			parts = append(parts, b)
		}
		if fits {
			return parts, nil
		}
	}
}

func gzipJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodePart(b []byte) (*RegistryReport, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var rr RegistryReport
	if err := json.NewDecoder(zr).Decode(&rr); err != nil {
		return nil, err
	}
	return &rr, nil
}
