package webui

import (
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/regflow"
)

func (s *server) funcs() template.FuncMap {
	return template.FuncMap{
		"short": regflow.ShortDigest,
		"abbrev": func(s string) string {
			if len(s) > 12 {
				return s[:12]
			}
			return s
		},
		"ago":   func(t time.Time) string { return ago(s.o.Now(), t) },
		"until": func(t time.Time) string { return until(s.o.Now(), t) },
		"utc": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"bytes":    regflow.Bytes,
		"repoURL":  repoURL,
		"join":     strings.Join,
		"dash":     dash,
		"pageURL":  pageURL,
		"slackURL": s.o.SlackURL,
		"add":      func(a, b int) int { return a + b },
		"filterOf": func(glob, err, status string) filterData { return filterData{Glob: glob, Error: err, Status: status} },
	}
}

// filterData fills the shared repository filter form.
type filterData struct{ Glob, Error, Status string }

// repoURL is the repository page; each path segment is escaped, the slashes stay.
func repoURL(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/repositories/" + strings.Join(parts, "/")
}

func cloneQuery(q url.Values) url.Values {
	v := url.Values{}
	for k, vs := range q {
		v[k] = vs
	}
	return v
}

// pageURL is base with its query's page set to n.
func pageURL(base string, q url.Values, n int) string {
	v := cloneQuery(q)
	v.Set("page", strconv.Itoa(n))
	return base + "?" + v.Encode()
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + span(-d)
	}
	return span(d) + " ago"
}

func until(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := t.Sub(now)
	if d <= 0 {
		return "expired " + span(-d) + " ago"
	}
	return "in " + span(d)
}

func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "moments"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}

// pager cuts a listing into pages.
type pager struct {
	Page, Pages, Total, From, To int
	Base                         string
	Query                        url.Values
}

func paginate(total, size int, raw string, base string, q url.Values) pager {
	n, _ := strconv.Atoi(raw)
	pages := max(1, (total+size-1)/size)
	n = min(max(n, 1), pages)
	from := (n - 1) * size
	return pager{Page: n, Pages: pages, Total: total, From: from, To: min(from+size, total), Base: base, Query: q}
}

// Prev and Next are the neighbouring pages' URLs, "" at either end.
func (p pager) Prev() string {
	if p.Page <= 1 {
		return ""
	}
	return pageURL(p.Base, p.Query, p.Page-1)
}

func (p pager) Next() string {
	if p.Page >= p.Pages {
		return ""
	}
	return pageURL(p.Base, p.Query, p.Page+1)
}
