package localecr

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"
)

const ecrTargetPrefix = "AmazonEC2ContainerRegistry_V20150921."

// maxRequestBytes bounds a control-plane request body (PutImage carries a manifest of up to 4 MiB).
const maxRequestBytes = 8 << 20

type ecrOp func(s *Server, body []byte) (any, *apiError)

var ecrOps = map[string]ecrOp{
	"CreateRepository":                 (*Server).opCreateRepository,
	"DescribeRepositories":             (*Server).opDescribeRepositories,
	"DeleteRepository":                 (*Server).opDeleteRepository,
	"PutImageTagMutability":            (*Server).opPutImageTagMutability,
	"PutImageScanningConfiguration":    (*Server).opPutImageScanningConfiguration,
	"DescribeImages":                   (*Server).opDescribeImages,
	"ListImages":                       (*Server).opListImages,
	"BatchGetImage":                    (*Server).opBatchGetImage,
	"PutImage":                         (*Server).opPutImage,
	"BatchDeleteImage":                 (*Server).opBatchDeleteImage,
	"GetAuthorizationToken":            (*Server).opGetAuthorizationToken,
	"DescribeImageScanFindings":        (*Server).opDescribeImageScanFindings,
	"StartImageScan":                   (*Server).opStartImageScan,
	"BatchCheckLayerAvailability":      (*Server).opBatchCheckLayerAvailability,
	"ListTagsForResource":              (*Server).opListTagsForResource,
	"DescribeRegistry":                 (*Server).opDescribeRegistry,
	"GetRegistryScanningConfiguration": (*Server).opGetRegistryScanningConfiguration,
	"SetRepositoryPolicy":              (*Server).opSetRepositoryPolicy,
	"GetRepositoryPolicy":              (*Server).opGetRepositoryPolicy,
}

