package localecr_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/regflow/regflow/shared/local/localecr"
)

// The /v2 API tried endpoint by endpoint with plain net/http, as a new client would, against
// the OCI distribution spec v1.1 (its endpoint table, end-1 … end-13) and ECR's departures
// from it: sha256 only, blob DELETE unsupported, deleting a digest removes its tags.

// v2Client sends raw registry requests with the server's Basic credentials.
type v2Client struct {
	t        *testing.T
	base     string
	user, pw string
}

func newV2Client(t *testing.T, srv *localecr.Server) v2Client {
	user, pw := srv.Credentials()
	return v2Client{t: t, base: srv.URL(), user: user, pw: pw}
}

type v2Resp struct {
	*http.Response
	body []byte
}

// do sends method to path (absolute, or relative to the server: a Location works as is).
// body may be []byte, an io.Reader (sent chunked, with no length) or nil; hdr is name, value pairs.
func (c v2Client) do(method, path string, body any, hdr ...string) v2Resp {
	c.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = c.base + path
	}
	var r io.Reader
	switch b := body.(type) {
	case []byte:
		r = bytes.NewReader(b)
	case io.Reader:
		r = io.NopCloser(b) // hides the length: net/http sends it chunked
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.SetBasicAuth(c.user, c.pw)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return v2Resp{resp, b}
}

