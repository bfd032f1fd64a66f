package localecr_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/testenv"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// keysOf returns the sorted keys of a JSON object, and of its "detail" object.
func keysOf(t *testing.T, raw []byte) (top, detail []string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, raw)
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(m["detail"], &d); err != nil {
		t.Fatalf("detail is not an object: %v", err)
	}
	for k := range m {
		top = append(top, k)
	}
	for k := range d {
		detail = append(detail, k)
	}
	sort.Strings(top)
	sort.Strings(detail)
	return top, detail
}

// rawLog keeps the raw bytes of every event.
type rawLog struct {
	mu  sync.Mutex
	all [][]byte
}

func (l *rawLog) add(_ context.Context, b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, b)
}

func TestEventShapesMatchPublishedSamples(t *testing.T) {
	dir := testenv.RealTestdata(t)
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	raw := &rawLog{}
	srv, _ := start(t, localecr.Options{Account: "333333333333", Region: "eu-central-1", Clock: localecr.FixedClock(t0), OnEvent: raw.add})
	c := client(srv)
	a := auth(t, c)
	ctx := ctxT(t)
	createRepo(t, c, "team/app")
	img := testImage(t)
	dig := digestOf(t, img)
	if err := remote.Write(ref(t, srv, "team/app:latest"), img, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	untagged := testImage(t)
	if err := remote.Write(ref(t, srv, "team/app@"+digestOf(t, untagged)), untagged, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	if err := srv.InjectScan("team/app", dig,
		localecr.Finding{Name: "CVE-1", Severity: "CRITICAL"}, localecr.Finding{Name: "CVE-2", Severity: "CRITICAL"},
		localecr.Finding{Name: "CVE-3", Severity: "MEDIUM"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.InjectScan("team/app", digestOf(t, untagged)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("team/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("latest")}}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitEvents(ctx); err != nil {
		t.Fatal(err)
	}
	if len(raw.all) != 5 {
		t.Fatalf("%d events, want push, untagged push, 2 scans, delete", len(raw.all))
	}

	sample := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name       string
		event      []byte
		sample     string
		dropDetail string // a detail key the sample has and this event must not
		detail     map[string]any
		resources  []string
	}{
		{"push", raw.all[0], "eventbridge-ecr-image-action-push-success.ecr-userguide.json", "",
			map[string]any{"result": "SUCCESS", "repository-name": "team/app", "image-digest": dig, "action-type": "PUSH", "image-tag": "latest"}, []string{}},
		{"untagged push", raw.all[1], "eventbridge-ecr-image-action-push-success.ecr-userguide.json", "image-tag",
			map[string]any{"result": "SUCCESS", "repository-name": "team/app", "image-digest": digestOf(t, untagged), "action-type": "PUSH"}, []string{}},
		{"scan", raw.all[2], "eventbridge-ecr-image-scan-basic-complete.ecr-userguide.json", "",
			map[string]any{"scan-status": "COMPLETE", "repository-name": "team/app", "image-digest": dig, "image-tags": []any{"latest"},
				"finding-severity-counts": map[string]any{"CRITICAL": 2.0, "MEDIUM": 1.0}},
			[]string{"arn:aws:ecr:eu-central-1:333333333333:repository/team/app"}},
		{"scan of an untagged image without findings", raw.all[3], "eventbridge-ecr-image-scan-basic-complete.ecr-userguide.json", "",
			map[string]any{"scan-status": "COMPLETE", "repository-name": "team/app", "image-digest": digestOf(t, untagged), "image-tags": []any{},
				"finding-severity-counts": map[string]any{}},
			[]string{"arn:aws:ecr:eu-central-1:333333333333:repository/team/app"}},
		{"delete", raw.all[4], "eventbridge-ecr-image-action-delete-success.ecr-userguide.json", "",
			map[string]any{"result": "SUCCESS", "repository-name": "team/app", "image-digest": dig, "action-type": "DELETE", "image-tag": "latest"}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantTop, wantDetail := keysOf(t, sample(tc.sample))
			if tc.dropDetail != "" {
				wantDetail = slices.DeleteFunc(wantDetail, func(k string) bool { return k == tc.dropDetail })
			}
			gotTop, gotDetail := keysOf(t, tc.event)
			if !slices.Equal(gotTop, wantTop) || !slices.Equal(gotDetail, wantDetail) {
				t.Errorf("keys %v / detail %v, want the sample's %v / %v", gotTop, gotDetail, wantTop, wantDetail)
			}
			var ev struct {
				event.Envelope
				Detail map[string]any `json:"detail"`
			}
			if err := json.Unmarshal(tc.event, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Version != "0" || ev.Source != "aws.ecr" || ev.AccountID != "333333333333" || ev.Region != "eu-central-1" ||
				!uuidRE.MatchString(ev.ID) || !ev.Time.Equal(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)) || !slices.Equal(ev.Resources, tc.resources) {
				t.Errorf("envelope %+v", ev.Envelope)
			}
			if b1, b2 := mustJSON(t, ev.Detail), mustJSON(t, tc.detail); b1 != b2 {
				t.Errorf("detail %s, want %s", b1, b2)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSubscriberCallingBackDoesNotDeadlock(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []int
		c    *ecr.Client
	)
	ready := make(chan struct{})
	srv, _ := start(t, localecr.Options{OnEvent: func(ctx context.Context, _ []byte) {
		<-ready
		// A subscriber such as tagguard reads and writes the registry from the handler.
		out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app")})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			seen = append(seen, -1)
			return
		}
		seen = append(seen, len(out.ImageDetails))
	}})
	c = client(srv)
	a := auth(t, c)
	createRepo(t, c, "app")
	for i := range 3 {
		if err := remote.Write(ref(t, srv, "app:v"+string(rune('0'+i))), testImage(t), remoteOpts(t, a)...); err != nil {
			t.Fatal(err)
		}
	}
	close(ready)
	if err := srv.WaitEvents(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []int{3, 3, 3}) {
		t.Errorf("subscriber saw %v, want three calls that each found 3 images", seen)
	}
}

func TestScanFindings(t *testing.T) {
	dir := testenv.RealTestdata(t)
	srv, log := start(t, localecr.Options{})
	c := client(srv)
	a := auth(t, c)
	ctx := ctxT(t)
	createRepo(t, c, "app")
	img := testImage(t)
	if err := remote.Write(ref(t, srv, "app:v1"), img, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	dig := digestOf(t, img)
	id := &types.ImageIdentifier{ImageTag: aws.String("v1")}
	if _, err := c.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("app"), ImageId: id}); errCode(err) != "ScanNotFoundException" {
		t.Errorf("findings before any scan: %v", err)
	}
	if err := srv.InjectScan("app", dig, localecr.Finding{Name: "CVE-0", Severity: "SEVERE"}); err == nil {
		t.Error("InjectScan accepted an unknown severity")
	}
	if err := srv.InjectScan("app", "sha256:"+strings.Repeat("0", 64)); err == nil {
		t.Error("InjectScan of a missing image succeeded")
	}
	if err := srv.InjectScan("nope", dig); err == nil {
		t.Error("InjectScan into a missing repository succeeded")
	}

	// The published basic-scan sample, injected as is, comes back as is.
	var published struct {
		ImageScanFindings struct {
			Findings              []localecr.Finding `json:"findings"`
			FindingSeverityCounts map[string]int32   `json:"findingSeverityCounts"`
		} `json:"imageScanFindings"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "ecr-api-describe-image-scan-findings-basic.aws-cli-example.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &published); err != nil {
		t.Fatal(err)
	}
	findings := published.ImageScanFindings.Findings
	for i := range 3 {
		findings = append(findings, localecr.Finding{Name: "CVE-EXTRA-" + string(rune('A'+i)), Severity: "HIGH"})
	}
	if err := srv.InjectScan("app", dig, findings...); err != nil {
		t.Fatal(err)
	}
	var got []types.ImageScanFinding
	p := ecr.NewDescribeImageScanFindingsPaginator(c, &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("app"), ImageId: id, MaxResults: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if page.ImageScanStatus.Status != types.ScanStatusComplete || page.ImageScanFindings.FindingSeverityCounts["HIGH"] != 3 ||
			page.ImageScanFindings.FindingSeverityCounts["MEDIUM"] != published.ImageScanFindings.FindingSeverityCounts["MEDIUM"] {
			t.Errorf("page status %v counts %v", page.ImageScanStatus.Status, page.ImageScanFindings.FindingSeverityCounts)
		}
		got = append(got, page.ImageScanFindings.Findings...)
	}
	if pages != 2 || len(got) != 4 || aws.ToString(got[0].Name) != "CVE-2019-5188" || got[0].Severity != types.FindingSeverityMedium ||
		len(got[0].Attributes) != 4 || aws.ToString(got[0].Attributes[3].Value) != "4.6" {
		t.Errorf("%d pages, findings %+v", pages, got)
	}
	d, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	if s := d.ImageDetails[0]; s.ImageScanStatus == nil || s.ImageScanStatus.Status != types.ScanStatusComplete ||
		s.ImageScanFindingsSummary == nil || s.ImageScanFindingsSummary.FindingSeverityCounts["HIGH"] != 3 || s.ImageScanFindingsSummary.ImageScanCompletedAt == nil {
		t.Errorf("DescribeImages scan summary: %+v %+v", s.ImageScanStatus, s.ImageScanFindingsSummary)
	}
	_ = srv.WaitEvents(ctx)
	scans := 0
	for _, ev := range log.take() {
		if ev.DetailType == event.TypeImageScan {
			scans++
		}
	}
	if scans != 1 {
		t.Errorf("%d scan events, want 1", scans)
	}
}

func TestScanOnPushWithScanner(t *testing.T) {
	scanned := make(chan string, 4)
	srv, log := start(t, localecr.Options{Scanner: func(_ context.Context, repo, digest string) ([]localecr.Finding, error) {
		scanned <- repo + "@" + digest
		return []localecr.Finding{{Name: "CVE-X", Severity: "LOW"}}, nil
	}})
	c := client(srv)
	a := auth(t, c)
	createRepo(t, c, "scanned", func(in *ecr.CreateRepositoryInput) {
		in.ImageScanningConfiguration = &types.ImageScanningConfiguration{ScanOnPush: true}
	})
	createRepo(t, c, "plain")
	img := testImage(t)
	for _, r := range []string{"plain:v1", "scanned:v1"} {
		if err := remote.Write(ref(t, srv, r), img, remoteOpts(t, a)...); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-scanned:
		if got != "scanned@"+digestOf(t, img) {
			t.Errorf("scanned %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scanner never ran")
	}
	deadline := time.Now().Add(10 * time.Second)
	var kinds []string
	for time.Now().Before(deadline) {
		_ = srv.WaitEvents(ctxT(t))
		for _, ev := range log.take() {
			kinds = append(kinds, ev.DetailType)
		}
		if len(kinds) >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !slices.Equal(kinds, []string{event.TypeImageAction, event.TypeImageAction, event.TypeImageScan}) {
		t.Errorf("events %v: want the two pushes, then the scan", kinds)
	}
	if len(scanned) != 0 {
		t.Errorf("a repository without scanOnPush was scanned: %s", <-scanned)
	}
}

// TestWaitEventsWaitsForRunningScans: a scan still running when WaitEvents is called emits
// its event before WaitEvents returns, so a settled local stack stays settled (the demo
// once lost prod's request to a scan that finished after Settle).
func TestWaitEventsWaitsForRunningScans(t *testing.T) {
	release := make(chan struct{})
	srv, log := start(t, localecr.Options{Scanner: func(context.Context, string, string) ([]localecr.Finding, error) {
		<-release
		return nil, nil
	}})
	c := client(srv)
	a := auth(t, c)
	createRepo(t, c, "scanned", func(in *ecr.CreateRepositoryInput) {
		in.ImageScanningConfiguration = &types.ImageScanningConfiguration{ScanOnPush: true}
	})
	if err := remote.Write(ref(t, srv, "scanned:v1"), testImage(t), remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(200 * time.Millisecond); close(release) }()
	if err := srv.WaitEvents(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range log.take() {
		kinds = append(kinds, ev.DetailType)
	}
	if !slices.Equal(kinds, []string{event.TypeImageAction, event.TypeImageScan}) {
		t.Fatalf("after WaitEvents: %v, want the push and its scan", kinds)
	}
}
