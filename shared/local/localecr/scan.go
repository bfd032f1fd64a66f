package localecr

import (
	"fmt"
	"slices"
	"time"
)

// Scan statuses the local ECR reports.
const (
	ScanComplete   = "COMPLETE"
	ScanInProgress = "IN_PROGRESS"
	ScanFailed     = "FAILED"
)

// Finding is one basic-scan finding, as DescribeImageScanFindings returns it.
type Finding struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	URI         string      `json:"uri,omitempty"`
	Severity    string      `json:"severity"`
	Attributes  []Attribute `json:"attributes,omitempty"`
}

// Attribute is a finding's key/value attribute (package_name, CVSS2_SCORE, ...).
type Attribute struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ScanResult is the state of an image's scan.
type ScanResult struct {
	Status                       string
	Description                  string
	CompletedAt                  time.Time
	VulnerabilitySourceUpdatedAt time.Time
	Findings                     []Finding
	// Enhanced marks an Inspector scan: DescribeImageScanFindings returns enhancedFindings.
	Enhanced bool
}

func (r *ScanResult) severityCounts() map[string]int {
	counts := map[string]int{}
	for _, f := range r.Findings {
		counts[f.Severity]++
	}
	return counts
}

var severities = []string{"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL", "UNDEFINED"}