// ECROperations lists the control-plane operations the local ECR implements.
func ECROperations() []string {
	out := make([]string, 0, len(ecrOps))
	for k := range ecrOps {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *Server) serveECR(w http.ResponseWriter, req *http.Request, op string) {
	fn, ok := ecrOps[op]
	if !ok {
		writeAPIError(w, newAPIError("UnknownOperationException", "The local ECR does not implement operation %q (X-Amz-Target %q)", op, req.Header.Get("X-Amz-Target")))
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxRequestBytes))
	if err != nil {
		writeAPIError(w, newAPIError("SerializationException", "read request body: %v", err))
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	out, aerr := fn(s, body)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	b, merr := json.Marshal(out)
	if merr != nil {
		writeAPIError(w, &apiError{status: http.StatusInternalServerError, code: "ServerException", message: merr.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", newEventID())
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func decode(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return newAPIError("SerializationException", "the request body is not valid JSON for this operation: %v", err)
	}
	return nil
}

// checkRegistry rejects a registryId naming another account: its repositories are not here.
func (s *Server) checkRegistry(registryID, repo string) *apiError {
	if registryID != "" && registryID != s.account {
		return newAPIError("RepositoryNotFoundException",
			"The repository with name '%s' does not exist in the registry with id '%s'", repo, registryID)
	}
	return nil
}

func (s *Server) repositoryOut(r *repository) repositoryOut {
	return repositoryOut{
		RepositoryArn:                      s.repoARN(r.name),
		RegistryID:                         s.account,
		RepositoryName:                     r.name,
		RepositoryURI:                      s.Host() + "/" + r.name,
		CreatedAt:                          epochPtr(r.createdAt),
		ImageTagMutability:                 r.mutability,
		ImageTagMutabilityExclusionFilters: r.exclusions,
		ImageScanningConfiguration:         scanningConfig{r.scanOnPush},
		EncryptionConfiguration:            encryptionConfig{r.encryption, r.kmsKey},
	}
}

func (s *Server) opCreateRepository(body []byte) (any, *apiError) {
	var in struct {
		RegistryID                         string             `json:"registryId"`
		RepositoryName                     string             `json:"repositoryName"`
		ImageTagMutability                 string             `json:"imageTagMutability"`
		ImageTagMutabilityExclusionFilters *[]ExclusionFilter `json:"imageTagMutabilityExclusionFilters"`
		ImageScanningConfiguration         *scanningConfig    `json:"imageScanningConfiguration"`
		EncryptionConfiguration            *encryptionConfig  `json:"encryptionConfiguration"`
		Tags                               []resourceTag      `json:"tags"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.RegistryID != "" && in.RegistryID != s.account {
		return nil, invalidParameter("Invalid parameter at 'registryId' failed to satisfy constraint: 'registryId must be the caller's account %s'", s.account)
	}
	ci := createRepoInput{name: in.RepositoryName, mutability: in.ImageTagMutability, tags: in.Tags}
	if in.ImageTagMutabilityExclusionFilters != nil {
		ci.exclusions, ci.exclusionsSet = *in.ImageTagMutabilityExclusionFilters, true
	}
	if in.ImageScanningConfiguration != nil {
		ci.scanOnPush = in.ImageScanningConfiguration.ScanOnPush
	}
	if e := in.EncryptionConfiguration; e != nil {
		if e.EncryptionType != "AES256" && e.EncryptionType != "KMS" && e.EncryptionType != "KMS_DSSE" {
			return nil, invalidParameter("Invalid parameter at 'encryptionConfiguration.encryptionType' failed to satisfy constraint: 'Member must satisfy enum value set: [AES256, KMS, KMS_DSSE]'")
		}
		ci.encryption, ci.kmsKey = e.EncryptionType, e.KmsKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.createRepo(ci)
	if err != nil {
		return nil, err
	}
	return map[string]any{"repository": s.repositoryOut(r)}, nil
}

// pageSize validates maxResults (1..limit); absent means def.
func pageSize(p *int, def, limit int) (int, *apiError) {
	if p == nil {
		return def, nil
	}
	if *p < 1 || *p > limit {
		return 0, invalidParameter("Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value between 1 and %d'", limit)
	}
	return *p, nil
}

func (s *Server) opDescribeRepositories(body []byte) (any, *apiError) {
	var in struct {
		RegistryID      string   `json:"registryId"`
		RepositoryNames []string `json:"repositoryNames"`
		NextToken       string   `json:"nextToken"`
		MaxResults      *int     `json:"maxResults"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.RepositoryNames) > 0 && (in.MaxResults != nil || in.NextToken != "") {
		return nil, invalidParameter("Invalid parameter: maxResults and nextToken cannot be used with repositoryNames")
	}
	limit, err := pageSize(in.MaxResults, 100, 1000)
	if err != nil {
		return nil, err
	}
	if in.RegistryID != "" && in.RegistryID != s.account {
		if len(in.RepositoryNames) > 0 {
			return nil, s.checkRegistry(in.RegistryID, in.RepositoryNames[0])
		}
		return map[string]any{"repositories": []repositoryOut{}}, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []repositoryOut{}
	if len(in.RepositoryNames) > 0 {
		for _, n := range in.RepositoryNames {
			r, err := s.repo(n)
			if err != nil {
				return nil, err
			}
			out = append(out, s.repositoryOut(r))
		}
		return map[string]any{"repositories": out}, nil
	}
	names := make([]string, 0, len(s.repos))
	for n := range s.repos {
		names = append(names, n)
	}
	sort.Strings(names)
	if in.NextToken != "" {
		after, err := decodeNameToken(in.NextToken)
		if err != nil {
			return nil, err
		}
		names = names[sort.Search(len(names), func(i int) bool { return names[i] > after }):]
	}
	resp := map[string]any{}
	if len(names) > limit {
		names = names[:limit]
		resp["nextToken"] = encodeNameToken(names[limit-1])
	}
	for _, n := range names {
		out = append(out, s.repositoryOut(s.repos[n]))
	}
	resp["repositories"] = out
	return resp, nil
}

func (s *Server) opDeleteRepository(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string `json:"registryId"`
		RepositoryName string `json:"repositoryName"`
		Force          bool   `json:"force"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := s.checkRegistry(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if len(r.images) > 0 && !in.Force {
		return nil, newAPIError("RepositoryNotEmptyException",
			"The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images", r.name, s.account)
	}
	delete(s.repos, r.name)
	s.blobs.dropRepo(r.name)
	return map[string]any{"repository": s.repositoryOut(r)}, nil
}

func (s *Server) opPutImageTagMutability(body []byte) (any, *apiError) {
	var in struct {
		RegistryID                         string             `json:"registryId"`
		RepositoryName                     string             `json:"repositoryName"`
		ImageTagMutability                 string             `json:"imageTagMutability"`
		ImageTagMutabilityExclusionFilters *[]ExclusionFilter `json:"imageTagMutabilityExclusionFilters"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var filters []ExclusionFilter
	if in.ImageTagMutabilityExclusionFilters != nil {
		filters = *in.ImageTagMutabilityExclusionFilters
	}
	if in.ImageTagMutability == "" {
		return nil, invalidParameter("Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must not be null'")
	}
	if err := validateMutability(in.ImageTagMutability, filters, in.ImageTagMutabilityExclusionFilters != nil); err != nil {
		return nil, err
	}
	if err := s.checkRegistry(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	r.mutability, r.exclusions = in.ImageTagMutability, filters
	out := map[string]any{
		"registryId":         s.account,
		"repositoryName":     r.name,
		"imageTagMutability": r.mutability,
	}
	if len(filters) > 0 {
		out["imageTagMutabilityExclusionFilters"] = filters
	}
	return out, nil
}

func (s *Server) opPutImageScanningConfiguration(body []byte) (any, *apiError) {
	var in struct {
		RegistryID                 string          `json:"registryId"`
		RepositoryName             string          `json:"repositoryName"`
		ImageScanningConfiguration *scanningConfig `json:"imageScanningConfiguration"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.ImageScanningConfiguration == nil {
		return nil, invalidParameter("Invalid parameter at 'imageScanningConfiguration' failed to satisfy constraint: 'Member must not be null'")
	}
	if err := s.checkRegistry(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	r.scanOnPush = in.ImageScanningConfiguration.ScanOnPush
	return map[string]any{
		"registryId":                 s.account,
		"repositoryName":             r.name,
		"imageScanningConfiguration": scanningConfig{r.scanOnPush},
	}, nil
}

func tagStatusOK(status string, img *image) bool {
	switch status {
	case "TAGGED":
		return len(img.tags) > 0
	case "UNTAGGED":
		return len(img.tags) == 0
	}
	return true
}

func validTagStatus(status string) *apiError {
	if status != "" && status != "TAGGED" && status != "UNTAGGED" && status != "ANY" {
		return invalidParameter("Invalid parameter at 'filter.tagStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]'")
	}
	return nil
}

func (s *Server) imageDetail(r *repository, img *image) imageDetailOut {
	d := imageDetailOut{
		RegistryID:             s.account,
		RepositoryName:         r.name,
		ImageDigest:            img.digest,
		ImageTags:              slices.Clone(img.tags),
		ImageSizeInBytes:       img.size,
		ImagePushedAt:          epochPtr(img.pushedAt),
		ImageManifestMediaType: img.mediaType,
		ArtifactMediaType:      img.artifactMediaType,
		LastRecordedPullTime:   epochPtr(img.lastPull),
		SubjectManifestDigest:  img.subject,
	}
	if sc := img.scan; sc != nil {
		d.ImageScanStatus = &scanStatusOut{Status: sc.Status, Description: sc.Description}
		if sc.Status == ScanComplete {
			d.ImageScanFindingsSummary = &scanSummaryOut{
				ImageScanCompletedAt:         epochPtr(sc.CompletedAt),
				VulnerabilitySourceUpdatedAt: epochPtr(sc.VulnerabilitySourceUpdatedAt),
				FindingSeverityCounts:        sc.severityCounts(),
			}
		}
	}
	return d
}

type filterIn struct {
	TagStatus string `json:"tagStatus"`
}

func (s *Server) opDescribeImages(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string    `json:"registryId"`
		RepositoryName string    `json:"repositoryName"`
		ImageIDs       []imageID `json:"imageIds"`
		NextToken      string    `json:"nextToken"`
		MaxResults     *int      `json:"maxResults"`
		Filter         filterIn  `json:"filter"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.ImageIDs) > 0 && (in.MaxResults != nil || in.NextToken != "") {
		return nil, invalidParameter("Invalid parameter: maxResults and nextToken cannot be used with imageIds")
	}
	limit, err := pageSize(in.MaxResults, 100, 1000)
	if err != nil {
		return nil, err
	}
	if err := validTagStatus(in.Filter.TagStatus); err != nil {
		return nil, err
	}
	if err := s.checkRegistry(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.repo(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	details := []imageDetailOut{}
	if len(in.ImageIDs) > 0 {
		seen := map[string]bool{}
		for _, id := range in.ImageIDs {
			img := r.lookup(id)
			if img == nil {
				return nil, s.imageNotFound(r.name, id)
			}
			if !seen[img.digest] {
				seen[img.digest] = true
				details = append(details, s.imageDetail(r, img))
			}
		}
		return map[string]any{"imageDetails": details}, nil
	}
	start := 0
	if in.NextToken != "" {
		seq, _, err := decodeToken(in.NextToken)
		if err != nil {
			return nil, err
		}
		start = r.after(seq)
	}
	resp := map[string]any{}
	var last uint64
	for _, img := range r.order[start:] {
		if !tagStatusOK(in.Filter.TagStatus, img) {
			continue
		}
		if len(details) == limit {
			resp["nextToken"] = encodeToken(last, "")
			break
		}
		details = append(details, s.imageDetail(r, img))
		last = img.seq
	}
	resp["imageDetails"] = details
	return resp, nil
}

func (s *Server) opListImages(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string   `json:"registryId"`
		RepositoryName string   `json:"repositoryName"`
		NextToken      string   `json:"nextToken"`
		MaxResults     *int     `json:"maxResults"`
		Filter         filterIn `json:"filter"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	limit, err := pageSize(in.MaxResults, 100, 1000)
	if err != nil {
		return nil, err
	}
	if err := validTagStatus(in.Filter.TagStatus); err != nil {
		return nil, err
	}
	if err := s.checkRegistry(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.repo(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	var (
		tokSeq uint64
		tokTag string
		hasTok = in.NextToken != ""
		start  = 0
	)
	if hasTok {
		if tokSeq, tokTag, err = decodeToken(in.NextToken); err != nil {
			return nil, err
		}
		if tokSeq > 0 {
			start = r.after(tokSeq - 1) // the token's image may still have tags left
		}
	}
	ids := []imageID{}
	resp := map[string]any{}
	var lastSeqSeen uint64
outer:
	for _, img := range r.order[start:] {
		if !tagStatusOK(in.Filter.TagStatus, img) {
			continue
		}
		entries := img.tags
		if len(entries) == 0 {
			entries = []string{""}
		}
		for _, t := range entries {
			if hasTok && img.seq == tokSeq && (t == "" || t <= tokTag) {
				continue
			}
			if len(ids) == limit {
				resp["nextToken"] = encodeToken(lastSeqSeen, ids[len(ids)-1].Tag)
				break outer
			}
			ids = append(ids, imageID{Digest: img.digest, Tag: t})
			lastSeqSeen = img.seq
		}
	}
	resp["imageIds"] = ids
	return resp, nil
}

func (s *Server) opBatchGetImage(body []byte) (any, *apiError) {
	var in struct {
		RegistryID         string    `json:"registryId"`
		RepositoryName     string    `json:"repositoryName"`
		ImageIDs           []imageID `json:"imageIds"`
		AcceptedMediaTypes []string  `json:"acceptedMediaTypes"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkImageIDCount(len(in.ImageIDs)); err != nil {
		return nil, err
	}
	if err := s.checkRegistry(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	s.mu.Lock() // a manifest read records the pull time
	defer s.mu.Unlock()
	r, err := s.repo(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	images, failures := []imageOut{}, []imageFailure{}
	now := s.clock.Now()
	for _, id := range in.ImageIDs {
		if id.Digest == "" && id.Tag == "" {
			failures = append(failures, imageFailure{id, "MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null"})
			continue
		}
		img := r.lookup(id)
		if img == nil {
			failures = append(failures, imageFailure{id, "ImageNotFound", "Requested image not found"})
			continue
		}
		if len(in.AcceptedMediaTypes) > 0 && !slices.Contains(in.AcceptedMediaTypes, img.mediaType) {
			failures = append(failures, imageFailure{id, "UnsupportedImageType", "Requested image media type is not among the accepted media types"})
			continue
		}
		img.lastPull = now
		images = append(images, imageOut{
			RegistryID:             s.account,
			RepositoryName:         r.name,
			ImageID:                imageID{Digest: img.digest, Tag: id.Tag},
			ImageManifest:          string(img.manifest),
			ImageManifestMediaType: img.mediaType,
		})
	}
	return map[string]any{"images": images, "failures": failures}, nil
}

func (s *Server) opPutImage(body []byte) (any, *apiError) {
	var in struct {
		RegistryID             string `json:"registryId"`
		RepositoryName         string `json:"repositoryName"`
		ImageManifest          string `json:"imageManifest"`
		ImageManifestMediaType string `json:"imageManifestMediaType"`
		ImageTag               string `json:"imageTag"`
		ImageDigest            string `json:"imageDigest"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := s.checkRegistry(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	img, err := s.putManifest(putManifestInput{
		repo:      in.RepositoryName,
		tag:       in.ImageTag,
		digest:    in.ImageDigest,
		body:      []byte(in.ImageManifest),
		mediaType: in.ImageManifestMediaType,
		putImage:  true,
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"image": imageOut{
		RegistryID:             s.account,
		RepositoryName:         in.RepositoryName,
		ImageID:                imageID{Digest: img.digest, Tag: in.ImageTag},
		ImageManifest:          in.ImageManifest,
		ImageManifestMediaType: img.mediaType,
	}}, nil
}

func (s *Server) opBatchDeleteImage(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string    `json:"registryId"`
		RepositoryName string    `json:"repositoryName"`
		ImageIDs       []imageID `json:"imageIds"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkImageIDCount(len(in.ImageIDs)); err != nil {
		return nil, err
	}
	if err := s.checkRegistry(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	deleted, failures := s.deleteImages(r, in.ImageIDs)
	return map[string]any{"imageIds": deleted, "failures": failures}, nil
}

func (s *Server) opGetAuthorizationToken(body []byte) (any, *apiError) {
	var in struct {
		RegistryIDs []string `json:"registryIds"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	for _, id := range in.RegistryIDs {
		if id != s.account {
			return nil, invalidParameter("Invalid parameter at 'registryIds' failed to satisfy constraint: 'this local ECR serves registry %s only'", s.account)
		}
	}
	return map[string]any{"authorizationData": []map[string]any{{
		"authorizationToken": base64.StdEncoding.EncodeToString([]byte("AWS:" + s.password)),
		"expiresAt":          epochTime(s.clock.Now().Add(12 * time.Hour)),
		"proxyEndpoint":      s.URL(),
	}}}, nil
}

func (s *Server) opBatchCheckLayerAvailability(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string   `json:"registryId"`
		RepositoryName string   `json:"repositoryName"`
		LayerDigests   []string `json:"layerDigests"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := s.checkRegistry(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	s.mu.RLock()
	_, err := s.repo(in.RepositoryName)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	type layer struct {
		LayerDigest       string `json:"layerDigest"`
		LayerAvailability string `json:"layerAvailability"`
		LayerSize         int64  `json:"layerSize"`
	}
	type failure struct {
		LayerDigest   string `json:"layerDigest"`
		FailureCode   string `json:"failureCode"`
		FailureReason string `json:"failureReason"`
	}
	layers, failures := []layer{}, []failure{}
	for _, d := range in.LayerDigests {
		size, ok := s.blobs.sizeIn(in.RepositoryName, d)
		if !ok {
			failures = append(failures, failure{d, "MissingLayerDigest", "The layer does not exist in the repository"})
			continue
		}
		layers = append(layers, layer{d, "AVAILABLE", size})
	}
	return map[string]any{"layers": layers, "failures": failures}, nil
}

func (s *Server) opListTagsForResource(body []byte) (any, *apiError) {
	var in struct {
		ResourceArn string `json:"resourceArn"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range s.repos {
		if s.repoARN(r.name) == in.ResourceArn {
			tags := r.resourceTag
			if tags == nil {
				tags = []resourceTag{}
			}
			return map[string]any{"tags": tags}, nil
		}
	}
	return nil, invalidParameter("Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN'")
}

func (s *Server) opDescribeRegistry([]byte) (any, *apiError) {
	return map[string]any{"registryId": s.account, "replicationConfiguration": map[string]any{"rules": []any{}}}, nil
}

func (s *Server) opGetRegistryScanningConfiguration([]byte) (any, *apiError) {
	return map[string]any{"registryId": s.account, "scanningConfiguration": map[string]any{"scanType": "BASIC", "rules": []any{}}}, nil
}

// checkImageIDCount applies BatchGetImage's and BatchDeleteImage's 1..100 imageIds bound with
// ECR's wording, as ECR's users have quoted it (awslabs/ecr-cleanup-lambda#11, fujiwara/ecrm#3
// for more than 100; puemos/aws-lambda-ecr-cleaner#3 for none).
func checkImageIDCount(n int) *apiError {
	switch {
	case n > 100:
		return invalidParameter("Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length less than or equal to 100'")
	case n < 1:
		return invalidParameter("Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length greater than or equal to 1'")
	}
	return nil
}
