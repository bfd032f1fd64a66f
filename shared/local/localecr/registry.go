package localecr

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// maxManifestBytes is ECR's manifest size limit (4 MiB).
const maxManifestBytes = 4 << 20

// route is a parsed /v2 request.
type route struct {
	op   string
	name string // repository, "" for ping and catalog
	ref  string // tag, digest or upload id
}

// classify parses a /v2 path from its end, since repository names contain slashes.
func classify(req *http.Request) route {
	p := strings.TrimPrefix(strings.TrimPrefix(req.URL.Path, "/v2"), "/")
	if p == "" {
		return route{op: OpPing}
	}
	if p == "_catalog" {
		return route{op: OpCatalog}
	}
	seg := strings.Split(strings.TrimSuffix(p, "/"), "/")
	n := len(seg)
	name := func(k int) string { return strings.Join(seg[:n-k], "/") }
	switch {
	case n >= 3 && seg[n-2] == "blobs" && seg[n-1] == "uploads":
		op := OpBlobUpload
		if req.URL.Query().Get("mount") != "" {
			op = OpBlobMount
		}
		return route{op: op, name: name(2)}
	case n >= 4 && seg[n-3] == "blobs" && seg[n-2] == "uploads":
		op := map[string]string{http.MethodPatch: OpBlobPatch, http.MethodPut: OpBlobPut, http.MethodDelete: OpUploadCancel}[req.Method]
		if op == "" {
			op = OpUploadStatus
		}
		return route{op: op, name: name(3), ref: seg[n-1]}
	case n >= 3 && seg[n-2] == "blobs":
		op := map[string]string{http.MethodHead: OpBlobHead, http.MethodDelete: OpBlobDelete}[req.Method]
		if op == "" {
			op = OpBlobGet
		}
		return route{op: op, name: name(2), ref: seg[n-1]}
	case n >= 3 && seg[n-2] == "manifests":
		op := map[string]string{http.MethodHead: OpManifestHead, http.MethodPut: OpManifestPut, http.MethodDelete: OpManifestDelete}[req.Method]
		if op == "" {
			op = OpManifestGet
		}
		return route{op: op, name: name(2), ref: seg[n-1]}
	case n >= 3 && seg[n-2] == "tags" && seg[n-1] == "list":
		return route{op: OpTagsList, name: name(2)}
	case n >= 3 && seg[n-2] == "referrers":
		return route{op: OpReferrers, name: name(2), ref: seg[n-1]}
	}
	return route{op: "v2-unknown"}
}

