package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/local/slacklocal"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/retention"
	"github.com/regflow/regflow/shared/slackmsg"
	"github.com/regflow/regflow/shared/sweep"
)

func newDemoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the whole regflow flow offline against the local stack, narrated",
		Long: `Starts a private local stack (three local ECR accounts, the embedded store, a Slack
stand-in, the approvals endpoint) and plays a day in the life of a release: a moving tag
refused, a signed two-platform build gated, approved with signed Slack clicks, promoted
by digest to staging and prod, rolled back, and finally swept 120 days later.
It exits non-zero, naming the step, if anything does not happen as it should.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "regflow-demo-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cfg = withDemoTargets(cfg)
			ci, err := ocitest.NewCosignKey()
			if err != nil {
				return err
			}
			if cfg, err = withDemoSignature(cfg, ci); err != nil {
				return err
			}
			d := &demo{out: &syncWriter{w: cmd.OutOrStdout()}, started: time.Now(), cfg: cfg, ci: ci}
			d.t0 = time.Now().UTC().Truncate(time.Second)
			st, err := localstack.Start(cmd.Context(), localstack.Options{
				Config: cfg, Dir: dir, Log: g.logger(), Clock: localecr.FixedClock(d.t0.Add(-30 * 24 * time.Hour)),
				OnSlack: d.showSlack, Scanner: d.scanner, DeploymentDelay: deploymentDelay,
				OnError: func(rule string, err error) { d.say("  ! %s failed: %v", rule, err) },
			})
			if err != nil {
				return err
			}
			defer st.Close()
			d.st = st
			if err := d.run(cmd.Context()); err != nil {
				return fmt.Errorf("demo step %d failed: %w", d.n, err)
			}
			return nil
		},
	}
}

type demo struct {
	out     io.Writer
	st      *localstack.Stack
	cfg     *config.Config
	started time.Time
	t0      time.Time
	n       int
	quiet   atomic.Bool
	// ci signs the builds CI makes (cosign, tag schema); prod requires its signature.
	ci *ocitest.CosignKey
}

const (
	demoRepo = "shop/web"
	alice    = "U0ALICE"
	bob      = "U0BOB"
	carol    = "U0CAROL"
	// commit is today's build; prior is the release prod ran before it.
	commit = "3f2c1e9a7b6d5c4e3f2a1b0c9d8e7f6a5b4c3d2e"
	prior  = "8e1d0c9b8a7f6e5d4c3b2a1908f7e6d5c4b3a291"
)

func (d *demo) say(format string, args ...any) {
	if !d.quiet.Load() {
		fmt.Fprintf(d.out, format+"\n", args...)
	}
}

func (d *demo) step(title string) {
	d.n++
	d.say("\n== %d. %s", d.n, title)
}

func (d *demo) showSlack(m slacklocal.Message) {
	if d.quiet.Load() {
		return
	}
	if m.Channel == d.cfg.Alerts.SlackChannel {
		d.say("  [slack #%s] %s", m.Channel, m.Text)
		return
	}
	d.say("  [slack #%s] new message:", m.Channel)
	for _, l := range strings.Split(slacklocal.Render(m, 96), "\n") {
		d.say("    %s", l)
	}
}

// scanner stands in for ECR's scan on push in the environments regflow promotes into:
// one HIGH finding that the config's allow-list accepts, and a MEDIUM one.
func (d *demo) scanner(context.Context, string, string) ([]localecr.Finding, error) {
	return []localecr.Finding{
		{Name: "CVE-2023-0000", Severity: "HIGH", Attributes: []localecr.Attribute{{Key: "package_name", Value: "busybox"}}},
		{Name: "CVE-2024-24790", Severity: "MEDIUM", Attributes: []localecr.Attribute{{Key: "package_name", Value: "stdlib"}}},
	}, nil
}

func (d *demo) settle(ctx context.Context) error { return d.st.Settle(ctx) }

func (d *demo) registry(env string) string { return d.st.Info().Environments[env].Registry }

func (d *demo) click(ctx context.Context, user, action, id string) (localstack.ClickResult, error) {
	res, err := d.st.Click(ctx, user, action, id)
	if err != nil {
		return res, err
	}
	verb := map[string]string{slackmsg.ActionApprove: "Approve", slackmsg.ActionReject: "Reject", slackmsg.ActionRollback: "Roll back"}[action]
	d.say("  %s clicks %s → HTTP %d %s: %s", user, verb, res.Status, res.Outcome, reply(res.Text))
	return res, d.settle(ctx)
}

func (d *demo) request(ctx context.Context, env, digest string) (regflow.ApprovalRequest, error) {
	return d.st.Store.GetRequest(ctx, regflow.RequestID(env, demoRepo, digest))
}

func (d *demo) run(ctx context.Context) error {
	d.say("regflow demo: build once, promote the same digest (offline, local stack)")
	for _, env := range d.cfg.PromotionPath {
		e := d.st.Info().Environments[env]
		d.say("  %-8s account %s  registry %s", env, e.Account, e.Registry)
	}

	d.step("Earlier this month: five feature builds, and release " + prior[:7] + " went dev → staging → prod")
	for _, env := range []string{"staging", "prod"} {
		// What ran before regflow: the service exists, with the circuit breaker's rollback on.
		if err := d.st.SeedTargets(ctx, env, demoRepo, d.registry(env)+"/"+demoRepo+"@"+preRegflow); err != nil {
			return err
		}
	}
	if err := d.deployments(ctx); err != nil {
		return err
	}
	priorDigest, err := d.history(ctx)
	if err != nil {
		return err
	}
	if err := d.deployments(ctx); err != nil {
		return err
	}
	d.say("  ✓ prod runs %s@%s (approved by %s and %s)", demoRepo, regflow.ShortDigest(priorDigest), bob, carol)
	if err := d.runs("prod", priorDigest); err != nil {
		return err
	}
	d.st.Clock.SetNow(d.t0)

	d.step("CI pushes " + demoRepo + ":latest (moving tags are not allowed)")
	latest, err := random.Image(2048, 2)
	if err != nil {
		return err
	}
	if err := push(ctx, d.registry("dev")+"/"+demoRepo+":latest", latest); err != nil {
		return err
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	if _, err := d.st.Registry("dev").DigestOf(ctx, demoRepo, "latest"); err == nil {
		return fmt.Errorf("latest should have been removed by the tag guard")
	}
	d.say("  ✓ tag guard removed %s:latest; the repository is tag-immutable", demoRepo)

	d.step("CI pushes a two-platform image tagged with its commit SHA, signed with CI's cosign key (prod requires it)")
	digest, platforms, err := d.pushSigned(ctx, commit)
	if err != nil {
		return err
	}
	rec, err := d.st.Store.GetImage(ctx, demoRepo, digest)
	if err != nil {
		return fmt.Errorf("the pushed image was not recorded: %w", err)
	}
	d.say("  ✓ recorded %s@%s: commit %s, linux/amd64 + linux/arm64, 1 signature referrer", demoRepo, regflow.ShortDigest(rec.Digest), abbrev(rec.Commit))

	d.step("ECR scans both platform images: 2 HIGH, 3 MEDIUM in all; staging's gate (CRITICAL 0) passes")
	if err := d.st.ECR["dev"].InjectScan(demoRepo, platforms[0],
		localecr.Finding{Name: "CVE-2024-45337", Severity: "HIGH", Attributes: []localecr.Attribute{{Key: "package_name", Value: "golang.org/x/crypto"}}},
		localecr.Finding{Name: "CVE-2024-24790", Severity: "MEDIUM"}, localecr.Finding{Name: "CVE-2024-24791", Severity: "MEDIUM"}); err != nil {
		return err
	}
	if err := d.st.ECR["dev"].InjectScan(demoRepo, platforms[1],
		localecr.Finding{Name: "CVE-2024-45338", Severity: "HIGH", Attributes: []localecr.Attribute{{Key: "package_name", Value: "golang.org/x/net"}}},
		localecr.Finding{Name: "CVE-2024-34156", Severity: "MEDIUM"}); err != nil {
		return err
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	staging, err := d.request(ctx, "staging", digest)
	if err != nil || staging.Status != regflow.StatusPending {
		return fmt.Errorf("staging's approval request should be pending: %+v, %v", staging, err)
	}

	d.step("An allowed user approves (a signed POST to /slack/interactions) → promoted to staging")
	if _, err := d.click(ctx, bob, slackmsg.ActionApprove, staging.ID); err != nil {
		return err
	}
	if err := d.sameDigest(ctx, "staging", digest); err != nil {
		return err
	}
	if err := d.deployments(ctx); err != nil {
		return err
	}
	if err := d.runs("staging", digest); err != nil {
		return err
	}
	if err := d.deployedOnce(ctx, "staging", digest); err != nil {
		return err
	}
	prod, err := d.request(ctx, "prod", digest)
	if err != nil || prod.Status != regflow.StatusWaiting {
		return fmt.Errorf("prod's request should wait for staging's verification: %+v, %v", prod, err)
	}
	d.say("  ✓ staging scanned both platforms on push (a HIGH in each, allow-listed until its expiry); prod's gate passes and waits for staging's tests")

	d.step("Staging's deployment reports its tests passed → prod's approval opens (2 approvers)")
	// The pipeline's own report, sent from staging's account (EventBridge attests it), is
	// where the requester comes from: never a name typed on a command line.
	stagingEnv, passed := d.cfg.Environments["staging"], true
	d.say("  staging's pipeline (account %s) sends \"Verification Result\": %s@%s passed, reported by deploy-bot, requested by %s", stagingEnv.Account, demoRepo, regflow.ShortDigest(digest), alice)
	report, err := json.Marshal(map[string]any{"version": "0", "id": "demo-verify-4711", "detail-type": event.TypeVerificationResult, "source": "acme.deploy",
		"account": stagingEnv.Account, "region": stagingEnv.Region, "time": d.st.Clock.Now().UTC().Format(time.RFC3339), "resources": []string{},
		"detail": event.VerificationResult{Env: "staging", Repository: demoRepo, Digest: digest, Passed: &passed, URL: "https://ci.example.com/deploy/4711", ReportedBy: "deploy-bot", Requester: alice}})
	if err != nil {
		return err
	}
	if _, err := d.st.Gate.Invoke(ctx, report); err != nil {
		return err
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	if res, err := d.click(ctx, alice, slackmsg.ActionApprove, prod.ID); err != nil || res.Outcome != "refused" {
		return fmt.Errorf("the requester's own approval must be refused: %+v, %v", res, err)
	}
	if res, err := d.click(ctx, bob, slackmsg.ActionApprove, prod.ID); err != nil || res.Outcome != "voted" {
		return fmt.Errorf("the first of two approvals should be counted: %+v, %v", res, err)
	}
	if res, err := d.click(ctx, carol, slackmsg.ActionApprove, prod.ID); err != nil || res.Outcome != "approved" {
		return fmt.Errorf("the second approval should decide: %+v, %v", res, err)
	}
	if err := d.sameDigest(ctx, "prod", digest); err != nil {
		return err
	}
	if err := d.deployments(ctx); err != nil {
		return err
	}
	if err := d.runs("prod", digest); err != nil {
		return err
	}

	d.step("Something is off in prod: roll back to the previous release")
	d.say("  $ regflow rollback prod %s --as %s", demoRepo, carol)
	before := d.st.ECR["prod"].RequestCounts()
	moved, err := d.st.Promoter.Rollback(ctx, "prod", demoRepo, "", carol)
	if err != nil {
		return err
	}
	if err := d.deployments(ctx); err != nil {
		return err
	}
	after := d.st.ECR["prod"].RequestCounts()
	for _, op := range []string{localecr.OpBlobUpload, localecr.OpBlobPut, localecr.OpManifestPut, "PutImage"} {
		if after[op] != before[op] {
			return fmt.Errorf("a rollback must not copy: %s went from %d to %d", op, before[op], after[op])
		}
	}
	if moved.Digest != priorDigest {
		return fmt.Errorf("prod should run %s again, runs %s", priorDigest, moved.Digest)
	}
	d.say("  ✓ prod's pointer: %s → %s; no blob or manifest was written, nothing rebuilt", regflow.ShortDigest(digest), regflow.ShortDigest(moved.Digest))
	if err := d.runs("prod", moved.Digest); err != nil {
		return err
	}
	d.say("  ✓ the rollback changed what prod's service runs: a task definition revision with the previous digest, nothing copied")

	if err := d.failedDeployment(ctx, digest); err != nil {
		return err
	}
	if err := d.unsignedBuild(ctx); err != nil {
		return err
	}
	legacy, err := d.legacyService(ctx)
	if err != nil {
		return err
	}

	d.step("120 days later: the retention sweep (90 days, keep the newest 5 tagged, never a release)")
	d.st.Clock.Advance(120 * 24 * time.Hour)
	dry, err := d.st.Sweep(ctx, "demo-dry-run", true)
	if err != nil {
		return err
	}
	d.say("  dry run: %s", dry.Summary())
	var planned []string
	for _, rr := range dry.Registries {
		for _, dec := range rr.Report.Decisions {
			mark := "keep  "
			if dec.Action == retention.Delete {
				mark = "DELETE"
				planned = append(planned, rr.Target.Name+" "+dec.Digest)
			}
			d.say("    %-8s %s %s  %s", rr.Target.Name, mark, regflow.ShortDigest(dec.Digest), dec.Reason)
		}
	}
	real, err := d.st.Sweep(ctx, "demo-sweep", false)
	if err != nil {
		return err
	}
	var deleted []string
	for _, rr := range real.Registries {
		for _, dec := range rr.Report.Decisions {
			if dec.Action == retention.Delete {
				deleted = append(deleted, rr.Target.Name+" "+dec.Digest)
			}
		}
	}
	slices.Sort(planned)
	slices.Sort(deleted)
	if !slices.Equal(planned, deleted) || len(deleted) == 0 {
		return fmt.Errorf("the sweep deleted %v, the dry run said %v", deleted, planned)
	}
	if _, out := real.Totals(); out.Refused > 0 {
		return fmt.Errorf("the sweep could not delete %d images", out.Refused)
	}
	ref, err := name.ParseReference(d.registry("prod")+"/"+demoRepo+"@"+priorDigest, name.Insecure)
	if err != nil {
		return err
	}
	if _, err := remote.Head(ref, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("prod's current image must survive the sweep: %w", err)
	}
	d.say("  ✓ the sweep deleted exactly the %d images the dry run listed; prod's current image is still there", len(deleted))
	if err := d.keptBecauseItRuns(ctx, real, legacy); err != nil {
		return err
	}

	d.say("\nSummary")
	for _, env := range d.cfg.PromotionPath {
		rel, err := d.st.Store.GetRelease(ctx, env, demoRepo)
		if err != nil {
			d.say("  %-8s %s: no release pointer (CI pushes here)", env, demoRepo)
			continue
		}
		d.say("  %-8s %s@%s  tag %s  (previous: %d)", env, demoRepo, regflow.ShortDigest(rel.Digest), abbrev(rel.Tag), len(rel.Previous))
	}
	d.say("  deleted by the sweep: %d images; moving tags removed: 1", len(deleted))
	d.say("  finished in %s", time.Since(d.started).Round(time.Millisecond))
	return nil
}

// history plays the weeks before today quietly: old feature builds, then a release that
// went all the way to prod. It returns that release's digest.
func (d *demo) history(ctx context.Context) (string, error) {
	d.quiet.Store(true)
	defer d.quiet.Store(false)
	for i := range 5 {
		d.st.Clock.SetNow(d.t0.Add(-30*24*time.Hour + time.Duration(i)*time.Hour))
		img, err := random.Image(1024, 1)
		if err != nil {
			return "", err
		}
		if err := push(ctx, d.registry("dev")+"/"+demoRepo+":"+fmt.Sprintf("%040x", i+1), img); err != nil {
			return "", err
		}
	}
	d.st.Clock.SetNow(d.t0.Add(-20 * 24 * time.Hour))
	digest, platforms, err := d.pushSigned(ctx, prior)
	if err != nil {
		return "", err
	}
	for _, p := range platforms {
		if err := d.st.ECR["dev"].InjectScan(demoRepo, p); err != nil {
			return "", err
		}
	}
	if err := d.settle(ctx); err != nil {
		return "", err
	}
	if _, err := d.click(ctx, bob, slackmsg.ActionApprove, regflow.RequestID("staging", demoRepo, digest)); err != nil {
		return "", err
	}
	if _, err := d.st.Gate.Verify(ctx, regflow.Verification{Env: "staging", Repository: demoRepo, Digest: digest, Passed: true, By: alice, At: d.st.Clock.Now()}); err != nil {
		return "", err
	}
	for _, u := range []string{bob, carol} {
		if _, err := d.click(ctx, u, slackmsg.ActionApprove, regflow.RequestID("prod", demoRepo, digest)); err != nil {
			return "", err
		}
	}
	if rel, err := d.st.Store.GetRelease(ctx, "prod", demoRepo); err != nil || rel.Digest != digest {
		return "", fmt.Errorf("the earlier release did not reach prod: %+v, %v", rel, err)
	}
	return digest, nil
}

// pushSigned pushes a two-platform index tagged tag to dev, and a signature referrer.
// It returns the index digest and its platform images' digests (what ECR scans).
func (d *demo) pushSigned(ctx context.Context, tag string) (string, []string, error) {
	idx, err := twoPlatformIndex()
	if err != nil {
		return "", nil, err
	}
	if err := pushIndex(ctx, d.registry("dev")+"/"+demoRepo+":"+tag, idx); err != nil {
		return "", nil, err
	}
	sig, err := signature(idx)
	if err != nil {
		return "", nil, err
	}
	sigDigest, err := sig.Digest()
	if err != nil {
		return "", nil, err
	}
	if err := push(ctx, d.registry("dev")+"/"+demoRepo+"@"+sigDigest.String(), sig); err != nil {
		return "", nil, err
	}
	if err := d.sign(ctx, idx); err != nil {
		return "", nil, err
	}
	if err := d.settle(ctx); err != nil {
		return "", nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", nil, err
	}
	var platforms []string
	for _, m := range im.Manifests {
		platforms = append(platforms, m.Digest.String())
	}
	digest, err := idx.Digest()
	return digest.String(), platforms, err
}

// sameDigest checks env now serves the tag at the very digest dev has, and says so.
func (d *demo) sameDigest(ctx context.Context, env, digest string) error {
	rel, err := d.st.Store.GetRelease(ctx, env, demoRepo)
	if err != nil || rel.Digest != digest {
		return fmt.Errorf("%s's release pointer should be %s: %+v, %v", env, digest, rel, err)
	}
	ref, err := name.ParseReference(d.registry(env)+"/"+demoRepo+":"+rel.Tag, name.Insecure)
	if err != nil {
		return err
	}
	got, err := remote.Head(ref, remote.WithContext(ctx))
	if err != nil || got.Digest.String() != digest {
		return fmt.Errorf("%s:%s in %s should be %s: %v, %v", demoRepo, rel.Tag, env, digest, got, err)
	}
	d.say("  ✓ %s serves %s:%s at %s: the same digest as dev (index, both platforms, the signature)", env, demoRepo, abbrev(rel.Tag), regflow.ShortDigest(digest))
	return nil
}

// reply shortens a Slack reply for one narrated line.
func reply(s string) string {
	s = oneLine(strings.NewReplacer("*", "", "`", "").Replace(s))
	if r := []rune(s); len(r) > 110 {
		s = string(r[:109]) + "…"
	}
	return s
}

