package localecr_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/testenv"
)

func TestThrottlingIsRetriedByTheStandardRetryer(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	ctx := ctxT(t)
	srv.SetFault("DescribeRepositories", localecr.Fault{ThrottleAbove: 1})

	// Without retries the second call within a second is throttled.
	bare := ecr.NewFromConfig(testenv.AWSConfig(srv.URL()))
	var throttled int
	for range 3 {
		if _, err := bare.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{}); errCode(err) == "ThrottlingException" {
			throttled++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if throttled == 0 {
		t.Fatal("3 calls against a limit of 1 per second were never throttled")
	}

	// The SDK's standard retryer backs off and gets through.
	srv.ResetRequests()
	std := client(srv, func(c *aws.Config) {
		c.Retryer = func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 10; o.MaxBackoff = 500 * time.Millisecond })
		}
	})
	for range 2 {
		if _, err := std.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{}); err != nil {
			t.Fatalf("standard retryer gave up: %v", err)
		}
	}
	if n := srv.Requests("DescribeRepositories"); n <= 2 {
		t.Errorf("%d requests for 2 calls against a limit of 1 per second: the retryer never retried", n)
	}
	srv.SetFault("DescribeRepositories", localecr.Fault{})
	srv.ResetRequests()
	if _, err := bare.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{}); err != nil || srv.Requests("DescribeRepositories") != 1 {
		t.Errorf("after removing the fault: %v, %d requests", err, srv.Requests("DescribeRepositories"))
	}
}

func TestRegistryFaults(t *testing.T) {
	srv, _ := start(t, localecr.Options{FaultSeed: 7})
	c := client(srv)
	a := auth(t, c)
	createRepo(t, c, "app")
	img := testImage(t)
	if err := remote.Write(ref(t, srv, "app:v1"), img, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	size, _ := layers[0].Size()
	user, pw := srv.Credentials()
	get := func(method, path string) (*http.Response, []byte, error) {
		req, _ := http.NewRequest(method, srv.URL()+path, nil)
		req.SetBasicAuth(user, pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	blobPath := "/v2/app/blobs/" + ld.String()

	tests := []struct {
		name   string
		op     string
		fault  localecr.Fault
		method string
		path   string
		check  func(t *testing.T, resp *http.Response, body []byte, err error)
	}{
		{"throttled blob HEAD", localecr.OpBlobHead, localecr.Fault{ThrottleAbove: 1}, http.MethodHead, blobPath, func(t *testing.T, resp *http.Response, _ []byte, err error) {
			// The first HEAD of the window passes; this test sends two and checks the second.
			if err != nil || resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("second HEAD: %v %v, want 429", resp, err)
			}
		}},
		{"500 on manifest GET", localecr.OpManifestGet, localecr.Fault{ErrorRate: 1}, http.MethodGet, "/v2/app/manifests/v1", func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil || resp.StatusCode != http.StatusInternalServerError || !bytes.Contains(body, []byte(`"UNKNOWN"`)) {
				t.Errorf("got %v %s %v, want 500 UNKNOWN", resp, body, err)
			}
		}},
		{"dropped before answering", localecr.OpPing, localecr.Fault{DropRate: 1}, http.MethodGet, "/v2/", func(t *testing.T, resp *http.Response, _ []byte, err error) {
			if err == nil {
				t.Errorf("got %v, want a transport error", resp.Status)
			}
		}},
		{"cut in the middle of a blob", localecr.OpBlobGet, localecr.Fault{DropRate: 1, DropAfterBytes: 100}, http.MethodGet, blobPath, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if !errors.Is(err, io.ErrUnexpectedEOF) || resp.StatusCode != http.StatusOK || resp.ContentLength != size || len(body) != 100 {
				t.Errorf("got %v after %d of %d bytes, want unexpected EOF after 100", err, len(body), size)
			}
		}},
		{"latency", localecr.OpTagsList, localecr.Fault{Latency: 150 * time.Millisecond}, http.MethodGet, "/v2/app/tags/list", func(t *testing.T, resp *http.Response, _ []byte, err error) {
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("got %v %v", resp, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetFault(tc.op, tc.fault)
			defer srv.SetFault(tc.op, localecr.Fault{})
			if tc.fault.ThrottleAbove > 0 {
				_, _, _ = get(tc.method, tc.path)
			}
			before := srv.Requests(tc.op)
			start := time.Now()
			resp, body, err := get(tc.method, tc.path)
			if took := time.Since(start); took < tc.fault.Latency {
				t.Errorf("answered after %v, before the injected latency %v", took, tc.fault.Latency)
			}
			tc.check(t, resp, body, err)
			// net/http retries an idempotent request once its reused connection drops, so allow more there.
			if n := srv.Requests(tc.op); n != before+1 && !(tc.fault.DropRate > 0 && n > before) {
				t.Errorf("request counter went %d -> %d", before, srv.Requests(tc.op))
			}
		})
	}

	// A fault for every operation, and the ECR API's 500.
	srv.SetFault(localecr.AllOps, localecr.Fault{ErrorRate: 1})
	if _, err := ecr.NewFromConfig(testenv.AWSConfig(srv.URL())).ListImages(ctxT(t), &ecr.ListImagesInput{RepositoryName: aws.String("app")}); errCode(err) != "ServerException" {
		t.Errorf("ListImages under AllOps ErrorRate 1: %v, want ServerException", err)
	}
	srv.ClearFaults()
	if _, err := remote.Image(ref(t, srv, "app:v1"), remoteOpts(t, a)...); err != nil {
		t.Errorf("after ClearFaults: %v", err)
	}
}

func TestFlakyBlobDownloadsAreRetriedByGoContainerregistry(t *testing.T) {
	srv, _ := start(t, localecr.Options{FaultSeed: 1})
	c := client(srv)
	a := auth(t, c)
	createRepo(t, c, "app")
	img := testImage(t)
	if err := remote.Write(ref(t, srv, "app:v1"), img, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	srv.SetFault(localecr.OpBlobGet, localecr.Fault{ErrorRate: 0.5})
	pulled, err := remote.Image(ref(t, srv, "app:v1"), remoteOpts(t, a)...)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := pulled.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("layer read through 50%% server errors: %v", err)
		}
		rc.Close()
	}
	if n := srv.Requests(localecr.OpBlobGet); n < 2 {
		t.Errorf("%d blob GETs", n)
	}
}

