package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackmsg"
)

// chromiumPath finds Debian's chromium (or $CHROMIUM).
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		if p, err := exec.LookPath(p); err == nil {
			return p
		}
		return ""
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// demoEstate is what the browser sees: shop/web released twice to staging and prod,
// prod rolled back, a new build pending approval and old feature builds for retention;
// shop/api with a build blocked by the gate and one waiting for staging's verification.
type demoEstate struct {
	f                         *fixture
	a, b, c, blocked, waiting string // digests
	verifyURL                 string
}

func seedDemoEstate(t *testing.T) *demoEstate {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load("../../regflow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC()
	f := &fixture{dir: t.TempDir()}
	st, err := localstack.Start(ctx, localstack.Options{Config: cfg, Dir: f.dir, SharedStore: true, Clock: localecr.FixedClock(t0.Add(-200 * 24 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	f.st = st
	f.wireLocalJSON(t, cfg)
	d := &demoEstate{f: f, verifyURL: "https://ci.example.com/deploy/4711"}
	at := func(ago time.Duration) { st.Clock.SetNow(t0.Add(-ago)) }
	const day = 24 * time.Hour
	click := func(user, id string) {
		t.Helper()
		if res, err := st.Click(ctx, user, slackmsg.ActionApprove, id); err != nil || res.Status != http.StatusOK {
			t.Fatalf("%s approves %s: %+v %v", user, id, res, err)
		}
		f.settle(t)
	}
	release := func(repo, sha string) string {
		t.Helper()
		dg := pushTo(t, f, repo, sha)
		scanDev(t, f, repo, dg)
		click("U0BOB", regflow.RequestID("staging", repo, dg))
		if _, err := st.Gate.Verify(ctx, regflow.Verification{Env: "staging", Repository: repo, Digest: dg, Passed: true, URL: d.verifyURL,
			By: "deploy-bot", Requester: "U0ALICE", At: st.Clock.Now()}); err != nil {
			t.Fatal(err)
		}
		f.settle(t)
		click("U0BOB", regflow.RequestID("prod", repo, dg))
		click("U0CAROL", regflow.RequestID("prod", repo, dg))
		return dg
	}
	at(200 * day)
	d.a = release("shop/web", sha(1))
	for i := range 6 {
		at(time.Duration(150-i) * day)
		pushTo(t, f, "shop/web", sha(10+i))
	}
	at(30 * day)
	d.b = release("shop/web", sha(2))
	at(2 * day)
	if _, err := st.Promoter.Rollback(ctx, "prod", "shop/web", "", "U0CAROL"); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	at(1 * day)
	d.c = pushTo(t, f, "shop/web", sha(3))
	scanDev(t, f, "shop/web", d.c, localecr.Finding{Name: "CVE-2023-0000", Severity: "HIGH"}, localecr.Finding{Name: "CVE-2024-24790", Severity: "MEDIUM"})
	at(5 * day)
	d.waiting = pushTo(t, f, "shop/api", sha(4))
	scanDev(t, f, "shop/api", d.waiting)
	click("U0BOB", regflow.RequestID("staging", "shop/api", d.waiting))
	at(3 * day)
	d.blocked = pushTo(t, f, "shop/api", sha(5))
	scanDev(t, f, "shop/api", d.blocked, localecr.Finding{Name: "CVE-2024-3094", Severity: "CRITICAL"})
	st.Clock.SetNow(t0)

	for _, want := range []struct{ env, repo, digest, status string }{
		{"staging", "shop/web", d.c, regflow.StatusPending},
		{"staging", "shop/api", d.blocked, regflow.StatusBlocked},
		{"prod", "shop/api", d.waiting, regflow.StatusWaiting},
	} {
		r, err := st.Store.GetRequest(ctx, regflow.RequestID(want.env, want.repo, want.digest))
		if err != nil || r.Status != want.status {
			t.Fatalf("seed: %s %s request should be %s: %+v %v", want.env, want.repo, want.status, r, err)
		}
	}
	if rel, err := st.Store.GetRelease(ctx, "prod", "shop/web"); err != nil || rel.Digest != d.a {
		t.Fatalf("seed: prod should run %s again after the rollback: %+v %v", d.a, rel, err)
	}
	return d
}

// sha is a commit SHA that looks like one.
func sha(n int) string {
	sum := sha256.Sum256([]byte{byte(n)})
	return hex.EncodeToString(sum[:20])
}

func pushTo(t *testing.T, f *fixture, repo, tag string) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(f.st.Info().Environments["dev"].Registry+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(context.Background())); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	return digestOf(t, img)
}

func scanDev(t *testing.T, f *fixture, repo, digest string, findings ...localecr.Finding) {
	t.Helper()
	if err := f.st.ECR["dev"].InjectScan(repo, digest, findings...); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
}

// lockedBuffer is an io.Writer the test can read while the command writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startUI runs `regflow ui --local` as a user would and returns the URL it prints.
func startUI(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newRootCmd()
	var out, errOut lockedBuffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"--local", "--state-dir", dir, "--config", "../../regflow.yaml", "ui", "--addr", "127.0.0.1:0"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("regflow ui: %v\n%s", err, errOut.String())
		}
	})
	re := regexp.MustCompile(`at (http://127\.0\.0\.1:\d+)/`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			if !strings.Contains(out.String(), "loopback only") {
				t.Errorf("regflow ui should say it listens on loopback only:\n%s", out.String())
			}
			return m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("regflow ui exited: %v\n%s%s", err, out.String(), errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("regflow ui printed no URL:\n%s%s", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// problems records what a page must not produce: console errors, exceptions, browser-log
// errors (CSP violations among them), failed loads and HTTP errors.
type problems struct {
	mu   sync.Mutex
	list []string
}

func (p *problems) listen(ev any) {
	var msg string
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
			msg = fmt.Sprintf("console %s", e.Type)
			for _, a := range e.Args {
				msg += " " + string(a.Value) + a.Description
			}
		}
	case *runtime.EventExceptionThrown:
		msg = "exception: " + e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
	case *log.EventEntryAdded:
		if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
			msg = fmt.Sprintf("browser log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL)
		}
	case *network.EventLoadingFailed:
		msg = fmt.Sprintf("request failed: %s %s", e.ErrorText, e.Type)
	case *network.EventResponseReceived:
		if e.Response.Status >= 400 {
			msg = fmt.Sprintf("HTTP %d for %s", e.Response.Status, e.Response.URL)
		}
	}
	if msg != "" {
		p.mu.Lock()
		p.list = append(p.list, msg)
		p.mu.Unlock()
	}
}

func (p *problems) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.list
	p.list = nil
	return out
}

// a11yAudit lists what would keep a page from being read by everyone: form controls
// without a label, SVGs without a name, a document without a language, and text whose
// contrast with what is behind it is under WCAG AA (4.5:1, 3:1 for large text).
const a11yAudit = `(() => {
  const out = [];
  if (!document.documentElement.lang) out.push("html has no lang");
  document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(e => {
    if (!(e.labels && e.labels.length) && !e.getAttribute("aria-label")) out.push("unlabelled " + e.outerHTML);
  });
  document.querySelectorAll("button, a[href]").forEach(e => {
    if (!e.textContent.trim() && !e.getAttribute("aria-label")) out.push("nameless " + e.outerHTML);
  });
  document.querySelectorAll("svg").forEach(e => {
    if (e.getAttribute("role") !== "img" || !(e.getAttribute("aria-labelledby") || e.getAttribute("aria-label"))) out.push("svg without role=img and a name");
  });
  const rgb = c => { const m = /rgba?\(([^)]+)\)/.exec(c || ""); if (!m) return null; const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const behind = el => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c && c.a > 0) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const done = new Set();
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (w.nextNode()) {
    const el = w.currentNode.parentElement;
    if (!w.currentNode.textContent.trim() || !el || done.has(el)) continue;
    done.add(el);
    const s = getComputedStyle(el), r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || s.visibility === "hidden" || el.closest("title, desc")) continue;
    const fg = rgb(el instanceof SVGElement ? s.fill : s.color), bg = behind(el);
    if (!fg) continue;
    const a = lum(fg), b = lum(bg), ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(s.fontSize), large = size >= 24 || (parseInt(s.fontWeight, 10) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) out.push("contrast " + ratio.toFixed(2) + ":1 for " + el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined ? "." + el.className : "") + " " + JSON.stringify(w.currentNode.textContent.trim().slice(0, 40)));
  }
  return out;
})()`

func TestUIInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	chromium := chromiumPath()
	if chromium == "" {
		testenv.Unavailable(t, "no chromium for the browser tests: apt-get install -y chromium (.ci/run installs it), or set CHROMIUM")
	}
	d := seedDemoEstate(t)
	base := startUI(t, d.f.dir)

	shots := os.Getenv("REGFLOW_UI_SCREENSHOTS")
	if shots == "" {
		var err error
		if shots, err = os.MkdirTemp("", "regflow-ui-screenshots-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-gpu", true),
		// CI containers give /dev/shm 64 MB, too little for chromium's renderer.
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelTimeout()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", chromium, err)
	}
	var seen problems
	if err := chromedp.Listen(ctx, seen.listen); err != nil {
		t.Fatal(err)
	}
	for _, enable := range []func() error{
		func() error { _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); return err },
		func() error { _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); return err },
		func() error { _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); return err },
	} {
		if err := enable(); err != nil {
			t.Fatal(err)
		}
	}

	// The recorder must see what it is there to catch: a page that answers 404 and a script
	// the page's CSP refuses.
	t.Run("recorder sees failures", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/no-such-page"), chromedp.WaitReady(chromedp.CSS("footer"))); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`console.error("boom")`)); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(seen.take(), "\n")
		for _, w := range []string{"HTTP 404", "boom"} {
			if !strings.Contains(got, w) {
				t.Errorf("the recorder missed %q; it saw:\n%s", w, got)
			}
		}
	})

	short := regflow.ShortDigest
	pages := []struct {
		name, path string
		want       []string
		// css must match at least one element each.
		css []string
	}{
		{"estate", "/", []string{"shop/web", "shop/api", short(d.a), short(d.b), "pending approval", "waiting for verification",
			"blocked", "blocked for staging: CRITICAL", "source: CI pushes here", "by U0BOB", "by U0CAROL"},
			// app.js ran: times carry the viewer's own zone.
			[]string{"table.estate", ".badge.b-pending", ".badge.b-blocked", ".badge.b-waiting", "main#main", "nav[aria-label=Main]", `time[title*="your time"]`}},
		{"repository", "/repositories/shop/web", []string{short(d.a), short(d.b), "rolled back", "promoted", "Superseded releases",
			"prod rolled back from " + short(d.b), "verification run", "approval.approved", "U0CAROL"},
			[]string{".timeline .t-rolled-back", ".timeline .t-promoted", `a[href="` + d.verifyURL + `"]`, `a[href^="https://slack.com/archives/C0STAGING/p"]`}},
		{"approvals", "/approvals", []string{"shop/web", "shop/api", short(d.c), short(d.blocked), short(d.waiting), "CRITICAL 1", "gate ≤ 0: over",
			"CVE-2023-0000", "not reported yet (required)", "waiting for the staging deployment", "0 of 2"},
			[]string{"article.approval", ".sev .over", `a[href^="https://slack.com/archives/C0STAGING/p"]`}},
		{"retention", "/retention?repo=shop/web", []string{"1 repository matches", "Dry run: would delete", "max age 90d", "delete: ", "kept: ", short(d.a)},
			[]string{"svg.chart rect.del", "svg.chart rect.keep", "svg.chart line.cut", "tr.row-del"}},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			seen.take()
			if err := chromedp.Do(ctx, chromedp.Navigate(base+p.path), chromedp.WaitReady(chromedp.CSS("footer"))); err != nil {
				t.Fatal(err)
			}
			text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range p.want {
				if !strings.Contains(text, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, sel := range p.css {
				n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
				if err != nil || n == 0 {
					t.Errorf("no element matches %s (%v)", sel, err)
				}
			}
			// Every link of this view answers; links out (Slack, CI) are checked for shape above.
			links, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("a[href]")).map(a => a.href).filter(h => h.startsWith(location.origin))`))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range links {
				res, err := http.Get(l)
				if err != nil {
					t.Errorf("link %s: %v", l, err)
					continue
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Errorf("link %s answers %d", l, res.StatusCode)
				}
			}
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(shots, p.name+".png")
			if err := os.WriteFile(file, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot %s", file)
			// Keyboard: the first Tab lands on the skip link, which shows and has a visible outline.
			if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
				t.Fatal(err)
			}
			focus, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const e = document.activeElement, s = getComputedStyle(e), r = e.getBoundingClientRect();
				return e.tagName + "|" + e.textContent.trim() + "|" + s.outlineStyle + "|" + s.outlineWidth + "|" + (r.left >= 0 && r.width > 0) })()`))
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(focus, "|")
			if len(parts) != 5 || parts[0] != "A" || parts[1] != "Skip to content" || parts[2] == "none" || parts[3] == "0px" || parts[4] != "true" {
				t.Errorf("the first Tab should show a focused skip link with an outline, got %q", focus)
			}
			audit, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](a11yAudit))
			if err != nil {
				t.Fatal(err)
			}
			if len(audit) > 0 {
				t.Errorf("accessibility: %d problems:\n%s", len(audit), strings.Join(audit, "\n"))
			}
			if ps := seen.take(); len(ps) > 0 {
				t.Errorf("the page produced %d problems:\n%s", len(ps), strings.Join(ps, "\n"))
			}
		})
	}

	// Without JS every page still shows what it shows with it, and the filter (a GET form)
	// still filters.
	t.Run("without JS", func(t *testing.T) {
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
				t.Error(err)
			}
		}()
		nojs := append(pages, struct {
			name, path string
			want       []string
			css        []string
		}{"estate-filtered", "/?repo=shop/api", []string{"shop/api", short(d.blocked)}, nil})
		for _, p := range nojs {
			seen.take()
			if err := chromedp.Do(ctx, chromedp.Navigate(base+p.path), chromedp.WaitReady(chromedp.CSS("footer"))); err != nil {
				t.Fatal(err)
			}
			html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(html, "your time") {
				t.Fatalf("%s: app.js ran with script execution disabled", p.name)
			}
			text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range p.want {
				if !strings.Contains(text, w) {
					t.Errorf("%s without JS lacks %q", p.name, w)
				}
			}
			if p.name == "estate-filtered" && strings.Contains(text, "shop/web") {
				t.Errorf("the filter shop/api still lists shop/web without JS")
			}
			if ps := seen.take(); len(ps) > 0 {
				t.Errorf("%s without JS produced %d problems:\n%s", p.name, len(ps), strings.Join(ps, "\n"))
			}
			if p.name == "estate-filtered" {
				png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(shots, "estate-filtered-nojs.png"), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
