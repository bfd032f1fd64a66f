package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/spf13/cobra"

	"github.com/regflow/regflow/shared/localecr"
	"github.com/regflow/regflow/shared/localstack"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/slacklocal"
)

func newDemoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the whole regflow flow offline against the local stack, narrated",
		Args:  cobra.NoArgs,
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
			d := &demo{out: cmd.OutOrStdout(), started: time.Now()}
			st, err := localstack.Start(cmd.Context(), localstack.Options{
				Config: cfg, Dir: dir, Log: g.logger(), Clock: localecr.FixedClock(time.Now().UTC().Truncate(time.Second)),
				OnSlack: d.showSlack,
				OnError: func(rule string, err error) { d.say("  ! %s failed: %v", rule, err) },
			})
			if err != nil {
				return err
			}
			defer st.Close()
			d.st = st
			return d.run(cmd.Context())
		},
	}
}

type demo struct {
	out     io.Writer
	st      *localstack.Stack
	started time.Time
	n       int
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func (d *demo) step(title string) {
	d.n++
	d.say("\n== %d. %s", d.n, title)
}

func (d *demo) showSlack(m slacklocal.Message) {
	d.say("  [slack #%s] %s", m.Channel, strings.ReplaceAll(m.Text, "\n", "\n                 "))
}

// commit is the demo build's git commit; the image is tagged with it.
const commit = "3f2c1e9a7b6d5c4e3f2a1b0c9d8e7f6a5b4c3d2e"

func (d *demo) run(ctx context.Context) error {
	info := d.st.Info()
	d.say("regflow demo: build once, promote the same digest (offline, local stack)")
	for _, env := range d.st.Config.PromotionPath {
		e := info.Environments[env]
		d.say("  %-8s account %s  registry %s", env, e.Account, e.Registry)
	}
	dev := info.Environments[d.st.Config.Source()]
	repo := "shop/web"

	d.step("CI pushes " + repo + ":latest (moving tags are not allowed)")
	latest, err := random.Image(2048, 2)
	if err != nil {
		return err
	}
	if err := push(ctx, dev.Registry+"/"+repo+":latest", latest); err != nil {
		return err
	}
	if err := d.st.Settle(ctx); err != nil {
		return err
	}
	if _, err := d.st.Registry("dev").DigestOf(ctx, repo, "latest"); !errors.Is(err, regflow.ErrImageNotFound) {
		return fmt.Errorf("step %d: latest should have been removed by the tag guard (lookup: %v)", d.n, err)
	}
	d.say("  ✓ tag guard removed %s:latest and made the repository tag-immutable", repo)

	d.step("CI pushes a two-platform image tagged with its commit SHA, signed")
	idx, err := twoPlatformIndex()
	if err != nil {
		return err
	}
	ref := dev.Registry + "/" + repo + ":" + commit
	if err := pushIndex(ctx, ref, idx); err != nil {
		return err
	}
	digest, _ := idx.Digest()
	sig, err := signature(idx)
	if err != nil {
		return err
	}
	sigDigest, err := sig.Digest()
	if err != nil {
		return err
	}
	if err := push(ctx, dev.Registry+"/"+repo+"@"+sigDigest.String(), sig); err != nil {
		return err
	}
	if err := d.st.Settle(ctx); err != nil {
		return err
	}
	rec, err := d.st.Store.GetImage(ctx, repo, digest.String())
	if err != nil {
		return fmt.Errorf("step %d: the pushed image was not recorded: %w", d.n, err)
	}
	d.say("  ✓ recorded %s@%s (commit %s, 2 platforms, 1 signature referrer)", repo, regflow.ShortDigest(rec.Digest), rec.Commit[:12])

	d.say("\nSummary")
	d.say("  dev holds %s@%s; later steps (scan gate, approvals, promotion, rollback, sweep) land with their issues", repo, regflow.ShortDigest(digest.String()))
	d.say("  finished in %s", time.Since(d.started).Round(time.Millisecond))
	return nil
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
