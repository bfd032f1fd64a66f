package webui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/webui"
)

// newSite seeds an estate of n repositories and serves the web view over it, reading the
// store as the CLI does (shared mode, a handle per transaction).
func newSite(t testing.TB, n int, withPreview bool, extra ...regflow.AuditEntry) *httptest.Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	seedEstate(t, path, n, extra...)
	st, err := embedded.OpenShared(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	o := webui.Options{Config: cfg, Store: st, Now: func() time.Time { return at }}
	if withPreview {
		o.Preview = registries(t, cfg, st, n)
	}
	h, err := webui.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

func TestPages(t *testing.T) {
	srv := newSite(t, 30, true)
	blocked := repoName(1) // i%25 == 1
	tests := []struct {
		name, method, path string
		status             int
		want, notWant      []string
	}{
		{"estate lists repositories, digests, badges and reasons", "GET", "/", 200,
			[]string{repoName(0), repoName(29), "sha256:" + digestOf(repoName(0), 10)[7:19], "pending approval", "blocked for staging: CRITICAL 2 &gt; 0",
				"waiting for verification", "failed", "copy to prod failed: registry answered 503", "source: CI pushes here", "U0BOB,U0CAROL"}, nil},
		{"estate filters by glob", "GET", "/?repo=team-000%2A/svc", 200, []string{repoName(9)}, []string{repoName(10)}},
		{"estate glob: * crosses / as everywhere in regflow", "GET", "/?repo=team-000%2A", 200, []string{repoName(9)}, []string{repoName(10)}},
		{"estate refuses a bad glob with the reason", "GET", "/?repo=team-%5B", 400, []string{"is not a repository glob"}, nil},
		{"estate paginates", "GET", "/?page=1", 200, []string{repoName(0)}, nil},
		{"repository shows pointers, timeline, superseded releases and the Slack link", "GET", "/repositories/" + repoName(0), 200,
			[]string{digestOf(repoName(0), 10), "promoted", "Superseded releases", "https://slack.com/archives/C0PROD/p1700000000000100", "image.promoted"}, nil},
		{"repository unknown", "GET", "/repositories/nope/nothing", 404, []string{"no release pointer or approval request"}, nil},
		{"approvals lists findings against the gate and allow-listed CVEs", "GET", "/approvals", 200,
			[]string{blocked, "CRITICAL 2", "gate ≤ 0: over", "CVE-2023-0000", "not reported yet (required)", "0 of 2", "1 of 2 · U0DAVE"}, nil},
		{"approvals by status", "GET", "/approvals?status=blocked", 200, []string{blocked}, []string{repoName(0) + "</a> → prod"}},
		{"approvals refuses an unknown status", "GET", "/approvals?status=bogus", 400, []string{"status must be one of"}, nil},
		{"retention asks for a glob first", "GET", "/retention", 200, []string{"name the repositories to preview"}, nil},
		{"retention preview of one repository", "GET", "/retention?repo=" + repoName(2), 200,
			[]string{"Dry run: would delete", "max age 90d", "<svg", "delete: ", "kept: "}, []string{repoName(3)}},
		{"retention sweeps only the page's repositories", "GET", "/retention?repo=team-%2A", 200,
			[]string{"30 repositories match", "this page previews 1–10", "270 images", repoName(0) + "</a></h2>", repoName(9) + "</a></h2>"}, []string{repoName(10) + "</a></h2>"}},
		{"retention's last page", "GET", "/retention?repo=team-%2A&page=3", 200,
			[]string{"this page previews 21–30", repoName(29) + "</a></h2>", "← Previous"}, []string{repoName(19) + "</a></h2>"}},
		{"retention of a glob nothing matches", "GET", "/retention?repo=nope%2F%2A", 200, []string{"0 repositories match", "No repository regflow sweeps matches"}, nil},
		{"read-only: POST is refused", "POST", "/", 405, []string{"read-only"}, nil},
		{"unknown page", "GET", "/nope", 404, []string{"There is no page"}, nil},
		{"static CSS is embedded", "GET", "/static/style.css", 200, []string{"--focus"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, tc.method, srv.URL+tc.path)
			if code != tc.status {
				t.Fatalf("status %d, want %d; body:\n%s", code, tc.status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(body, w) {
					t.Errorf("unexpected %q", w)
				}
			}
		})
	}
}

// A long-lived repository's audit trail is cut to the newest entries, and the page says so.
func TestRepositoryAuditIsBounded(t *testing.T) {
	repo := repoName(0)
	var extra []regflow.AuditEntry
	for i := range 600 {
		extra = append(extra, regflow.AuditEntry{Subject: repo, ID: fmt.Sprintf("note/%04d", i), Time: at.Add(-time.Duration(600-i) * time.Minute),
			Action: "repository.checked", Actor: "test", Reason: fmt.Sprintf("check %04d", i)})
	}
	srv := newSite(t, 1, false, extra...)
	code, body := get(t, "GET", srv.URL+"/repositories/"+repo)
	if code != 200 {
		t.Fatalf("status %d:\n%s", code, body)
	}
	if !strings.Contains(body, "the newest 500 of 602 entries") {
		t.Errorf("the page does not say it shows the newest 500 of 602 entries")
	}
	if n := strings.Count(body, "repository.checked"); n != 498 {
		t.Errorf("%d of the 600 checks shown, want the newest 498 (500 less the two promotions, which are newer)", n)
	}
	if !strings.Contains(body, "check 0599") || strings.Contains(body, "check 0101") {
		t.Errorf("the page should keep the newest entries and drop the oldest")
	}
}

// A registry that does not answer is named on the page; the others are still previewed.
func TestRetentionWithARegistryDown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	seedEstate(t, path, 3)
	st, err := embedded.OpenShared(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	h, err := webui.New(webui.Options{Config: cfg, Store: st, Now: func() time.Time { return at }, Preview: registries(t, cfg, st, 3, "prod")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	code, body := get(t, "GET", srv.URL+"/retention?repo=team-%2A")
	if code != 200 {
		t.Fatalf("status %d:\n%s", code, body)
	}
	for _, w := range []string{"could not be judged: list repositories of prod", "3 repositories match", "54 images", repoName(2) + "</a></h2>"} {
		if !strings.Contains(body, w) {
			t.Errorf("missing %q", w)
		}
	}
}

func TestRetentionUnavailableWithoutPreview(t *testing.T) {
	srv := newSite(t, 2, false)
	code, body := get(t, "GET", srv.URL+"/retention?repo=x")
	if code != 200 || !strings.Contains(body, "not available") {
		t.Fatalf("%d %s", code, body)
	}
}

func TestNewNeedsConfigAndStore(t *testing.T) {
	if _, err := webui.New(webui.Options{}); err == nil {
		t.Fatal("want an error without Config and Store")
	}
}

// The repository page shows, per environment, what each deployment target runs and flags a
// target running another digest than the pointer (drift); a target that cannot be read says
// why.
func TestRepositoryShowsWhatRunsAndDrift(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	seedEstate(t, path, 2)
	st, err := embedded.OpenShared(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	rels, err := st.Releases(context.Background())
	if err != nil || len(rels) == 0 {
		t.Fatalf("releases %v %v", rels, err)
	}
	rel := rels[0]
	other := "sha256:" + strings.Repeat("f", 64)
	targets := func(_ context.Context, env, repo string) []deploy.Observed {
		if env != rel.Env || repo != rel.Repository {
			return nil
		}
		return []deploy.Observed{
			{Kind: "ssm", Target: "/regflow/" + repo, Digest: rel.Digest},
			{Kind: "ecs", Target: env + "/web/app", Digest: other, Detail: "arn:aws:ecs:task-definition/web:9"},
			{Kind: "lambda", Target: "worker:live", Error: "AccessDeniedException: not authorized"},
		}
	}
	h, err := webui.New(webui.Options{Config: cfg, Store: st, Now: func() time.Time { return at }, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	code, body := get(t, "GET", srv.URL+"/repositories/"+rel.Repository)
	if code != 200 {
		t.Fatalf("status %d:\n%s", code, body)
	}
	for _, w := range []string{"What runs", "/regflow/" + rel.Repository, "b-drift", "drift", regflow.ShortDigest(other), "cannot be read: AccessDeniedException"} {
		if !strings.Contains(body, w) {
			t.Errorf("repository page lacks %q", w)
		}
	}
}
