package tagguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/ecrevent"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/embedded"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slackbot"
	"github.com/regflow/regflow/shared/tagguard"
	"github.com/regflow/regflow/shared/tagpolicy"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const sha = "0123456789abcdef0123456789abcdef01234567"

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func pushEvent(id, repo, digest, tag string) *ecrevent.ImageAction {
	return &ecrevent.ImageAction{
		Envelope: ecrevent.Envelope{ID: id, DetailType: event.TypeImageAction, Source: event.SourceECR, Account: "111111111111", Region: "us-east-1", Time: ecrevent.Time{Time: now}},
		Detail:   events.ECRImageActionEventDetailType{Result: "SUCCESS", ActionType: "PUSH", RepositoryName: repo, ImageDigest: digest, ImageTag: tag},
	}
}

func policy(t *testing.T, p config.TagPolicy) *tagpolicy.Policy {
	t.Helper()
	if p.Rule == "" {
		p.Rule, p.Mode = config.RuleSHA, config.ModeEnforce
	}
	pol, err := tagpolicy.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// TestAgainstLocalECR runs the guard with its real adapters: ECR on the local ECR, the
// embedded store, slacktest. Not moto: the guard removes a tag by tag and digest together,
// which moto treats as a delete of the whole image (localecr's TestMotoDiffers_TagDigestMismatch).
func TestAgainstLocalECR(t *testing.T) {
	ctx := context.Background()
	srv := sweeptest.StartECR(t, localecr.Options{})
	api := sweeptest.Client(srv)
	st, err := embedded.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sl := slacklocal.Start(nil)
	defer sl.Stop()
	g := &tagguard.Guard{
		Registry: ecr.New(api, ""), Store: st, Policy: policy(t, config.TagPolicy{}),
		Notifier: slackbot.New(slackbot.Options{Token: func(context.Context) (string, error) { return "xoxb", nil }, APIURL: sl.APIURL(), AlertChannel: "C0ALERTS"}),
		Now:      func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	images := map[int]string{} // n -> digest
	put := func(repo, tag string, n int) string {
		t.Helper()
		d, ok := images[n]
		if !ok {
			ds, err := srv.Seed(repo, localecr.SeedImage{Tags: []string{tag}})
			if err != nil {
				t.Fatal(err)
			}
			images[n] = ds[0]
			return ds[0]
		}
		// Another tag on an existing image, through the ECR API as a client would.
		m, err := api.BatchGetImage(ctx, &ecrsdk.BatchGetImageInput{RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(d)}}})
		if err != nil || len(m.Images) != 1 {
			t.Fatalf("read %s@%s: %v", repo, d, err)
		}
		if _, err := api.PutImage(ctx, &ecrsdk.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: m.Images[0].ImageManifest, ImageTag: aws.String(tag)}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	tags := func(repo, digest string) []string {
		img, err := ecr.New(api, "").DescribeImage(ctx, repo, digest)
		if err != nil {
			t.Fatal(err)
		}
		return img.Tags
	}

	// CI pushes the SHA tag, then someone adds latest to the same digest.
	digest := put("app", sha, 1)
	res, err := g.Handle(ctx, pushEvent("e-sha", "app", digest, sha))
	if err != nil {
		t.Fatal(err)
	}
	if res.Violation != "" || res.TagRemoved || !res.Recorded || !res.MadeImmutable {
		t.Fatalf("compliant push on a mutable repository: %+v", res)
	}
	img, err := st.GetImage(ctx, "app", digest)
	if err != nil || img.Commit != sha || !cmp.Equal(img.Tags, []string{sha}) {
		t.Fatalf("recorded %+v, %v", img, err)
	}
	if m, _ := ecr.New(api, "").TagMutability(ctx, "app"); m.Mode != regflow.Immutable {
		t.Fatalf("repository is %s, want IMMUTABLE", m.Mode)
	}

	// ECR refuses a new tag on an immutable repository only when it moves; adding
	// latest to the same digest is allowed, which is exactly the violation to catch.
	put("app", "latest", 1)
	for i := range 2 { // the same event delivered twice
		res, err = g.Handle(ctx, pushEvent("e-latest", "app", digest, "latest"))
		if err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		if i == 0 && (!res.TagRemoved || !res.Alerted) {
			t.Fatalf("first delivery: %+v", res)
		}
		if i == 1 && (res.Alerted || res.MadeImmutable || res.TagRemoved) {
			t.Fatalf("second delivery must not alert or change settings again: %+v", res)
		}
	}
	if got := tags("app", digest); !cmp.Equal(got, []string{sha}) {
		t.Fatalf("tags after guard = %v, want only the SHA", got)
	}
	if n := len(sl.Messages()); n != 1 {
		t.Fatalf("%d alerts for one violation delivered twice, want 1", n)
	}
	trail, err := st.Audit(ctx, "app@"+digest)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range trail {
		actions = append(actions, e.Action)
	}
	// Both events share a timestamp, so compare as a set: one entry per effect, none duplicated.
	slices.Sort(actions)
	want := []string{event.ActionImageRecorded, event.ActionImageRecorded, event.ActionTagRemoved}
	if !cmp.Equal(actions, want) {
		t.Fatalf("audit trail = %v, want %v (one entry per effect, none duplicated)", actions, want)
	}
	repoTrail, _ := st.Audit(ctx, "app")
	if len(repoTrail) != 1 || repoTrail[0].Action != event.ActionRepoImmutable {
		t.Fatalf("repository audit = %+v", repoTrail)
	}

	// latest as the only tag: removing it deletes the image, as in ECR; nothing to record.
	lonely := put("solo", "latest", 2)
	res, err = g.Handle(ctx, pushEvent("e-solo", "solo", lonely, "latest"))
	if err != nil || !res.TagRemoved || res.Recorded {
		t.Fatalf("lonely latest: %+v, %v", res, err)
	}
}

// fakes for pure use-case tests below.

type fakeRegistry struct {
	mut       regflow.TagMutability
	tags      map[string]string // tag -> digest
	removeErr error
	describe  error
	setCalls  int
}

func (f *fakeRegistry) TagMutability(context.Context, string) (regflow.TagMutability, error) {
	if f.describe != nil {
		return regflow.TagMutability{}, f.describe
	}
	return f.mut, nil
}
func (f *fakeRegistry) SetTagMutability(_ context.Context, _ string, m regflow.TagMutability) error {
	f.setCalls++
	f.mut = m
	return nil
}
func (f *fakeRegistry) DescribeImage(_ context.Context, _, digest string) (regflow.RegistryImage, error) {
	img := regflow.RegistryImage{Digest: digest, PushedAt: now.Add(-time.Minute)}
	for t, d := range f.tags {
		if d == digest {
			img.Tags = append(img.Tags, t)
		}
	}
	if len(img.Tags) == 0 {
		return img, regflow.ErrImageNotFound
	}
	return img, nil
}
func (f *fakeRegistry) RemoveTag(_ context.Context, _, tag, digest string) (bool, error) {
	if f.removeErr != nil {
		return false, f.removeErr
	}
	d, ok := f.tags[tag]
	if ok && d != digest {
		return false, regflow.ErrTagMoved
	}
	delete(f.tags, tag)
	return ok, nil
}

type countingNotifier struct {
	sent int
	fail int // fail this many calls first
}

func (n *countingNotifier) Notify(context.Context, regflow.Alert) error {
	if n.fail > 0 {
		n.fail--
		return errors.New("slack is down")
	}
	n.sent++
	return nil
}

func newGuard(t *testing.T, reg *fakeRegistry, n *countingNotifier, p config.TagPolicy) (*tagguard.Guard, *embedded.Store) {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &tagguard.Guard{Registry: reg, Store: st, Notifier: n, Policy: policy(t, p), Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, st
}

func TestUseCase(t *testing.T) {
	const d1, d2 = "sha256:d1", "sha256:d2"
	reportRelease := config.TagPolicy{TagRule: config.TagRule{Rule: config.RuleSHA, Mode: config.ModeEnforce},
		Overrides: []config.TagOverride{{Repositories: "release/*", TagRule: config.TagRule{Rule: config.RuleSemver, Mode: config.ModeReport}}}}
	tests := []struct {
		name     string
		policy   config.TagPolicy
		reg      *fakeRegistry
		notifier *countingNotifier
		event    *ecrevent.ImageAction
		want     tagguard.Result
		wantErr  bool
		tagsLeft map[string]string
		mode     string
	}{
		{
			name: "delete events are ignored",
			reg:  &fakeRegistry{mut: regflow.TagMutability{Mode: "MUTABLE"}, tags: map[string]string{}},
			event: func() *ecrevent.ImageAction {
				e := pushEvent("e", "app", d1, "latest")
				e.Detail.ActionType = "DELETE"
				return e
			}(),
			want: tagguard.Result{Ignored: true}, mode: "MUTABLE", tagsLeft: map[string]string{},
		},
		{
			name: "failed pushes are ignored",
			reg:  &fakeRegistry{mut: regflow.TagMutability{Mode: "MUTABLE"}, tags: map[string]string{}},
			event: func() *ecrevent.ImageAction {
				e := pushEvent("e", "app", d1, "latest")
				e.Detail.Result = "FAILURE"
				return e
			}(),
			want: tagguard.Result{Ignored: true}, mode: "MUTABLE", tagsLeft: map[string]string{},
		},
		{
			name:   "report mode alerts and keeps the tag",
			policy: reportRelease,
			reg:    &fakeRegistry{mut: regflow.TagMutability{Mode: "IMMUTABLE"}, tags: map[string]string{"latest": d1}},
			event:  pushEvent("e", "release/api", d1, "latest"),
			want:   tagguard.Result{Violation: `tag "latest" is a moving tag; this repository requires semantic versions such as v1.4.2`, Alerted: true, Recorded: true},
			mode:   "IMMUTABLE", tagsLeft: map[string]string{"latest": d1},
		},
		{
			name:  "a tag moved since the event is left alone",
			reg:   &fakeRegistry{mut: regflow.TagMutability{Mode: "IMMUTABLE"}, tags: map[string]string{"latest": d2, sha: d1}},
			event: pushEvent("e", "app", d1, "latest"),
			want:  tagguard.Result{Violation: `tag "latest" is a moving tag: it would point at different images over time; tags must be the full 40-character lowercase git commit SHA`, Alerted: true, Recorded: true},
			mode:  "IMMUTABLE", tagsLeft: map[string]string{"latest": d2, sha: d1},
		},
		{
			name:   "exclusions give IMMUTABLE_WITH_EXCLUSION and exempt tags pass",
			policy: config.TagPolicy{TagRule: config.TagRule{Rule: config.RuleSHA, Mode: config.ModeEnforce}, MutableTags: []string{"cache-*"}},
			reg:    &fakeRegistry{mut: regflow.TagMutability{Mode: "IMMUTABLE"}, tags: map[string]string{"cache-main": d1}},
			event:  pushEvent("e", "app", d1, "cache-main"),
			want:   tagguard.Result{MadeImmutable: true, Recorded: true},
			mode:   "IMMUTABLE_WITH_EXCLUSION", tagsLeft: map[string]string{"cache-main": d1},
		},
		{
			name:  "repository deleted before the event arrived",
			reg:   &fakeRegistry{describe: fmt.Errorf("x: %w", regflow.ErrRepositoryNotFound)},
			event: pushEvent("e", "gone", d1, sha),
			want:  tagguard.Result{Ignored: true},
		},
		{
			name:    "registry failure is returned for a retry",
			reg:     &fakeRegistry{mut: regflow.TagMutability{Mode: "IMMUTABLE"}, tags: map[string]string{"latest": d1}, removeErr: errors.New("throttled")},
			event:   pushEvent("e", "app", d1, "latest"),
			wantErr: true, mode: "IMMUTABLE", tagsLeft: map[string]string{"latest": d1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.notifier
			if n == nil {
				n = &countingNotifier{}
			}
			g, _ := newGuard(t, tt.reg, n, tt.policy)
			got, err := g.Handle(context.Background(), tt.event)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
			}
			if tt.tagsLeft != nil && !cmp.Equal(tt.tagsLeft, tt.reg.tags) {
				t.Errorf("tags left = %v, want %v", tt.reg.tags, tt.tagsLeft)
			}
			if tt.mode != "" && tt.reg.mut.Mode != tt.mode {
				t.Errorf("mutability = %s, want %s", tt.reg.mut.Mode, tt.mode)
			}
		})
	}
}

func TestFailedAlertIsRetriedOnRedelivery(t *testing.T) {
	reg := &fakeRegistry{mut: regflow.TagMutability{Mode: "IMMUTABLE"}, tags: map[string]string{"latest": "sha256:d", sha: "sha256:d"}}
	n := &countingNotifier{fail: 1}
	g, _ := newGuard(t, reg, n, config.TagPolicy{})
	ev := pushEvent("e1", "app", "sha256:d", "latest")
	if _, err := g.Handle(context.Background(), ev); err == nil {
		t.Fatal("a failed alert must fail the invocation so Lambda retries it")
	}
	for range 2 {
		if _, err := g.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if n.sent != 1 {
		t.Fatalf("alerts sent = %d, want exactly 1 after a failure and two redeliveries", n.sent)
	}
	if _, ok := reg.tags["latest"]; ok {
		t.Fatal("latest should be gone")
	}
}

type recordingPublisher struct{ events [][]byte }

func (r *recordingPublisher) Publish(_ context.Context, m event.Message) error {
	e, err := m.Encode()
	if err != nil {
		return err
	}
	r.events = append(r.events, e)
	return nil
}

func TestViolationIsPublishedOnce(t *testing.T) {
	reg := &fakeRegistry{mut: regflow.TagMutability{Mode: "IMMUTABLE"}, tags: map[string]string{"latest": "sha256:d", sha: "sha256:d"}}
	g, _ := newGuard(t, reg, &countingNotifier{}, config.TagPolicy{})
	pub := &recordingPublisher{}
	g.Publisher = pub
	ev := pushEvent("e1", "app", "sha256:d", "latest")
	for range 2 {
		if _, err := g.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(pub.events) != 1 {
		t.Fatalf("%d events for one violation delivered twice, want 1", len(pub.events))
	}
	got, err := event.Parse(pub.events[0])
	if err != nil || got.DetailType != event.TypeTagPolicyViolation {
		t.Fatalf("event = %+v, %v", got, err)
	}
	var v event.TagPolicyViolation
	if err := json.Unmarshal(got.Detail, &v); err != nil || v.Tag != "latest" || !v.Removed || v.Repository != "app" {
		t.Fatalf("detail = %+v, %v", v, err)
	}
}