// Latency is per operation: fixed plus jitter on the faulted one, nothing on the others, and
// AllOps covers every operation without a rule of its own (ECR control plane included).
func TestLatencyInjection(t *testing.T) {
	srv, _ := start(t, localecr.Options{FaultSeed: 3})
	c := client(srv)
	a := auth(t, c)
	createRepo(t, c, "app")
	img := testImage(t)
	if err := remote.Write(ref(t, srv, "app:v1"), img, remoteOpts(t, a)...); err != nil {
		t.Fatal(err)
	}
	user, pw := srv.Credentials()
	timed := func(method, path string) time.Duration {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL()+path, nil)
		req.SetBasicAuth(user, pw)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start)
	}
	const fixed, jitter = 60 * time.Millisecond, 40 * time.Millisecond
	srv.SetFault(localecr.OpManifestHead, localecr.Fault{Latency: fixed, Jitter: jitter})
	var spread []time.Duration
	for range 5 {
		d := timed(http.MethodHead, "/v2/app/manifests/v1")
		if d < fixed || d > fixed+jitter+200*time.Millisecond {
			t.Errorf("faulted HEAD took %v, want %v plus up to %v jitter", d, fixed, jitter)
		}
		spread = append(spread, d)
	}
	// Seeded draws from [0, 40 ms): five of them all under 5 ms would mean no jitter.
	if slices.Max(spread) < fixed+5*time.Millisecond {
		t.Errorf("jitter added nothing: %v", spread)
	}
	if d := timed(http.MethodGet, "/v2/app/manifests/v1"); d >= fixed {
		t.Errorf("an operation without a latency rule took %v", d)
	}
	srv.SetFault(localecr.AllOps, localecr.Fault{Latency: fixed})
	if d := timed(http.MethodGet, "/v2/app/tags/list"); d < fixed {
		t.Errorf("AllOps latency: tags list took %v", d)
	}
	start := time.Now()
	if _, err := c.DescribeRepositories(ctxT(t), &ecr.DescribeRepositoriesInput{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < fixed {
		t.Errorf("AllOps latency: DescribeRepositories took %v", d)
	}
	srv.ClearFaults()
	if d := timed(http.MethodHead, "/v2/app/manifests/v1"); d >= fixed {
		t.Errorf("after ClearFaults a HEAD took %v", d)
	}
}
