package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// Without this every run leaves the jsii kernel's temp directory behind.
	jsii.Close()
	os.Exit(code)
}

// synthesized is one app built from a config, with every stack's template as JSON.
type synthesized struct {
	cfg       *config.Config
	plan      *plan
	stacks    *Stacks
	templates map[string]template // by stack name
	asm       awscdk.App
}

// template is a synthesized CloudFormation template.
type template map[string]any

// requireNode skips (or fails in CI) when Node.js, which runs the CDK, is missing.
func requireNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Unavailable(t, "node is not on PATH; the CDK's jsii runtime needs Node.js 20 or later")
	}
}

// fakeAssets makes a directory holding <fn>/bootstrap for every function.
func fakeAssets(t *testing.T, skip ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, fn := range functionNames() {
		if contains(skip, fn) {
			continue
		}
		if err := os.MkdirAll(filepath.Join(dir, fn), 0o755); err != nil {
			t.Fatal(err)
		}
		// Distinct content per function, as real binaries have.
		if err := os.WriteFile(filepath.Join(dir, fn, "bootstrap"), []byte("#!/bin/sh\n# "+fn+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeConfig stores a config file and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "regflow.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newTestApp(t *testing.T, cfgPath, assets string) awscdk.App {
	t.Helper()
	return awscdk.NewApp(&awscdk.AppProps{
		Outdir: jsii.String(t.TempDir()),
		Context: &map[string]interface{}{
			ContextConfig: cfgPath,
			ContextAssets: assets,
		},
	})
}

// synth builds the app from the config file at cfgPath and synthesizes every stack.
func synth(t *testing.T, cfgPath string) *synthesized {
	t.Helper()
	requireNode(t)
	app := newTestApp(t, cfgPath, fakeAssets(t))
	stacks, err := Build(app)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &synthesized{cfg: cfg, plan: p, stacks: stacks, templates: map[string]template{}, asm: app}
	for _, st := range stacks.All() {
		var tj map[string]any
		assertNoPanic(t, "template of "+*st.StackName(), func() {
			tj = *assertions.Template_FromStack(st, nil).ToJSON()
		})
		// Round-trip through JSON so values are plain maps, slices and strings.
		b, err := json.Marshal(tj)
		if err != nil {
			t.Fatal(err)
		}
		var out template
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		s.templates[*st.StackName()] = out
	}
	return s
}

// assertNoPanic runs an assertions call, which panics on failure, as a test error.
func assertNoPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

// resources returns a template's resources of one type by logical id.
func (tp template) resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	rs, _ := tp["Resources"].(map[string]any)
	for id, r := range rs {
		m, _ := r.(map[string]any)
		if typ == "" || m["Type"] == typ {
			out[id] = m
		}
	}
	return out
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

// byProp finds the one resource of typ whose property key equals value.
func (tp template) byProp(t *testing.T, typ, key string, value any) (string, map[string]any) {
	t.Helper()
	var ids []string
	for id, r := range tp.resources(typ) {
		if fmt.Sprint(props(r)[key]) == fmt.Sprint(value) {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("want one %s with %s=%v, found %v", typ, key, value, ids)
	}
	return ids[0], tp.resources(typ)[ids[0]]
}

// logicalID returns the id a {"Ref": id} or {"Fn::GetAtt": [id, attr]} points at.
func logicalID(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	if r, ok := m["Ref"].(string); ok {
		return r
	}
	if ga, ok := m["Fn::GetAtt"].([]any); ok && len(ga) > 0 {
		s, _ := ga[0].(string)
		return s
	}
	return ""
}

// strs turns a string or list of strings from a template into a sorted slice.
func strs(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = []string{x}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			} else {
				b, _ := json.Marshal(e)
				out = append(out, string(b))
			}
		}
	case nil:
	default:
		b, _ := json.Marshal(x)
		out = []string{string(b)}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// repoConfig is the example config file at the repository root.
func repoConfig(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "regflow.yaml")
}
