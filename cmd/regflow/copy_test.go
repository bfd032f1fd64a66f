package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/local/localstack"
	"github.com/regflow/regflow/shared/ocicopy"
)

func TestCopyBetweenLocalAccounts(t *testing.T) {
	cfg, err := config.Load(filepath.Join("..", "..", "regflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := localstack.Start(context.Background(), localstack.Options{Config: cfg, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	idx, err := twoPlatformIndex()
	if err != nil {
		t.Fatal(err)
	}
	info := st.Info()
	src := info.Environments["dev"].Registry + "/shop/web:" + commit
	if err := pushIndex(context.Background(), src, idx); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dst := info.Environments["prod"].Registry + "/shop/web"
	out, err := run(t, "copy", src, dst, "--json")
	if err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}
	var res ocicopy.Result
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	want, _ := idx.Digest()
	if res.Digest != want || res.Tag != commit || res.BytesMoved == 0 {
		t.Fatalf("result = %+v", res)
	}
	ref, _ := name.ParseReference(dst+":"+commit, name.Insecure)
	if d, err := remote.Head(ref); err != nil || d.Digest != want {
		t.Fatalf("prod has %v, %v; want %s", d, err, want)
	}
	// Again: nothing moves.
	out, err = run(t, "copy", src, dst)
	if err != nil || !strings.Contains(out, "(0 B moved)") {
		t.Fatalf("second copy: %v\n%s", err, out)
	}
}
