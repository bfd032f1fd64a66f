package ecr_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-cmp/cmp"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/sweeptest"
	"github.com/regflow/regflow/shared/regflow"
)

// beforeDelete runs hook once, just before the first BatchDeleteImage call reaches the registry.
type beforeDelete struct {
	next http.RoundTripper
	hook func()
	done bool
}

func (b *beforeDelete) RoundTrip(r *http.Request) (*http.Response, error) {
	if !b.done && r.Header.Get("X-Amz-Target") == "AmazonEC2ContainerRegistry_V20150921.BatchDeleteImage" {
		b.done = true
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		b.hook()
	}
	return b.next.RoundTrip(r)
}

// TestRemoveTag against the local ECR, which keeps ECR's BatchDeleteImage rules: a tag goes
// only while it names the digest, even when someone moves it between regflow's look and its
// delete (the delete carries the digest, and ECR refuses a mismatch).
func TestRemoveTag(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		tags     []string // on the guarded image
		moveTo   bool     // move "latest" to another image just before the delete
		wantErr  error
		removed  bool
		wantTags []string // left on the guarded image; nil when it is gone
		other    []string // left on the other image
	}{
		{"not the last tag: only the tag goes", []string{sha, "latest"}, false, nil, true, []string{sha}, []string{"keep"}},
		{"the last tag: the image goes, as in ECR", []string{"latest"}, false, nil, true, nil, []string{"keep"}},
		{"moved just before the delete: left alone", []string{sha, "latest"}, true, regflow.ErrTagMoved, false, []string{sha}, []string{"keep", "latest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sweeptest.StartECR(t, localecr.Options{})
			d, err := srv.Seed("app", localecr.SeedImage{Tags: tt.tags}, localecr.SeedImage{Tags: []string{"keep"}})
			if err != nil {
				t.Fatal(err)
			}
			guarded, other := d[0], d[1]
			plain := sweeptest.Client(srv)
			hook := &beforeDelete{next: http.DefaultTransport, hook: func() {
				if !tt.moveTo {
					return
				}
				// Another push moves latest to the other image, as CI re-pushing it would.
				m, err := plain.BatchGetImage(ctx, &ecrsdk.BatchGetImageInput{RepositoryName: aws.String("app"),
					ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(other)}}})
				if err != nil || len(m.Images) != 1 {
					t.Errorf("read the other manifest: %v", err)
					return
				}
				if _, err := plain.PutImage(ctx, &ecrsdk.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: m.Images[0].ImageManifest, ImageTag: aws.String("latest")}); err != nil {
					t.Errorf("move latest: %v", err)
				}
			}}
			api := ecrsdk.NewFromConfig(aws.Config{
				Region: srv.Region(), Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
				BaseEndpoint: aws.String(srv.URL()), HTTPClient: &http.Client{Transport: hook},
			})
			removed, err := ecr.New(api, "").RemoveTag(ctx, "app", "latest", guarded)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) || removed != tt.removed {
				t.Fatalf("RemoveTag = %v, %v; want %v, %v", removed, err, tt.removed, tt.wantErr)
			}
			c := ecr.New(plain, "")
			img, err := c.DescribeImage(ctx, "app", guarded)
			switch {
			case tt.wantTags == nil && !errors.Is(err, regflow.ErrImageNotFound):
				t.Errorf("guarded image should be gone: %+v, %v", img, err)
			case tt.wantTags != nil && (err != nil || !cmp.Equal(img.Tags, tt.wantTags)):
				t.Errorf("guarded image tags %v (%v), want %v", img.Tags, err, tt.wantTags)
			}
			if o, err := c.DescribeImage(ctx, "app", other); err != nil || !cmp.Equal(o.Tags, tt.other) {
				t.Errorf("the other image's tags %v (%v), want %v: a moved tag must never be removed", o.Tags, err, tt.other)
			}
			// Redelivery: the tag is gone (or elsewhere) and nothing more changes.
			if again, err := c.RemoveTag(ctx, "app", "latest", guarded); again || (err != nil && !errors.Is(err, regflow.ErrTagMoved)) {
				t.Errorf("second RemoveTag = %v, %v", again, err)
			}
		})
	}
}
