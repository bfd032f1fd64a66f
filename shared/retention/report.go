package retention

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/regflow/regflow/shared/regflow"
)

// Report gathers the selections of a sweep: totals, counts by reason and every decision.
// It marshals to JSON as is and renders as a table for people with WriteTable.
type Report struct {
	Now          time.Time `json:"now"`
	DryRun       bool      `json:"dryRun"`
	Repositories int       `json:"repositories"`
	Images       int       `json:"images"`
	Kept         int       `json:"kept"`
	Deleted      int       `json:"deleted"`
	// Batches is the number of BatchDeleteImage calls the deletions need.
	Batches int `json:"batches"`
	// BytesReclaimedUpperBound sums imageSizeInBytes of the deleted images. Layers are
	// shared between images and stored once, so the storage actually freed is at most this.
	BytesReclaimedUpperBound int64 `json:"bytesReclaimedUpperBound"`
	// Reasons counts images and bytes per action and reason code: deletions first, then
	// the most frequent reasons.
	Reasons []ReasonCount `json:"reasons"`
	// Failed lists repositories that could not be judged; nothing was deleted there.
	Failed []Failure `json:"failed,omitempty"`
	// Decisions holds every decision; call Sort after adding results in arbitrary order.
	Decisions []Decision `json:"decisions"`
}

// ReasonCount is how many images (and bytes) got one reason code.
type ReasonCount struct {
	Action Action `json:"action"`
	Code   Code   `json:"code"`
	Images int    `json:"images"`
	Bytes  int64  `json:"bytes"`
}

// Failure is a repository the sweep could not judge.
type Failure struct {
	Repository string `json:"repository"`
	Error      string `json:"error"`
}

// Add folds one repository's selection into the report.
func (r *Report) Add(res *Result) {
	if r.Now.IsZero() {
		r.Now = res.Now
	}
	r.Repositories++
	r.Images += len(res.Decisions)
	r.Kept += res.Kept
	r.Deleted += res.Deleted
	r.Batches += len(res.Batches)
	r.BytesReclaimedUpperBound += res.BytesReclaimedUpperBound
	for _, d := range res.Decisions {
		r.count(ReasonCount{Action: d.Action, Code: d.Code, Images: 1, Bytes: d.SizeBytes})
	}
	r.Decisions = append(r.Decisions, res.Decisions...)
	r.sortReasons()
}

// AddFailure records a repository that could not be judged.
func (r *Report) AddFailure(repo string, err error) {
	r.Failed = append(r.Failed, Failure{Repository: repo, Error: err.Error()})
}

// Merge folds another report (say, one worker's share of the sweep) into this one.
func (r *Report) Merge(o *Report) {
	if r.Now.IsZero() {
		r.Now = o.Now
	}
	r.DryRun = r.DryRun || o.DryRun
	r.Repositories += o.Repositories
	r.Images += o.Images
	r.Kept += o.Kept
	r.Deleted += o.Deleted
	r.Batches += o.Batches
	r.BytesReclaimedUpperBound += o.BytesReclaimedUpperBound
	for _, c := range o.Reasons {
		r.count(c)
	}
	r.Failed = append(r.Failed, o.Failed...)
	r.Decisions = append(r.Decisions, o.Decisions...)
	r.sortReasons()
}

// Sort puts decisions in repository then digest order and failures in repository
// order, so reports assembled in any order compare and serialise identically.
func (r *Report) Sort() {
	slices.SortStableFunc(r.Decisions, func(a, b Decision) int {
		return cmp.Or(strings.Compare(a.Repository, b.Repository), strings.Compare(a.Digest, b.Digest))
	})
	slices.SortStableFunc(r.Failed, func(a, b Failure) int { return strings.Compare(a.Repository, b.Repository) })
}

func (r *Report) count(c ReasonCount) {
	for k := range r.Reasons {
		if r.Reasons[k].Action == c.Action && r.Reasons[k].Code == c.Code {
			r.Reasons[k].Images += c.Images
			r.Reasons[k].Bytes += c.Bytes
			return
		}
	}
	r.Reasons = append(r.Reasons, c)
}

