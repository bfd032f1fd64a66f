package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/deploy"
	"github.com/regflow/regflow/shared/regflow"
)

// fakeAccount is one environment account's SSM, ECS and Lambda, in memory: a pure test of
// the deployer's logic (the adapters are tested against moto and the local stack).
type fakeAccount struct {
	params   map[string][]string // versions
	taskDefs []deploy.TaskDefinition
	service  string // task definition ARN the service runs
	latest   string // $LATEST image
	versions []string
	alias    string

	registers, updates, publishes, puts int
	failUpdateService                   int
}

func newAccount() *fakeAccount {
	return &fakeAccount{
		params:   map[string][]string{},
		taskDefs: []deploy.TaskDefinition{{ARN: "arn:td/web:1", Family: "web", Revision: 1, Images: map[string]string{"app": "old@sha256:0", "sidecar": "envoy:1"}}},
		service:  "arn:td/web:1",
		latest:   "old@sha256:0", versions: []string{"old@sha256:0"}, alias: "1",
	}
}

func (f *fakeAccount) GetParameter(_ context.Context, name string) (string, error) {
	v := f.params[name]
	if len(v) == 0 {
		return "", deploy.ErrNotFound
	}
	return v[len(v)-1], nil
}
func (f *fakeAccount) PutParameter(_ context.Context, name, value string) (int64, error) {
	f.puts++
	f.params[name] = append(f.params[name], value)
	return int64(len(f.params[name])), nil
}
func (f *fakeAccount) find(arn string) deploy.TaskDefinition {
	for _, td := range f.taskDefs {
		if td.ARN == arn {
			return td
		}
	}
	return deploy.TaskDefinition{}
}
func (f *fakeAccount) ServiceTaskDefinition(context.Context, string, string) (deploy.TaskDefinition, error) {
	return f.find(f.service), nil
}
func (f *fakeAccount) LatestTaskDefinition(context.Context, string) (deploy.TaskDefinition, error) {
	return f.taskDefs[len(f.taskDefs)-1], nil
}
func (f *fakeAccount) Register(_ context.Context, from deploy.TaskDefinition, container, image string) (deploy.TaskDefinition, error) {
	f.registers++
	images := map[string]string{}
	for k, v := range from.Images {
		images[k] = v
	}
	images[container] = image
	rev := len(f.taskDefs) + 1
	td := deploy.TaskDefinition{ARN: fmt.Sprintf("arn:td/web:%d", rev), Family: from.Family, Revision: rev, Images: images}
	f.taskDefs = append(f.taskDefs, td)
	return td, nil
}
func (f *fakeAccount) UpdateService(_ context.Context, _, _, td string) error {
	if f.failUpdateService > 0 {
		f.failUpdateService--
		return errors.New("ThrottlingException")
	}
	f.updates++
	f.service = td
	return nil
}
func (f *fakeAccount) AliasVersion(context.Context, string, string) (string, error) {
	return f.alias, nil
}
func (f *fakeAccount) VersionImage(_ context.Context, _, v string) (string, error) {
	var i int
	fmt.Sscan(v, &i)
	return f.versions[i-1], nil
}
func (f *fakeAccount) UpdateImage(_ context.Context, _, image string) error {
	f.latest = image
	return nil
}
func (f *fakeAccount) PublishVersion(context.Context, string) (string, error) {
	if f.versions[len(f.versions)-1] != f.latest {
		f.publishes++
		f.versions = append(f.versions, f.latest)
	}
	return fmt.Sprint(len(f.versions)), nil
}
func (f *fakeAccount) MoveAlias(_ context.Context, _, _, v string) error { f.alias = v; return nil }

type audit struct{ ids map[string]bool }

func (a *audit) AppendAudit(_ context.Context, e regflow.AuditEntry) (bool, error) {
	if a.ids[e.ID] {
		return false, nil
	}
	a.ids[e.ID] = true
	return true, nil
}

func setup(t *testing.T) (*deploy.Deployer, *fakeAccount, *audit) {
	t.Helper()
	cfg, err := config.Parse([]byte(`
promotionPath: [dev, prod]
environments:
  dev: {account: "111111111111"}
  prod:
    account: "333333333333"
    promotionRole: arn:aws:iam::333333333333:role/promote
    externalId: xid
    deploy:
      targets:
        - {repositories: "shop/*", ecs: {cluster: prod, service: web, container: app}}
        - {repositories: shop/web, lambda: {function: web-worker, alias: live}}
`))
	if err != nil {
		t.Fatal(err)
	}
	acct, a := newAccount(), &audit{ids: map[string]bool{}}
	d := &deploy.Deployer{Config: cfg, Audit: a, Runtimes: func(context.Context, string) (deploy.Runtime, error) {
		return deploy.Runtime{Parameters: acct, Services: acct, Functions: acct}, nil
	}}
	return d, acct, a
}

const digest = "sha256:" + "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"

func release() deploy.Release {
	return deploy.Release{Env: "prod", Repository: "shop/web", Digest: digest, Tag: "c0ffee", RequestID: "req-1", At: time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)}
}