// InjectScan records a completed basic scan of repo@digest with findings, as
// ECR's scanner would, and emits the "ECR Image Scan" event. Injecting again
// replaces the result (a rescan).
func (s *Server) InjectScan(repo, digest string, findings ...Finding) error {
	for i, f := range findings {
		if !slices.Contains(severities, f.Severity) {
			return fmt.Errorf("inject scan of %s@%s: finding %d (%s) has severity %q, want one of %v", repo, digest, i, f.Name, f.Severity, severities)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repo]
	if !ok {
		return fmt.Errorf("inject scan: repository %q does not exist in local ECR %s", repo, s.account)
	}
	img, ok := r.images[digest]
	if !ok {
		return fmt.Errorf("inject scan: image %s does not exist in repository %q of local ECR %s", digest, repo, s.account)
	}
	now := s.clock.Now()
	img.scan = &ScanResult{
		Status:                       ScanComplete,
		Description:                  "The scan was completed successfully.",
		CompletedAt:                  now,
		VulnerabilitySourceUpdatedAt: now,
		Findings:                     slices.Clone(findings),
	}
	s.emitScan(repo, digest, slices.Clone(img.tags), img.scan.severityCounts())
	return nil
}

// inspectorSeverities are the severities Inspector (enhanced scanning) assigns.
var inspectorSeverities = []string{"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL", "UNTRIAGED"}

// InjectEnhancedScan records a completed Inspector (enhanced) scan of repo@digest, which
// DescribeImageScanFindings then returns as enhancedFindings. As with enhanced scanning in
// ECR, no "ECR Image Scan" event is emitted: Inspector sends its own "Inspector2 Scan".
func (s *Server) InjectEnhancedScan(repo, digest string, findings ...Finding) error {
	for i, f := range findings {
		if !slices.Contains(inspectorSeverities, f.Severity) {
			return fmt.Errorf("inject enhanced scan of %s@%s: finding %d (%s) has severity %q, want one of %v", repo, digest, i, f.Name, f.Severity, inspectorSeverities)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repo]
	if !ok {
		return fmt.Errorf("inject enhanced scan: repository %q does not exist in local ECR %s", repo, s.account)
	}
	img, ok := r.images[digest]
	if !ok {
		return fmt.Errorf("inject enhanced scan: image %s does not exist in repository %q of local ECR %s", digest, repo, s.account)
	}
	now := s.clock.Now()
	img.scan = &ScanResult{
		Status: ScanComplete, Description: "The scan was completed successfully.", CompletedAt: now,
		VulnerabilitySourceUpdatedAt: now, Findings: slices.Clone(findings), Enhanced: true,
	}
	return nil
}

// enhancedFinding is a finding in DescribeImageScanFindings' enhancedFindings shape.
type enhancedFinding struct {
	Title                       string         `json:"title"`
	Severity                    string         `json:"severity"`
	Status                      string         `json:"status"`
	Type                        string         `json:"type"`
	PackageVulnerabilityDetails map[string]any `json:"packageVulnerabilityDetails"`
}

func enhanced(fs []Finding) []enhancedFinding {
	out := make([]enhancedFinding, 0, len(fs))
	for _, f := range fs {
		details := map[string]any{"vulnerabilityId": f.Name, "sourceUrl": f.URI}
		for _, a := range f.Attributes {
			if a.Key == "package_name" {
				details["vulnerablePackages"] = []map[string]string{{"name": a.Value}}
			}
		}
		title := f.Name
		if f.Description != "" {
			title += " - " + f.Description
		}
		out = append(out, enhancedFinding{Title: title, Severity: f.Severity, Status: "ACTIVE", Type: "PACKAGE_VULNERABILITY", PackageVulnerabilityDetails: details})
	}
	return out
}

// queueScan runs Options.Scanner for a pushed image in the background. Callers hold s.mu.
func (s *Server) queueScan(repo string, img *image) {
	img.scan = &ScanResult{Status: ScanInProgress}
	digest := img.digest
	s.scans.Add(1)
	done := s.events.Produce()
	go func() {
		defer s.scans.Done()
		defer done()
		findings, err := s.opts.Scanner(s.ctx, repo, digest)
		if err != nil {
			s.log.Warn("scanner failed", "repo", repo, "digest", digest, "err", err)
			s.mu.Lock()
			if r, ok := s.repos[repo]; ok {
				if img, ok := r.images[digest]; ok {
					img.scan = &ScanResult{Status: ScanFailed, Description: err.Error()}
				}
			}
			s.mu.Unlock()
			return
		}
		if err := s.InjectScan(repo, digest, findings...); err != nil {
			s.log.Warn("record scan", "err", err)
		}
	}()
}

func (s *Server) opStartImageScan(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string  `json:"registryId"`
		RepositoryName string  `json:"repositoryName"`
		ImageID        imageID `json:"imageId"`
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
	img := r.lookup(in.ImageID)
	if img == nil {
		return nil, s.imageNotFound(r.name, in.ImageID)
	}
	if s.opts.Scanner != nil {
		s.queueScan(r.name, img)
	} else if img.scan == nil {
		// Without a scanner the scan completes when a test calls InjectScan.
		img.scan = &ScanResult{Status: ScanInProgress}
	}
	return map[string]any{
		"registryId":      s.account,
		"repositoryName":  r.name,
		"imageId":         imageID{Digest: img.digest, Tag: in.ImageID.Tag},
		"imageScanStatus": scanStatusOut{Status: ScanInProgress},
	}, nil
}

func (s *Server) opDescribeImageScanFindings(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string  `json:"registryId"`
		RepositoryName string  `json:"repositoryName"`
		ImageID        imageID `json:"imageId"`
		NextToken      string  `json:"nextToken"`
		MaxResults     *int    `json:"maxResults"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	limit, err := pageSize(in.MaxResults, 100, 1000)
	if err != nil {
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
	img := r.lookup(in.ImageID)
	if img == nil {
		return nil, s.imageNotFound(r.name, in.ImageID)
	}
	if img.scan == nil {
		return nil, newAPIError("ScanNotFoundException",
			"Image scan does not exist for the image with '{imageDigest:'%s', imageTag:'%s'}' in the repository with name '%s' in the registry with id '%s'",
			orNull(in.ImageID.Digest), orNull(in.ImageID.Tag), r.name, s.account)
	}
	sc := img.scan
	resp := map[string]any{
		"registryId":      s.account,
		"repositoryName":  r.name,
		"imageId":         imageID{Digest: img.digest, Tag: in.ImageID.Tag},
		"imageScanStatus": scanStatusOut{Status: sc.Status, Description: sc.Description},
	}
	if sc.Status != ScanComplete {
		return resp, nil
	}
	start := 0
	if in.NextToken != "" {
		seq, _, err := decodeToken(in.NextToken)
		if err != nil || seq > uint64(len(sc.Findings)) {
			return nil, invalidParameter("Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'")
		}
		start = int(seq)
	}
	end := min(start+limit, len(sc.Findings))
	page := sc.Findings[start:end]
	if page == nil {
		page = []Finding{}
	}
	if end < len(sc.Findings) {
		resp["nextToken"] = encodeToken(uint64(end), "")
	}
	findings := map[string]any{
		"findings":                     page,
		"imageScanCompletedAt":         epochTime(sc.CompletedAt),
		"vulnerabilitySourceUpdatedAt": epochTime(sc.VulnerabilitySourceUpdatedAt),
		"findingSeverityCounts":        sc.severityCounts(),
	}
	if sc.Enhanced {
		delete(findings, "findings")
		findings["enhancedFindings"] = enhanced(page)
	}
	resp["imageScanFindings"] = findings
	return resp, nil
}