func push(ctx context.Context, ref string, img v1.Image) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

func pushIndex(ctx context.Context, ref string, idx v1.ImageIndex) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// twoPlatformIndex builds an OCI index of a linux/amd64 and a linux/arm64 image.
func twoPlatformIndex() (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(4096, 3)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), nil
}

// signature is a small OCI artifact whose subject is the index, as cosign attaches one.
func signature(subject v1.ImageIndex) (v1.Image, error) {
	d, err := subject.Digest()
	if err != nil {
		return nil, err
	}
	sz, err := subject.Size()
	if err != nil {
		return nil, err
	}
	mt, err := subject.MediaType()
	if err != nil {
		return nil, err
	}
	layer, err := random.Layer(256, types.OCILayer)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, "application/vnd.dev.cosign.artifact.sig.v1+json")
	return mutate.Subject(img, v1.Descriptor{MediaType: mt, Digest: d, Size: sz}).(v1.Image), nil
}

// abbrev shortens a commit SHA tag the way git log does.
func abbrev(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// preRegflow is the digest the demo's services ran before regflow handed them releases.
const preRegflow = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

// deploymentDelay is how long a local ECS deployment runs on the demo's stopped clock,
// which deployments advances.
const deploymentDelay = time.Second

// withDemoTargets gives staging and prod an ECS service running the demo's repository when
// the config names none (regflow.yaml ships them commented out: a stack without the
// services would fail every hand-over). The config is copied, not changed.
func withDemoTargets(cfg *config.Config) *config.Config {
	c := *cfg
	c.Environments = maps.Clone(cfg.Environments)
	for _, env := range []string{"staging", "prod"} {
		e, ok := c.Environments[env]
		if !ok || len(e.Deploy.TargetsFor(demoRepo)) > 0 {
			continue
		}
		e.Deploy.Targets = append(slices.Clone(e.Deploy.Targets), config.DeployTarget{
			Repositories: demoRepo, ECS: &config.ECSTarget{Cluster: env, Service: "web", Container: "app"},
		})
		c.Environments[env] = e
	}
	return &c
}

// deployments waits until every local ECS deployment has completed or failed, moving the
// demo's stopped clock on by the deployment delay meanwhile, and until every event they
// sent is handled.
func (d *demo) deployments(ctx context.Context) error {
	for range 50 {
		if err := d.settle(ctx); err != nil {
			return err
		}
		n := 0
		for _, rt := range d.st.Runtimes {
			n += rt.InProgress()
		}
		if n == 0 {
			return d.st.SettleDeployments(ctx)
		}
		d.st.Clock.Advance(deploymentDelay)
		for _, rt := range d.st.Runtimes {
			rt.Tick()
		}
	}
	return errors.New("local ECS deployments did not settle")
}

// runs checks env's ECS service runs digest, and says so.
func (d *demo) runs(env, digest string) error {
	rt, ok := d.st.Runtimes[env]
	if !ok {
		return fmt.Errorf("%s has no local ECS", env)
	}
	for _, s := range rt.Services() {
		if s.Digests["app"] != digest {
			return fmt.Errorf("%s's ECS service %s/%s runs %s, want %s", env, s.Cluster, s.Service, s.Digests["app"], digest)
		}
		d.say("  ✓ %s's ECS service %s/%s runs %s@%s (%d task, %s)", env, s.Cluster, s.Service, demoRepo, regflow.ShortDigest(digest), s.Tasks, lastPart(s.TaskDefinition))
	}
	return nil
}

// deployedOnce checks the service's completed deployment marked env's release deployed.
func (d *demo) deployedOnce(ctx context.Context, env, digest string) error {
	trail, err := d.st.Store.Audit(ctx, demoRepo+"@"+digest)
	if err != nil {
		return err
	}
	for _, e := range trail {
		if e.Action == event.ActionDeploymentCompleted && e.Details["env"] == env {
			d.say("  ✓ SERVICE_DEPLOYMENT_COMPLETED → %s's release is deployed (audited %s, \"Release Deployed\" sent)", env, e.Action)
			return nil
		}
	}
	return fmt.Errorf("%s's completed ECS deployment of %s was not recorded", env, regflow.ShortDigest(digest))
}

// failedDeployment promotes a build whose tasks crash to staging: the deployment fails,
// the circuit breaker rolls the service back, regflow moves staging's pointer back with it
// and counts the failure as staging's verification, so prod's approval stays closed.
func (d *demo) failedDeployment(ctx context.Context, good string) error {
	const crashing = "b4d0c0de5e7a1b2c3d4e5f60718293a4b5c6d7e8"
	d.step("A build whose tasks crash on start: staging's ECS deployment fails")
	idx, err := twoPlatformIndex()
	if err != nil {
		return err
	}
	h, err := idx.Digest()
	if err != nil {
		return err
	}
	bad := h.String()
	d.st.Runtimes["staging"].MarkBad(bad)
	if err := pushIndex(ctx, d.registry("dev")+"/"+demoRepo+":"+crashing, idx); err != nil {
		return err
	}
	if err := d.sign(ctx, idx); err != nil {
		return err
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	d.quiet.Store(true)
	for _, m := range im.Manifests {
		if err := d.st.ECR["dev"].InjectScan(demoRepo, m.Digest.String()); err != nil {
			d.quiet.Store(false)
			return err
		}
	}
	err = d.settle(ctx)
	d.quiet.Store(false)
	if err != nil {
		return err
	}
	if _, err := d.click(ctx, bob, slackmsg.ActionApprove, regflow.RequestID("staging", demoRepo, bad)); err != nil {
		return err
	}
	if rel, err := d.st.Store.GetRelease(ctx, "staging", demoRepo); err != nil || rel.Digest != bad {
		return fmt.Errorf("the crashing build should have been promoted to staging: %+v, %v", rel, err)
	}
	// The promotion copied it; following the service back must copy nothing.
	before := d.st.ECR["staging"].RequestCounts()
	if err := d.deployments(ctx); err != nil {
		return err
	}
	after := d.st.ECR["staging"].RequestCounts()
	for _, op := range []string{localecr.OpBlobUpload, localecr.OpBlobPut, localecr.OpManifestPut, "PutImage"} {
		if after[op] != before[op] {
			return fmt.Errorf("the pointer following the service back must not copy: %s went from %d to %d", op, before[op], after[op])
		}
	}
	rel, err := d.st.Store.GetRelease(ctx, "staging", demoRepo)
	if err != nil || rel.Digest != good {
		return fmt.Errorf("staging's pointer should follow its service back to %s: %+v, %v", good, rel, err)
	}
	if err := d.runs("staging", good); err != nil {
		return err
	}
	d.say("  ✓ SERVICE_DEPLOYMENT_FAILED: the circuit breaker rolled staging back; its pointer followed (%s → %s), nothing copied",
		regflow.ShortDigest(bad), regflow.ShortDigest(good))
	prod, err := d.request(ctx, "prod", bad)
	if err != nil || prod.Status != regflow.StatusBlocked {
		return fmt.Errorf("prod's request for the crashing build should be blocked: %+v, %v", prod, err)
	}
	if res, err := d.click(ctx, carol, slackmsg.ActionApprove, prod.ID); err != nil || res.Outcome == "approved" || res.Outcome == "voted" {
		return fmt.Errorf("prod's approval of a build whose staging deployment failed must stay closed: %+v, %v", res, err)
	}
	d.say("  ✓ the failed deployment counts as staging's failed verification: prod's approval stays closed (%s)", prod.Reason)
	return nil
}

func lastPart(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

// withDemoSignature makes prod signed-only: its requireSignature trusts CI's cosign key
// (in a real config, the key of the CI that builds the images). The config is copied.
func withDemoSignature(cfg *config.Config, ci *ocitest.CosignKey) (*config.Config, error) {
	pub, err := ci.PublicPEM()
	if err != nil {
		return nil, err
	}
	c := *cfg
	c.Environments = maps.Clone(cfg.Environments)
	if e, ok := c.Environments["prod"]; ok && e.RequireSignature == nil {
		e.RequireSignature = &config.SignaturePolicy{Require: []config.SignatureRequirement{{Name: "ci", CosignKey: &config.CosignKey{PublicKey: pub}}}}
		c.Environments["prod"] = e
	}
	return &c, nil
}

// sign signs idx in dev as CI does (cosign sign --key).
func (d *demo) sign(ctx context.Context, idx v1.ImageIndex) error {
	h, err := idx.Digest()
	if err != nil {
		return err
	}
	repo, err := name.NewRepository(d.registry("dev")+"/"+demoRepo, name.Insecure)
	if err != nil {
		return err
	}
	_, err = d.ci.Sign(ctx, repo, h, remote.WithContext(ctx))
	return err
}

// unsignedBuild: a build pushed around CI (no signature) is approved into staging, but
// prod requires CI's signature, so prod's gate refuses it and says why.
func (d *demo) unsignedBuild(ctx context.Context) error {
	const sha = "0dd5ca1ab1e0d15ea5e5b01dfaceb00c0ffee000"
	d.step("A build pushed around CI (unsigned) gets into staging; prod requires CI's signature")
	idx, err := twoPlatformIndex()
	if err != nil {
		return err
	}
	h, err := idx.Digest()
	if err != nil {
		return err
	}
	if err := pushIndex(ctx, d.registry("dev")+"/"+demoRepo+":"+sha, idx); err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	d.quiet.Store(true)
	for _, m := range im.Manifests {
		if err := d.st.ECR["dev"].InjectScan(demoRepo, m.Digest.String()); err != nil {
			d.quiet.Store(false)
			return err
		}
	}
	err = d.settle(ctx)
	if err == nil {
		_, err = d.click(ctx, bob, slackmsg.ActionApprove, regflow.RequestID("staging", demoRepo, h.String()))
	}
	if err == nil {
		err = d.deployments(ctx)
	}
	d.quiet.Store(false)
	if err != nil {
		return err
	}
	prod, err := d.request(ctx, "prod", h.String())
	if err != nil || prod.Status != regflow.StatusBlocked || prod.Signature == nil || prod.Signature.Verified {
		return fmt.Errorf("prod's gate should refuse the unsigned build: %+v, %v", prod, err)
	}
	d.say("  ✓ prod's gate refused %s@%s: %s", demoRepo, regflow.ShortDigest(h.String()), prod.Reason)
	signed, err := d.request(ctx, "prod", d.mustRelease(ctx, "prod"))
	if err == nil && signed.Signature != nil && signed.Signature.Verified {
		d.say("  ✓ what prod runs was %s (the approval message said so)", signed.Signature.Line())
	}
	return nil
}

func (d *demo) mustRelease(ctx context.Context, env string) string {
	rel, err := d.st.Store.GetRelease(ctx, env, demoRepo)
	if err != nil {
		return ""
	}
	return rel.Digest
}

// legacyService: months ago another team deployed an image by hand in staging, and a
// service of theirs still runs it. No release pointer names it.
func (d *demo) legacyService(ctx context.Context) (string, error) {
	now := d.st.Clock.Now()
	d.st.Clock.SetNow(now.Add(-150 * 24 * time.Hour))
	img, err := random.Image(2048, 1)
	if err == nil {
		err = push(ctx, d.registry("staging")+"/"+demoRepo+":legacy-2026", img)
	}
	d.st.Clock.SetNow(now)
	if err != nil {
		return "", err
	}
	h, err := img.Digest()
	if err != nil {
		return "", err
	}
	api := ecs.NewFromConfig(d.st.RuntimeConfig("staging"))
	if _, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("legacy")}); err != nil {
		return "", err
	}
	td, err := api.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("reports"), Memory: aws.String("512"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("reports"), Image: aws.String(d.registry("staging") + "/" + demoRepo + "@" + h.String()), Essential: aws.Bool(true)}}})
	if err != nil {
		return "", err
	}
	if _, err := api.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("legacy"), ServiceName: aws.String("reports"),
		TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(1)}); err != nil {
		return "", err
	}
	return h.String(), d.deployments(ctx)
}

// keptBecauseItRuns shows the sweep kept the old image only because a service runs it.
func (d *demo) keptBecauseItRuns(ctx context.Context, rep *sweep.Report, digest string) error {
	for _, rr := range rep.Registries {
		for _, dec := range rr.Report.Decisions {
			if dec.Digest != digest {
				continue
			}
			if dec.Action == retention.Delete || !strings.Contains(dec.Reason, "running in ECS service") {
				return fmt.Errorf("the image a service runs should be kept because it runs: %+v", dec)
			}
			if _, err := d.st.Registry(rr.Target.Name).DescribeImage(ctx, demoRepo, digest); err != nil {
				return fmt.Errorf("the image a service runs was deleted: %w", err)
			}
			d.say("  ✓ %s@%s is 150 days old and no pointer names it, yet the sweep kept it: %s", demoRepo, regflow.ShortDigest(digest), dec.Reason)
			return nil
		}
	}
	return fmt.Errorf("the sweep report has no decision for the image the legacy service runs (%s)", digest)
}
