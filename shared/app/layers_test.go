package app_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/regflow/regflow/shared/"

// inward are the packages a use case may import: the domain, the event vocabulary, its
// store ports and pure policy, rendering and parsing. Adapters (AWS, Slack, registries) and
// everything under shared/local are handed in through ports by the composition root.
var inward = map[string]bool{
	"config": true, "regflow": true, "event": true, "store": true, "retention": true,
	"tagpolicy": true, "slackmsg": true, "slacksig": true, "ecrevent": true, "ecsevent": true, "glob": true, "redact": true,
}

// useCases and the extra packages each may import. The promoter drives the copy engine
// (ocicopy) directly, a port for it is still to come, and hands releases to the deploy
// use case through its own Deployer port (deploy's types only).
var useCases = map[string][]string{
	"tagguard": nil, "scangate": nil, "approvals": nil, "sweep": nil, "promoter": {"ocicopy", "deploy"}, "deploy": nil,
}

// TestUseCasesDependInward fails when a use case imports an adapter or a local stand-in.
func TestUseCasesDependInward(t *testing.T) {
	for uc, extra := range useCases {
		dir := filepath.Join("..", uc)
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", uc, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			file, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range file.Imports {
				path := strings.Trim(imp.Path.Value, `"`)
				pkg, ours := strings.CutPrefix(path, module)
				if !ours {
					// slack-go's types are fine (parsing a click, Block Kit); its client is not.
					if strings.HasPrefix(path, "github.com/aws/aws-sdk-go-v2") {
						t.Errorf("%s imports %s: a use case reaches AWS through ports only", f, path)
					}
					continue
				}
				if !inward[pkg] && !contains(extra, pkg) {
					t.Errorf("%s imports %s: use cases depend only on the domain, ports and pure policy", f, pkg)
				}
			}
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