// want checks the status, and for an error status the spec's JSON envelope with code.
func (r v2Resp) want(t *testing.T, status int, code string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
	if code == "" {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: error Content-Type %q, want application/json", r.Request.Method, r.Request.URL.Path, ct)
	}
	if r.Request.Method == http.MethodHead {
		return
	}
	var env struct {
		Errors []map[string]json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil || len(env.Errors) != 1 {
		t.Fatalf("error body %q is not the spec's envelope: %v", r.body, err)
	}
	e := env.Errors[0]
	for _, k := range []string{"code", "message", "detail"} {
		if _, ok := e[k]; !ok {
			t.Errorf("error %s has no %q", r.body, k)
		}
	}
	if got := strings.Trim(string(e["code"]), `"`); got != code {
		t.Errorf("%s %s: error code %s, want %s", r.Request.Method, r.Request.URL.Path, got, code)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// blob2048 is a 2048-byte blob with distinct bytes at every offset that matters below.
func blob2048() []byte {
	b := make([]byte, 2048)
	for i := range b {
		b[i] = byte(i*7 + i/256)
	}
	return b
}

func TestSpecBlobPushAndUploadSessions(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	c := newV2Client(t, srv)
	createRepo(t, client(srv), "spec/app")
	createRepo(t, client(srv), "spec/other")
	const repo = "/v2/spec/app"

	commit := func(t *testing.T, r v2Resp, digest string) {
		t.Helper()
		r.want(t, http.StatusCreated, "")
		if loc := r.Header.Get("Location"); loc != repo+"/blobs/"+digest {
			t.Errorf("201 Location %q, want %s", loc, repo+"/blobs/"+digest)
		}
		if r.Header.Get("Docker-Content-Digest") != digest {
			t.Errorf("201 Docker-Content-Digest %q", r.Header.Get("Docker-Content-Digest"))
		}
		head := c.do(http.MethodHead, repo+"/blobs/"+digest, nil)
		head.want(t, http.StatusOK, "")
	}
	open := func(t *testing.T) string {
		t.Helper()
		r := c.do(http.MethodPost, repo+"/blobs/uploads/", nil)
		r.want(t, http.StatusAccepted, "")
		loc := r.Header.Get("Location")
		if !strings.HasPrefix(loc, repo+"/blobs/uploads/") || r.Header.Get("Docker-Upload-UUID") == "" {
			t.Fatalf("202 Location %q, Docker-Upload-UUID %q", loc, r.Header.Get("Docker-Upload-UUID"))
		}
		return loc
	}

	t.Run("monolithic POST ?digest= (end-4b)", func(t *testing.T) {
		b := []byte("monolithic")
		commit(t, c.do(http.MethodPost, repo+"/blobs/uploads/?digest="+sha(b), b, "Content-Type", "application/octet-stream"), sha(b))
	})
	t.Run("POST then PUT (end-4a, end-6)", func(t *testing.T) {
		b := []byte("post then put")
		commit(t, c.do(http.MethodPut, open(t)+"?digest="+sha(b), b, "Content-Type", "application/octet-stream"), sha(b))
	})
	t.Run("chunked PATCHes with status GET (end-5, end-13)", func(t *testing.T) {
		b := blob2048()
		loc := open(t)
		st := c.do(http.MethodGet, loc, nil)
		st.want(t, http.StatusNoContent, "")
		if st.Header.Get("Range") != "0-0" || st.Header.Get("Location") != loc {
			t.Errorf("status of an empty upload: Range %q, Location %q", st.Header.Get("Range"), st.Header.Get("Location"))
		}
		p := c.do(http.MethodPatch, loc, b[:1000], "Content-Range", "0-999", "Content-Type", "application/octet-stream")
		p.want(t, http.StatusAccepted, "")
		if p.Header.Get("Range") != "0-999" {
			t.Errorf("PATCH Range %q, want 0-999", p.Header.Get("Range"))
		}
		st = c.do(http.MethodGet, p.Header.Get("Location"), nil)
		st.want(t, http.StatusNoContent, "")
		if st.Header.Get("Range") != "0-999" {
			t.Errorf("status Range %q, want 0-999", st.Header.Get("Range"))
		}
		// A chunk out of order: 416 (spec), and the upload keeps what it had.
		c.do(http.MethodPatch, loc, b[1500:], "Content-Range", "1500-2047").want(t, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
		c.do(http.MethodPatch, loc, b[1000:], "Content-Range", "1000-2047").want(t, http.StatusAccepted, "")
		commit(t, c.do(http.MethodPut, loc+"?digest="+sha(b), nil), sha(b))
		// The session is gone once committed.
		c.do(http.MethodGet, loc, nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	})
	t.Run("streamed PATCH without Content-Range (end-5 streamed)", func(t *testing.T) {
		b := bytes.Repeat([]byte("stream "), 5000)
		loc := open(t)
		p := c.do(http.MethodPatch, loc, bytes.NewReader(b), "Content-Type", "application/octet-stream")
		p.want(t, http.StatusAccepted, "")
		if p.Header.Get("Range") != fmt.Sprintf("0-%d", len(b)-1) {
			t.Errorf("streamed PATCH: Range %q", p.Header.Get("Range"))
		}
		commit(t, c.do(http.MethodPut, p.Header.Get("Location")+"?digest="+sha(b), nil), sha(b))
	})
	t.Run("PUT with the last chunk after PATCH", func(t *testing.T) {
		b := []byte("first half|second half")
		loc := open(t)
		c.do(http.MethodPatch, loc, b[:11], "Content-Range", "0-10").want(t, http.StatusAccepted, "")
		commit(t, c.do(http.MethodPut, loc+"?digest="+sha(b), b[11:], "Content-Range", fmt.Sprintf("11-%d", len(b)-1)), sha(b))
	})
	t.Run("cancel DELETE (end-12)", func(t *testing.T) {
		loc := open(t)
		c.do(http.MethodDelete, loc, nil).want(t, http.StatusNoContent, "")
		c.do(http.MethodGet, loc, nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		c.do(http.MethodPut, loc+"?digest="+sha(nil), nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		c.do(http.MethodDelete, loc, nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	})
	t.Run("upload id never opened", func(t *testing.T) {
		never := repo + "/blobs/uploads/0123456789abcdef"
		b := []byte("x")
		for _, r := range []v2Resp{
			c.do(http.MethodPut, never+"?digest="+sha(b), b),
			c.do(http.MethodPatch, never, b),
			c.do(http.MethodGet, never, nil),
			c.do(http.MethodDelete, never, nil),
		} {
			r.want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		}
		if c.do(http.MethodHead, repo+"/blobs/"+sha(b), nil).StatusCode != http.StatusNotFound {
			t.Error("a PUT to an upload never opened stored the blob")
		}
	})
	t.Run("upload id of another repository", func(t *testing.T) {
		loc := open(t)
		other := strings.Replace(loc, "/spec/app/", "/spec/other/", 1)
		c.do(http.MethodGet, other, nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	})
	t.Run("digests: wrong, missing, not sha256", func(t *testing.T) {
		b := []byte("digest checks")
		c.do(http.MethodPut, open(t)+"?digest="+sha([]byte("other")), b).want(t, http.StatusBadRequest, "DIGEST_INVALID")
		c.do(http.MethodPut, open(t), b).want(t, http.StatusBadRequest, "DIGEST_INVALID")
		sha512 := "sha512:" + strings.Repeat("ab", 64)
		c.do(http.MethodPost, repo+"/blobs/uploads/?digest="+sha512, b).want(t, http.StatusBadRequest, "DIGEST_INVALID")
		c.do(http.MethodGet, repo+"/blobs/"+sha512, nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")
		c.do(http.MethodPost, repo+"/blobs/uploads/?digest="+sha([]byte("x")), b).want(t, http.StatusBadRequest, "DIGEST_INVALID")
	})
	t.Run("cross-repository mount (end-11)", func(t *testing.T) {
		b := []byte("mount me")
		commit(t, c.do(http.MethodPost, repo+"/blobs/uploads/?digest="+sha(b), b), sha(b))
		m := c.do(http.MethodPost, "/v2/spec/other/blobs/uploads/?mount="+sha(b)+"&from=spec/app", nil)
		m.want(t, http.StatusCreated, "")
		if m.Header.Get("Location") != "/v2/spec/other/blobs/"+sha(b) {
			t.Errorf("mount Location %q", m.Header.Get("Location"))
		}
		c.do(http.MethodGet, "/v2/spec/other/blobs/"+sha(b), nil).want(t, http.StatusOK, "")
		// A blob the source does not hold: the spec's fallback, an upload session.
		miss := c.do(http.MethodPost, "/v2/spec/other/blobs/uploads/?mount="+sha([]byte("absent"))+"&from=spec/app", nil)
		miss.want(t, http.StatusAccepted, "")
		if !strings.HasPrefix(miss.Header.Get("Location"), "/v2/spec/other/blobs/uploads/") {
			t.Errorf("mount fallback Location %q", miss.Header.Get("Location"))
		}
	})
	t.Run("blob pull: GET, HEAD, unknown, other repository (end-2)", func(t *testing.T) {
		b := []byte("pull me")
		commit(t, c.do(http.MethodPost, repo+"/blobs/uploads/?digest="+sha(b), b), sha(b))
		g := c.do(http.MethodGet, repo+"/blobs/"+sha(b), nil)
		g.want(t, http.StatusOK, "")
		if !bytes.Equal(g.body, b) || g.Header.Get("Docker-Content-Digest") != sha(b) {
			t.Errorf("GET blob: %q, digest %q", g.body, g.Header.Get("Docker-Content-Digest"))
		}
		h := c.do(http.MethodHead, repo+"/blobs/"+sha(b), nil)
		if h.ContentLength != int64(len(b)) || len(h.body) != 0 {
			t.Errorf("HEAD blob: length %d, body %d bytes", h.ContentLength, len(h.body))
		}
		c.do(http.MethodGet, repo+"/blobs/"+sha([]byte("nope")), nil).want(t, http.StatusNotFound, "BLOB_UNKNOWN")
		c.do(http.MethodHead, repo+"/blobs/"+sha([]byte("nope")), nil).want(t, http.StatusNotFound, "BLOB_UNKNOWN")
		// As in ECR, a repository sees only the layers pushed or mounted into it.
		c.do(http.MethodGet, "/v2/spec/other/blobs/"+sha(b), nil).want(t, http.StatusNotFound, "BLOB_UNKNOWN")
		c.do(http.MethodGet, "/v2/spec/missing/blobs/"+sha(b), nil).want(t, http.StatusNotFound, "NAME_UNKNOWN")
	})
	t.Run("a repository that does not exist (end-4a, end-4b, end-5, end-6)", func(t *testing.T) {
		b := []byte("nowhere")
		c.do(http.MethodPost, "/v2/spec/missing/blobs/uploads/", nil).want(t, http.StatusNotFound, "NAME_UNKNOWN")
		c.do(http.MethodPost, "/v2/spec/missing/blobs/uploads/?digest="+sha(b), b).want(t, http.StatusNotFound, "NAME_UNKNOWN")
		loc := strings.Replace(open(t), "/spec/app/", "/spec/missing/", 1)
		c.do(http.MethodPatch, loc, b).want(t, http.StatusNotFound, "NAME_UNKNOWN")
		c.do(http.MethodPut, loc+"?digest="+sha(b), b).want(t, http.StatusNotFound, "NAME_UNKNOWN")
	})
	t.Run("blob DELETE is unsupported, as in ECR (end-10)", func(t *testing.T) {
		b := []byte("keep me")
		commit(t, c.do(http.MethodPost, repo+"/blobs/uploads/?digest="+sha(b), b), sha(b))
		c.do(http.MethodDelete, repo+"/blobs/"+sha(b), nil).want(t, http.StatusMethodNotAllowed, "UNSUPPORTED")
		c.do(http.MethodDelete, repo+"/blobs/"+sha([]byte("never pushed")), nil).want(t, http.StatusMethodNotAllowed, "UNSUPPORTED")
		c.do(http.MethodHead, repo+"/blobs/"+sha(b), nil).want(t, http.StatusOK, "")
	})
}

func TestSpecBlobRanges(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	c := newV2Client(t, srv)
	createRepo(t, client(srv), "spec/app")
	b := blob2048()
	c.do(http.MethodPost, "/v2/spec/app/blobs/uploads/?digest="+sha(b), b).want(t, http.StatusCreated, "")
	path := "/v2/spec/app/blobs/" + sha(b)
	tests := []struct {
		rng        string
		status     int
		start, end int // inclusive, for 206
	}{
		{"bytes=-500", http.StatusPartialContent, 1548, 2047},
		{"bytes=500-", http.StatusPartialContent, 500, 2047},
		{"bytes=2000-5000", http.StatusPartialContent, 2000, 2047},
		{"bytes=0-0", http.StatusPartialContent, 0, 0},
		{"bytes=0-2047", http.StatusPartialContent, 0, 2047},
		{"bytes=-5000", http.StatusPartialContent, 0, 2047},
		{"bytes=500-0", http.StatusRequestedRangeNotSatisfiable, 0, 0},
		{"bytes=2048-", http.StatusRequestedRangeNotSatisfiable, 0, 0},
		{"bytes=-0", http.StatusRequestedRangeNotSatisfiable, 0, 0},
		{"bytes=0-1,5-6", http.StatusRequestedRangeNotSatisfiable, 0, 0},
		{"items=0-1", http.StatusRequestedRangeNotSatisfiable, 0, 0},
		{"bytes=abc", http.StatusRequestedRangeNotSatisfiable, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.rng, func(t *testing.T) {
			r := c.do(http.MethodGet, path, nil, "Range", tc.rng)
			if tc.status != http.StatusPartialContent {
				r.want(t, tc.status, "SIZE_INVALID")
				if r.Header.Get("Content-Range") != "bytes */2048" {
					t.Errorf("416 Content-Range %q, want bytes */2048", r.Header.Get("Content-Range"))
				}
				return
			}
			r.want(t, tc.status, "")
			if want := fmt.Sprintf("bytes %d-%d/2048", tc.start, tc.end); r.Header.Get("Content-Range") != want {
				t.Errorf("Content-Range %q, want %q", r.Header.Get("Content-Range"), want)
			}
			if !bytes.Equal(r.body, b[tc.start:tc.end+1]) || r.ContentLength != int64(tc.end-tc.start+1) {
				t.Errorf("body %d bytes (Content-Length %d), want bytes %d-%d", len(r.body), r.ContentLength, tc.start, tc.end)
			}
		})
	}
	if r := c.do(http.MethodGet, path, nil); r.StatusCode != http.StatusOK || r.Header.Get("Accept-Ranges") != "bytes" || len(r.body) != 2048 {
		t.Errorf("GET without Range: %d, Accept-Ranges %q, %d bytes", r.StatusCode, r.Header.Get("Accept-Ranges"), len(r.body))
	}
}

// specImage uploads a config and a layer to repo and returns an OCI image manifest over them.
func specImage(t *testing.T, c v2Client, repo string, seed string, extra string) []byte {
	t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":"` + seed + `"}`)
	layer := []byte("layer " + seed)
	for _, b := range [][]byte{cfg, layer} {
		c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+sha(b), b).want(t, http.StatusCreated, "")
	}
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]%s}`,
		sha(cfg), len(cfg), sha(layer), len(layer), extra)
}

func TestSpecManifestsTagsReferrersDeletes(t *testing.T) {
	srv, _ := start(t, localecr.Options{})
	c := newV2Client(t, srv)
	createRepo(t, client(srv), "spec/app")
	const repo = "/v2/spec/app"
	const mt = "application/vnd.oci.image.manifest.v1+json"
	m := specImage(t, c, "spec/app", "one", "")
	d := sha(m)

	t.Run("PUT by tag and by digest (end-7)", func(t *testing.T) {
		r := c.do(http.MethodPut, repo+"/manifests/v1", m, "Content-Type", mt)
		r.want(t, http.StatusCreated, "")
		if r.Header.Get("Location") != repo+"/manifests/"+d || r.Header.Get("Docker-Content-Digest") != d {
			t.Errorf("manifest 201: Location %q, digest %q", r.Header.Get("Location"), r.Header.Get("Docker-Content-Digest"))
		}
		c.do(http.MethodPut, repo+"/manifests/"+d, m, "Content-Type", mt).want(t, http.StatusCreated, "")
		c.do(http.MethodPut, repo+"/manifests/"+sha([]byte("other")), m, "Content-Type", mt).want(t, http.StatusBadRequest, "DIGEST_INVALID")
		missing := []byte(strings.Replace(string(m), sha([]byte("layer one")), sha([]byte("no such layer")), 1))
		c.do(http.MethodPut, repo+"/manifests/v2", missing, "Content-Type", mt).want(t, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
		c.do(http.MethodPut, repo+"/manifests/v3", []byte("{not json"), "Content-Type", mt).want(t, http.StatusBadRequest, "MANIFEST_INVALID")
		c.do(http.MethodPut, repo+"/manifests/bad:tag:x", m, "Content-Type", mt).want(t, http.StatusBadRequest, "DIGEST_INVALID")
		c.do(http.MethodPut, "/v2/spec/missing/manifests/v1", m, "Content-Type", mt).want(t, http.StatusNotFound, "NAME_UNKNOWN")
		// ECR's manifest limit is 4 MiB; the spec's answer to a manifest over the limit is 413.
		huge := append([]byte(`{"schemaVersion":2,"mediaType":"`+mt+`","annotations":{"pad":"`), bytes.Repeat([]byte("x"), 4<<20)...)
		huge = append(huge, `"}}`...)
		c.do(http.MethodPut, repo+"/manifests/huge", huge, "Content-Type", mt).want(t, http.StatusRequestEntityTooLarge, "SIZE_INVALID")
	})
	t.Run("GET and HEAD by tag and digest (end-3)", func(t *testing.T) {
		for _, ref := range []string{"v1", d} {
			g := c.do(http.MethodGet, repo+"/manifests/"+ref, nil, "Accept", mt)
			g.want(t, http.StatusOK, "")
			if !bytes.Equal(g.body, m) || g.Header.Get("Content-Type") != mt || g.Header.Get("Docker-Content-Digest") != d {
				t.Errorf("GET %s: type %q, digest %q", ref, g.Header.Get("Content-Type"), g.Header.Get("Docker-Content-Digest"))
			}
			h := c.do(http.MethodHead, repo+"/manifests/"+ref, nil, "Accept", mt)
			h.want(t, http.StatusOK, "")
			if len(h.body) != 0 || h.ContentLength != int64(len(m)) || h.Header.Get("Docker-Content-Digest") != d {
				t.Errorf("HEAD %s: %d body bytes, length %d, digest %q", ref, len(h.body), h.ContentLength, h.Header.Get("Docker-Content-Digest"))
			}
		}
		c.do(http.MethodGet, repo+"/manifests/nope", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
		c.do(http.MethodHead, repo+"/manifests/nope", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
		c.do(http.MethodGet, repo+"/manifests/"+sha([]byte("nope")), nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
		c.do(http.MethodGet, repo+"/manifests/sha512:"+strings.Repeat("ab", 64), nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")
		c.do(http.MethodGet, "/v2/spec/missing/manifests/v1", nil).want(t, http.StatusNotFound, "NAME_UNKNOWN")
	})
	t.Run("tags list with n and last (end-8a, end-8b)", func(t *testing.T) {
		for _, tag := range []string{"a", "b", "c"} {
			c.do(http.MethodPut, repo+"/manifests/"+tag, m, "Content-Type", mt).want(t, http.StatusCreated, "")
		}
		page := func(q string) ([]string, string) {
			r := c.do(http.MethodGet, repo+"/tags/list"+q, nil)
			r.want(t, http.StatusOK, "")
			var out struct {
				Name string   `json:"name"`
				Tags []string `json:"tags"`
			}
			if err := json.Unmarshal(r.body, &out); err != nil || out.Name != "spec/app" {
				t.Fatalf("tags list %s: %s %v", q, r.body, err)
			}
			return out.Tags, r.Header.Get("Link")
		}
		all, link := page("")
		if !slices.Equal(all, []string{"a", "b", "c", "v1"}) || link != "" {
			t.Errorf("all tags %v, Link %q", all, link)
		}
		first, link := page("?n=2")
		if !slices.Equal(first, []string{"a", "b"}) || !strings.Contains(link, "last=b") || !strings.Contains(link, `rel="next"`) {
			t.Errorf("page 1 %v, Link %q", first, link)
		}
		second, link := page("?n=2&last=b")
		if !slices.Equal(second, []string{"c", "v1"}) || link != "" {
			t.Errorf("page 2 %v, Link %q", second, link)
		}
		if rest, _ := page("?last=c"); !slices.Equal(rest, []string{"v1"}) {
			t.Errorf("after c: %v", rest)
		}
		if none, _ := page("?n=0"); len(none) != 0 {
			t.Errorf("n=0: %v", none)
		}
		c.do(http.MethodGet, repo+"/tags/list?n=-1", nil).want(t, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID")
		c.do(http.MethodGet, "/v2/spec/missing/tags/list", nil).want(t, http.StatusNotFound, "NAME_UNKNOWN")
	})
	t.Run("referrers with artifactType filter (end-12a, end-12b)", func(t *testing.T) {
		subject := fmt.Sprintf(`,"subject":{"mediaType":"%s","digest":"%s","size":%d}`, mt, d, len(m))
		sig := []byte(strings.Replace(string(specImage(t, c, "spec/app", "sig", subject)), `"config":{"mediaType":"application/vnd.oci.image.config.v1+json"`,
			`"config":{"mediaType":"application/vnd.example.signature"`, 1))
		r := c.do(http.MethodPut, repo+"/manifests/"+sha(sig), sig, "Content-Type", mt)
		r.want(t, http.StatusCreated, "")
		if r.Header.Get("OCI-Subject") != d {
			t.Errorf("referrer PUT: OCI-Subject %q, want %s", r.Header.Get("OCI-Subject"), d)
		}
		list := func(q string) ([]string, http.Header) {
			r := c.do(http.MethodGet, repo+"/referrers/"+d+q, nil)
			r.want(t, http.StatusOK, "")
			var idx struct {
				MediaType string `json:"mediaType"`
				Manifests []struct {
					Digest       string `json:"digest"`
					ArtifactType string `json:"artifactType"`
				} `json:"manifests"`
			}
			if err := json.Unmarshal(r.body, &idx); err != nil || idx.MediaType != localecr.MediaTypeOCIIndex {
				t.Fatalf("referrers body %s: %v", r.body, err)
			}
			var out []string
			for _, m := range idx.Manifests {
				out = append(out, m.Digest+" "+m.ArtifactType)
			}
			return out, r.Header
		}
		got, _ := list("")
		if !slices.Equal(got, []string{sha(sig) + " application/vnd.example.signature"}) {
			t.Errorf("referrers: %v", got)
		}
		got, h := list("?artifactType=application/vnd.example.signature")
		if len(got) != 1 || h.Get("OCI-Filters-Applied") != "artifactType" {
			t.Errorf("filtered referrers: %v, OCI-Filters-Applied %q", got, h.Get("OCI-Filters-Applied"))
		}
		if got, _ := list("?artifactType=application/vnd.example.sbom"); len(got) != 0 {
			t.Errorf("referrers of another type: %v", got)
		}
		if got, _ := list(""); len(got) != 1 {
			t.Errorf("referrers again: %v", got)
		}
		// An unknown subject has no referrers: an empty index, not an error (spec).
		r = c.do(http.MethodGet, repo+"/referrers/"+sha([]byte("none")), nil)
		r.want(t, http.StatusOK, "")
		c.do(http.MethodGet, repo+"/referrers/v1", nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")
		c.do(http.MethodGet, "/v2/spec/missing/referrers/"+d, nil).want(t, http.StatusNotFound, "NAME_UNKNOWN")
	})
	t.Run("deletes: a tag, then the digest with its tags (end-9)", func(t *testing.T) {
		c.do(http.MethodDelete, repo+"/manifests/a", nil).want(t, http.StatusAccepted, "")
		c.do(http.MethodGet, repo+"/manifests/a", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
		c.do(http.MethodHead, repo+"/manifests/"+d, nil).want(t, http.StatusOK, "")
		c.do(http.MethodDelete, repo+"/manifests/"+d, nil).want(t, http.StatusAccepted, "")
		c.do(http.MethodGet, repo+"/manifests/"+d, nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
		// ECR: deleting by digest removes every tag on it.
		for _, tag := range []string{"b", "c", "v1"} {
			c.do(http.MethodGet, repo+"/manifests/"+tag, nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
		}
		r := c.do(http.MethodGet, repo+"/tags/list", nil)
		if !strings.Contains(string(r.body), `"tags":[]`) {
			t.Errorf("tags after deleting the digest: %s", r.body)
		}
		c.do(http.MethodDelete, repo+"/manifests/"+d, nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
		c.do(http.MethodDelete, repo+"/manifests/nope", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
		c.do(http.MethodDelete, repo+"/manifests/sha512:"+strings.Repeat("ab", 64), nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")
		c.do(http.MethodDelete, repo+"/manifests/bad:tag:x", nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")
		c.do(http.MethodDelete, "/v2/spec/missing/manifests/"+d, nil).want(t, http.StatusNotFound, "NAME_UNKNOWN")
	})
	t.Run("ping, catalog, auth (end-1)", func(t *testing.T) {
		c.do(http.MethodGet, "/v2/", nil).want(t, http.StatusOK, "")
		r := c.do(http.MethodGet, "/v2/_catalog?n=1", nil)
		r.want(t, http.StatusOK, "")
		if !strings.Contains(string(r.body), `"spec/app"`) {
			t.Errorf("catalog: %s", r.body)
		}
		anon := v2Client{t: t, base: c.base}
		anon.do(http.MethodGet, "/v2/", nil).want(t, http.StatusUnauthorized, "DENIED")
		c.do(http.MethodGet, "/v2/spec/app/nothing/here", nil).want(t, http.StatusNotFound, "UNSUPPORTED")
	})
}