func (r *Report) sortReasons() {
	slices.SortFunc(r.Reasons, func(a, b ReasonCount) int {
		return cmp.Or(
			cmp.Compare(actionRank(a.Action), actionRank(b.Action)),
			cmp.Compare(b.Images, a.Images),
			strings.Compare(string(a.Code), string(b.Code)))
	})
}

func actionRank(a Action) int {
	if a == Delete {
		return 0
	}
	return 1
}

// Summary is one line for chat: what goes, from how many repositories, how much space.
func (r *Report) Summary() string {
	var b strings.Builder
	if r.DryRun {
		b.WriteString("Dry run: would delete ")
	} else {
		b.WriteString("Deleting ")
	}
	fmt.Fprintf(&b, "%d of %d images in %d %s, at most %s",
		r.Deleted, r.Images, r.Repositories, plural(r.Repositories, "repository", "repositories"), regflow.Bytes(r.BytesReclaimedUpperBound))
	if n := len(r.Failed); n > 0 {
		fmt.Fprintf(&b, "; %d %s could not be judged", n, plural(n, "repository", "repositories"))
	}
	return b.String()
}

// WriteTable renders the report for people: totals, counts by reason, then one row per
// decision grouped by repository, deletions first in batch order.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mode := ""
	if r.DryRun {
		mode = " (dry run: nothing deleted)"
	}
	fmt.Fprintf(tw, "Retention sweep at %s%s\n", r.Now.UTC().Format(time.RFC3339), mode)
	fmt.Fprintf(tw, "%d %s, %d images: %d kept, %d deleted in %d %s; at most %s reclaimed (layers shared between images count once per image, so this is an upper bound)\n",
		r.Repositories, plural(r.Repositories, "repository", "repositories"), r.Images, r.Kept, r.Deleted,
		r.Batches, plural(r.Batches, "batch", "batches"), regflow.Bytes(r.BytesReclaimedUpperBound))

	if len(r.Reasons) > 0 {
		fmt.Fprint(tw, "\nACTION\tREASON\tIMAGES\tSIZE\n")
		for _, c := range r.Reasons {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", c.Action, c.Code, c.Images, regflow.Bytes(c.Bytes))
		}
	}
	if len(r.Failed) > 0 {
		fmt.Fprint(tw, "\nFAILED REPOSITORY\tERROR\n")
		for _, f := range r.Failed {
			fmt.Fprintf(tw, "%s\t%s\n", cell(f.Repository), cell(f.Error))
		}
	}
	if len(r.Decisions) > 0 {
		rows := slices.Clone(r.Decisions)
		slices.SortStableFunc(rows, func(a, b Decision) int {
			return cmp.Or(
				strings.Compare(a.Repository, b.Repository),
				cmp.Compare(actionRank(a.Action), actionRank(b.Action)),
				cmp.Compare(a.Batch, b.Batch),
				b.PushedAt.Compare(a.PushedAt),
				strings.Compare(a.Digest, b.Digest))
		})
		fmt.Fprint(tw, "\nREPOSITORY\tDIGEST\tTAGS\tPUSHED\tSIZE\tBATCH\tDECISION\n")
		for _, d := range rows {
			pushed, batch := "unknown", "-"
			if !d.PushedAt.IsZero() {
				pushed = d.PushedAt.UTC().Format(time.DateOnly)
			}
			if d.Batch > 0 {
				batch = strconv.Itoa(d.Batch)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				cell(d.Repository), cell(short(d.Digest)), cell(tagList(d.Tags)), pushed, regflow.Bytes(d.SizeBytes), batch, cell(d.Reason))
		}
	}
	return tw.Flush()
}

func tagList(tags []string) string {
	switch {
	case len(tags) == 0:
		return "-"
	case len(tags) > 3:
		return strings.Join(tags[:3], ",") + fmt.Sprintf(",+%d", len(tags)-3)
	default:
		return strings.Join(tags, ",")
	}
}

// cell keeps a value from breaking the table layout.
func cell(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