func (s *Server) serveV2(w http.ResponseWriter, req *http.Request, rt route) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if !s.opts.AuthDisabled {
		if user, pw, ok := req.BasicAuth(); !ok || user != "AWS" || pw != s.password {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm=%q,service="ecr.amazonaws.com"`, s.URL()+"/"))
			writeOCIError(w, newOCIError(http.StatusUnauthorized, "DENIED", "Not Authorized: use the token from GetAuthorizationToken"))
			return
		}
	}
	if rt.op == OpPing {
		w.WriteHeader(http.StatusOK)
		return
	}
	if rt.op == OpCatalog {
		s.serveCatalog(w, req)
		return
	}
	if rt.name == "" {
		writeOCIError(w, newOCIError(http.StatusNotFound, "UNSUPPORTED", "The registry does not serve %s %s", req.Method, req.URL.Path))
		return
	}
	if err := s.ensureRepo(rt); err != nil {
		writeOCIError(w, err)
		return
	}
	switch rt.op {
	case OpManifestGet, OpManifestHead, OpManifestPut, OpManifestDelete, OpReferrers:
		// A reference with a colon is a digest; ECR takes sha256 only.
		if strings.Contains(rt.ref, ":") || rt.op == OpReferrers {
			if e := checkDigest(rt.ref); e != nil {
				writeOCIError(w, e)
				return
			}
		}
	}
	switch rt.op {
	case OpBlobDelete:
		writeOCIError(w, newOCIError(http.StatusMethodNotAllowed, "UNSUPPORTED", "ECR does not delete layers through the registry API"))
	case OpBlobMount:
		s.serveMount(w, req, rt)
	case OpBlobHead, OpBlobGet:
		s.serveBlob(w, req, rt)
	case OpBlobUpload:
		if req.Method != http.MethodPost {
			writeOCIError(w, newOCIError(http.StatusMethodNotAllowed, "UNSUPPORTED", "start an upload with POST, not %s", req.Method))
			return
		}
		s.serveUploadStart(w, req, rt)
	case OpBlobPut:
		s.servePutUpload(w, req, rt)
	case OpBlobPatch:
		s.servePatch(w, req, rt)
	case OpUploadStatus:
		s.serveUploadStatus(w, rt)
	case OpUploadCancel:
		s.serveUploadCancel(w, rt)
	case OpManifestGet, OpManifestHead:
		s.serveManifestGet(w, req, rt)
	case OpManifestPut:
		s.serveManifestPut(w, req, rt)
	case OpManifestDelete:
		s.serveManifestDelete(w, rt)
	case OpTagsList:
		s.serveTags(w, req, rt)
	case OpReferrers:
		s.serveReferrers(w, req, rt)
	default:
		writeOCIError(w, newOCIError(http.StatusNotFound, "UNSUPPORTED", "The registry does not serve %s %s", req.Method, req.URL.Path))
	}
}

// ensureRepo fails a request to a missing repository as ECR does, or creates
// it on a push when AutoCreateRepos is set.
func (s *Server) ensureRepo(rt route) *ociError {
	s.mu.RLock()
	_, ok := s.repos[rt.name]
	s.mu.RUnlock()
	if ok {
		return nil
	}
	push := rt.op == OpBlobUpload || rt.op == OpBlobMount || rt.op == OpManifestPut
	if push && s.opts.AutoCreateRepos {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.repos[rt.name]; ok {
			return nil
		}
		if _, err := s.createRepo(createRepoInput{name: rt.name}); err != nil {
			return newOCIError(http.StatusBadRequest, "NAME_INVALID", "%s", err.message)
		}
		return nil
	}
	return newOCIError(http.StatusNotFound, "NAME_UNKNOWN",
		"The repository with name '%s' does not exist in the registry with id '%s'", rt.name, s.account)
}

// toOCI maps an ECR error of the shared store to the registry API's error.
func toOCI(e *apiError) *ociError {
	switch e.code {
	case "RepositoryNotFoundException":
		return newOCIError(http.StatusNotFound, "NAME_UNKNOWN", "%s", e.message)
	case "ImageNotFoundException":
		return newOCIError(http.StatusNotFound, "MANIFEST_UNKNOWN", "%s", e.message)
	case "ImageTagAlreadyExistsException":
		return newOCIError(http.StatusBadRequest, "TAG_INVALID", "%s", e.message)
	case "LayersNotFoundException", "ReferencedImagesNotFoundException":
		return newOCIError(http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "%s", e.message)
	case "ImageDigestDoesNotMatchException":
		return newOCIError(http.StatusBadRequest, "DIGEST_INVALID", "%s", e.message)
	case "InvalidParameterException", "UnsupportedImageTypeException":
		return newOCIError(http.StatusBadRequest, "MANIFEST_INVALID", "%s", e.message)
	}
	return newOCIError(http.StatusInternalServerError, "UNKNOWN", "%s", e.message)
}

func (s *Server) serveManifestGet(w http.ResponseWriter, req *http.Request, rt route) {
	get := req.Method == http.MethodGet
	var (
		body      []byte
		mediaType string
		digest    string
	)
	if get {
		s.mu.Lock() // a GET records the pull time
	} else {
		s.mu.RLock()
	}
	r, err := s.repo(rt.name)
	if err == nil {
		img := r.lookup(refID(rt.ref))
		if img == nil {
			err = s.imageNotFound(rt.name, refID(rt.ref))
		} else {
			body, mediaType, digest = img.manifest, img.mediaType, img.digest
			if get {
				img.lastPull = s.clock.Now()
			}
		}
	}
	if get {
		s.mu.Unlock()
	} else {
		s.mu.RUnlock()
	}
	if err != nil {
		writeOCIError(w, toOCI(err))
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if get {
		_, _ = w.Write(body)
	}
}

// refID turns a manifest reference into an image id.
func refID(ref string) imageID {
	if strings.Contains(ref, ":") {
		return imageID{Digest: ref}
	}
	return imageID{Tag: ref}
}

func (s *Server) serveManifestPut(w http.ResponseWriter, req *http.Request, rt route) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxManifestBytes+1))
	if err != nil {
		writeOCIError(w, newOCIError(http.StatusBadRequest, "MANIFEST_INVALID", "read manifest: %v", err))
		return
	}
	if len(body) > maxManifestBytes {
		writeOCIError(w, newOCIError(http.StatusRequestEntityTooLarge, "SIZE_INVALID", "manifest is larger than %d bytes", maxManifestBytes))
		return
	}
	in := putManifestInput{repo: rt.name, body: body, mediaType: req.Header.Get("Content-Type")}
	if id := refID(rt.ref); id.Digest != "" {
		in.digest = id.Digest
	} else {
		if !validTag(id.Tag) {
			writeOCIError(w, newOCIError(http.StatusBadRequest, "TAG_INVALID", "invalid tag %q", id.Tag))
			return
		}
		in.tag = id.Tag
	}
	img, aerr := s.putManifest(in)
	if aerr != nil {
		writeOCIError(w, toOCI(aerr))
		return
	}
	if img.subject != "" {
		w.Header().Set("OCI-Subject", img.subject)
	}
	w.Header().Set("Docker-Content-Digest", img.digest)
	w.Header().Set("Location", "/v2/"+rt.name+"/manifests/"+img.digest)
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) serveManifestDelete(w http.ResponseWriter, rt route) {
	s.mu.Lock()
	r, err := s.repo(rt.name)
	var failures []imageFailure
	if err == nil {
		_, failures = s.deleteImages(r, []imageID{refID(rt.ref)})
	}
	s.mu.Unlock()
	switch {
	case err != nil:
		writeOCIError(w, toOCI(err))
	case len(failures) == 0:
		w.WriteHeader(http.StatusAccepted)
	case failures[0].FailureCode == "ImageNotFound":
		writeOCIError(w, newOCIError(http.StatusNotFound, "MANIFEST_UNKNOWN", "%s", failures[0].FailureReason))
	case failures[0].FailureCode == "ImageReferencedByManifestList":
		writeOCIError(w, newOCIError(http.StatusConflict, "DENIED", "%s", failures[0].FailureReason))
	default:
		writeOCIError(w, newOCIError(http.StatusBadRequest, "MANIFEST_INVALID", "%s", failures[0].FailureReason))
	}
}

// servePage writes a JSON page of names, paginated by the spec's n and last, with a Link header when truncated.
func servePage(w http.ResponseWriter, req *http.Request, all []string, body func([]string) any) {
	q := req.URL.Query()
	if last := q.Get("last"); last != "" {
		i := sort.SearchStrings(all, last)
		if i < len(all) && all[i] == last {
			i++
		}
		all = all[i:]
	}
	if ns := q.Get("n"); ns != "" {
		n, err := strconv.Atoi(ns)
		if err != nil || n < 0 {
			writeOCIError(w, newOCIError(http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "n must be a non-negative integer"))
			return
		}
		if n < len(all) {
			all = all[:n]
			if n > 0 {
				next := url.URL{Path: req.URL.Path, RawQuery: url.Values{"n": {ns}, "last": {all[n-1]}}.Encode()}
				w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next.String()))
			}
		}
	}
	if all == nil {
		all = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body(all))
}

func (s *Server) serveTags(w http.ResponseWriter, req *http.Request, rt route) {
	s.mu.RLock()
	r, err := s.repo(rt.name)
	var tags []string
	if err == nil {
		tags = make([]string, 0, len(r.tags))
		for t := range r.tags {
			tags = append(tags, t)
		}
	}
	s.mu.RUnlock()
	if err != nil {
		writeOCIError(w, toOCI(err))
		return
	}
	sort.Strings(tags)
	servePage(w, req, tags, func(page []string) any {
		return struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}{rt.name, page}
	})
}

func (s *Server) serveCatalog(w http.ResponseWriter, req *http.Request) {
	s.mu.RLock()
	names := make([]string, 0, len(s.repos))
	for n := range s.repos {
		names = append(names, n)
	}
	s.mu.RUnlock()
	sort.Strings(names)
	servePage(w, req, names, func(page []string) any {
		return struct {
			Repositories []string `json:"repositories"`
		}{page}
	})
}

// serveReferrers answers the OCI 1.1 referrers API, with the artifactType filter.
func (s *Server) serveReferrers(w http.ResponseWriter, req *http.Request, rt route) {
	if req.Method != http.MethodGet {
		writeOCIError(w, newOCIError(http.StatusMethodNotAllowed, "UNSUPPORTED", "referrers only answers GET"))
		return
	}
	filter := req.URL.Query().Get("artifactType")
	out := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{2, MediaTypeOCIIndex, []descriptor{}}
	s.mu.RLock()
	r, err := s.repo(rt.name)
	if err == nil {
		for _, img := range r.order {
			if img.subject != rt.ref || (filter != "" && img.artifactMediaType != filter) {
				continue
			}
			var m parsedManifest
			_ = json.Unmarshal(img.manifest, &m) // stored manifests were parsed on push
			out.Manifests = append(out.Manifests, descriptor{
				MediaType:    img.mediaType,
				ArtifactType: img.artifactMediaType,
				Digest:       img.digest,
				Size:         int64(len(img.manifest)),
				Annotations:  m.Annotations,
			})
		}
	}
	s.mu.RUnlock()
	if err != nil {
		writeOCIError(w, toOCI(err))
		return
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", MediaTypeOCIIndex)
	_ = json.NewEncoder(w).Encode(out)
}
