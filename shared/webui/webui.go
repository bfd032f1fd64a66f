// Package webui is regflow's read-only web view, served by `regflow ui`: the estate
// (what runs where), one repository's promotion timeline and audit trail, the open
// approval requests, and a retention dry run. Pages are rendered on the server with
// html/template; the CSS and the little JS are embedded, so nothing is fetched at run
// time and every page works without JS.
//
// The package reads through the narrow interfaces below (store.Store implements them)
// and is handed the retention dry run as a function: it builds no use case itself.
package webui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/app"
	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/glob"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/sweep"
)

// Releases reads release pointers.
type Releases interface {
	Releases(ctx context.Context) ([]regflow.Release, error)
}

// Requests reads approval requests.
type Requests interface {
	Requests(ctx context.Context, status string) ([]regflow.ApprovalRequest, error)
}

// AuditTrail reads a subject's audit entries ("repo" or "repo@digest"), oldest first.
type AuditTrail interface {
	Audit(ctx context.Context, subject string) ([]regflow.AuditEntry, error)
}

// Images reads image records and verification results; both return store.ErrNotFound
// (or an error wrapping it) when there is none.
type Images interface {
	GetImage(ctx context.Context, repo, digest string) (regflow.Image, error)
	GetVerification(ctx context.Context, env, repo, digest string) (regflow.Verification, error)
}

// Store is everything the pages read.
type Store interface {
	Releases
	Requests
	AuditTrail
	Images
}

// Preview is the retention dry run. It must delete nothing.
type Preview interface {
	// DryRun previews the repositories matching repoGlob (regflow's glob: * crosses /):
	// page picks the ones to sweep from the sorted names of all that match.
	DryRun(ctx context.Context, repoGlob string, page func(names []string) []string) (*sweep.Report, error)
}

// Sweeper is the composition root's estate sweep (*app.App).
type Sweeper interface {
	Sweep(ctx context.Context, o app.SweepOptions) (*sweep.Report, error)
}

// SweepPreview is the retention page's preview: the sweep `regflow sweep --dry-run --repo
// GLOB` runs, built by the composition root, with ages measured at now(). A dry run deletes
// and audits nothing; the only write is the sweep's cache of manifest facts, as for the CLI
// (it spares ECR the pulls that would make every image look recently used).
func SweepPreview(a Sweeper, now func() time.Time) Preview {
	return sweepPreview{a: a, now: now}
}

type sweepPreview struct {
	a   Sweeper
	now func() time.Time
}

func (p sweepPreview) DryRun(ctx context.Context, repoGlob string, page func([]string) []string) (*sweep.Report, error) {
	at := p.now().UTC()
	return p.a.Sweep(ctx, app.SweepOptions{Run: sweep.Run{ID: "ui-" + at.Format("20060102T150405.000Z"), Now: at, DryRun: true}, Only: repoGlob, Page: page})
}

// Options configure the web view.
type Options struct {
	// Config gives the promotion order, approvers, allow-list and retention policy.
	Config *config.Config
	Store  Store
	// Preview serves the retention page; nil shows that page as unavailable.
	Preview Preview
	// Now is the clock ages are shown against; default time.Now.
	Now func() time.Time
	// SlackURL links a Slack message; default https://slack.com/archives/<channel>/p<ts>.
	SlackURL func(channel, ts string) string
	// PageSize bounds the rows of a listing page; default 100.
	PageSize int
	// Targets reads what an environment's deployment targets run (the composition root's
	// Deployer.Observe); nil leaves it out. Read per repository page only: one page, a few
	// targets.
	Targets func(ctx context.Context, env, repo string) []deploy.Observed
	Log     *slog.Logger
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// server holds the parsed pages; it is immutable after New.
type server struct {
	o     Options
	pages map[string]*template.Template
}

// New returns the web view's handler.
func New(o Options) (http.Handler, error) {
	if o.Config == nil || o.Store == nil {
		return nil, errors.New("webui: Config and Store are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SlackURL == nil {
		o.SlackURL = slackArchiveURL
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &server{o: o, pages: map[string]*template.Template{}}
	funcs := s.funcs()
	for _, p := range []string{"estate", "repository", "approvals", "retention", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("webui: parse page %s: %w", p, err)
		}
		s.pages[p] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.estate)
	mux.HandleFunc("GET /repositories/{name...}", s.repository)
	mux.HandleFunc("GET /approvals", s.approvals)
	mux.HandleFunc("GET /retention", s.retention)
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(http.FileServerFS(static))))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.fail(w, r, http.StatusMethodNotAllowed, "This view is read-only: it answers GET only.")
			return
		}
		s.fail(w, r, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	})
	return secure(mux), nil
}

// secure sets headers that keep the pages self-contained: no script or style from elsewhere.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

func cacheFor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		h.ServeHTTP(w, r)
	})
}

func slackArchiveURL(channel, ts string) string {
	if channel == "" || ts == "" {
		return ""
	}
	return "https://slack.com/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
}

// page is what every template gets.
type page struct {
	Title string
	Nav   string
	Now   time.Time
	Data  any
}

func (s *server) render(w http.ResponseWriter, r *http.Request, name, title string, status int, data any) {
	var b strings.Builder
	if err := s.pages[name].Execute(&b, page{Title: title, Nav: name, Now: s.o.Now(), Data: data}); err != nil {
		s.o.Log.Error("render page", "page", name, "error", err)
		http.Error(w, "the page could not be rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(b.String()))
	}
}

type errorData struct {
	Status  int
	Message string
}

func (s *server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, "error", http.StatusText(status), status, errorData{Status: status, Message: msg})
}

// failRead reports a read the page could not do, with what the operator can check.
func (s *server) failRead(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.o.Log.Error("read for web view", "what", what, "error", err)
	s.fail(w, r, http.StatusBadGateway, fmt.Sprintf("Could not read %s: %v. Check that the store is reachable (is `regflow local` running, or are your AWS credentials current?) and reload.", what, err))
}

// repoFilter reads the repository filter; an empty one matches everything.
func repoFilter(r *http.Request) (string, error) {
	g := strings.TrimSpace(r.URL.Query().Get("repo"))
	if g == "" {
		return "", nil
	}
	if err := glob.Valid(g); err != nil {
		return g, fmt.Errorf("%q is not a repository glob (* matches any run of characters, / included; ? one character): %w", g, err)
	}
	return g, nil
}

func matches(g, repo string) bool {
	return g == "" || glob.Match(g, repo)
}