func TestDeployHandsTheDigestToEveryTarget(t *testing.T) {
	d, acct, a := setup(t)
	out, err := d.Deploy(context.Background(), release())
	if err != nil {
		t.Fatal(err)
	}
	want := "333333333333.dkr.ecr.us-east-1.amazonaws.com/shop/web@" + digest
	td := acct.find(acct.service)
	if td.Images["app"] != want || td.Images["sidecar"] != "envoy:1" {
		t.Fatalf("service runs %v, want app=%s and the sidecar kept", td.Images, want)
	}
	if acct.versions[len(acct.versions)-1] != want || acct.alias != "2" {
		t.Fatalf("alias live → version %s (%v)", acct.alias, acct.versions)
	}
	p, _ := acct.GetParameter(context.Background(), "/regflow/shop/web")
	if !strings.Contains(p, `"digest":"`+digest+`"`) || !strings.Contains(p, `"imageUri":"`+want+`"`) {
		t.Fatalf("parameter = %s", p)
	}
	if len(out) != 3 || len(a.ids) != 3 {
		t.Fatalf("outcomes %+v, audit entries %d", out, len(a.ids))
	}
}

// The same event delivered again changes nothing: no second revision, version or
// parameter version, no new audit entry.
func TestRedeliveryChangesNothing(t *testing.T) {
	d, acct, a := setup(t)
	for range 2 {
		if _, err := d.Deploy(context.Background(), release()); err != nil {
			t.Fatal(err)
		}
	}
	if acct.registers != 1 || acct.updates != 1 || acct.publishes != 1 || acct.puts != 1 || len(a.ids) != 3 {
		t.Fatalf("registers %d, updates %d, publishes %d, puts %d, audit %d: want 1, 1, 1, 1, 3", acct.registers, acct.updates, acct.publishes, acct.puts, len(a.ids))
	}
}

// A revision registered by an attempt that then failed is reused by the retry.
func TestRetryReusesTheRegisteredRevision(t *testing.T) {
	d, acct, _ := setup(t)
	acct.failUpdateService = 1
	if _, err := d.Deploy(context.Background(), release()); err == nil || !strings.Contains(err.Error(), "ecs prod/web/app") {
		t.Fatalf("first attempt: %v, want the ECS target named", err)
	}
	if acct.alias != "2" {
		t.Fatalf("the Lambda target was not deployed when ECS failed: alias %s", acct.alias)
	}
	if _, err := d.Deploy(context.Background(), release()); err != nil {
		t.Fatal(err)
	}
	if acct.registers != 1 || acct.service != "arn:td/web:2" {
		t.Fatalf("registers %d, service on %s: want one revision", acct.registers, acct.service)
	}
}

// A rollback deploys the previous digest to the same targets.
func TestRollbackRedeploysThePreviousDigest(t *testing.T) {
	d, acct, _ := setup(t)
	if _, err := d.Deploy(context.Background(), release()); err != nil {
		t.Fatal(err)
	}
	back := release()
	back.Digest, back.Rollback, back.RequestID = "sha256:"+strings.Repeat("0", 64), true, "rollback-1"
	if _, err := d.Deploy(context.Background(), back); err != nil {
		t.Fatal(err)
	}
	if img := acct.find(acct.service).Images["app"]; !strings.HasSuffix(img, back.Digest) {
		t.Fatalf("service runs %s after the rollback", img)
	}
}

func TestMissingContainerIsNamed(t *testing.T) {
	d, acct, _ := setup(t)
	acct.taskDefs[0].Images = map[string]string{"web": "x"}
	_, err := d.Deploy(context.Background(), release())
	if err == nil || !strings.Contains(err.Error(), `no container "app"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestNoTargetsNoCalls(t *testing.T) {
	d, _, _ := setup(t)
	d.Runtimes = func(context.Context, string) (deploy.Runtime, error) {
		return deploy.Runtime{}, errors.New("must not be reached")
	}
	r := release()
	r.Env = "dev"
	r.Repository = "other/x"
	if out, err := d.Deploy(context.Background(), r); err != nil || out != nil {
		t.Fatalf("the source environment is deployed by CI, not regflow: %v %v", out, err)
	}
}

func TestObserveShowsWhatRunsAndDrift(t *testing.T) {
	d, acct, _ := setup(t)
	before := d.Observe(context.Background(), "prod", "shop/web")
	if len(before) != 3 || before[0].Error == "" || before[1].Digest != "sha256:0" || before[2].Digest != "sha256:0" {
		t.Fatalf("before any release: %+v (the parameter does not exist yet)", before)
	}
	if _, err := d.Deploy(context.Background(), release()); err != nil {
		t.Fatal(err)
	}
	// Someone deploys another image to the service by hand: drift.
	acct.taskDefs = append(acct.taskDefs, deploy.TaskDefinition{ARN: "arn:td/web:9", Family: "web", Revision: 9, Images: map[string]string{"app": "x@sha256:feed"}})
	acct.service = "arn:td/web:9"
	got := d.Observe(context.Background(), "prod", "shop/web")
	if got[0].Digest != digest || got[1].Digest != "sha256:feed" || got[2].Digest != digest {
		t.Fatalf("observed %+v", got)
	}
	if d.Observe(context.Background(), "dev", "shop/web") != nil {
		t.Fatal("the source environment has no targets")
	}
}
