package localecr

import (
	"context"
	"encoding/json"
	"time"

	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/local/eventq"
)

// Actions the local ECR reports in "ECR Image Action" events, spelled as ECR does.
const (
	actionPush   = "PUSH"
	actionDelete = "DELETE"
)

// ImageActionDetail is the detail of an "ECR Image Action" event. ImageTag is
// omitted for a manifest pushed or deleted without a tag.
type ImageActionDetail struct {
	Result         string `json:"result"`
	RepositoryName string `json:"repository-name"`
	ImageDigest    string `json:"image-digest"`
	ActionType     string `json:"action-type"`
	ImageTag       string `json:"image-tag,omitempty"`
}

// ImageScanDetail is the detail of an "ECR Image Scan" (basic scan) event.
// FindingSeverityCounts lists only the severities that have findings.
type ImageScanDetail struct {
	ScanStatus            string         `json:"scan-status"`
	RepositoryName        string         `json:"repository-name"`
	FindingSeverityCounts map[string]int `json:"finding-severity-counts"`
	ImageDigest           string         `json:"image-digest"`
	ImageTags             []string       `json:"image-tags"`
}

func newEventID() string { return eventq.NewID() }

func (s *Server) emit(detailType string, resources []string, detail any) {
	if s.opts.OnEvent == nil {
		return
	}
	d, err := json.Marshal(detail)
	if err != nil {
		s.log.Error("encode ECR event detail", "err", err)
		return
	}
	if resources == nil {
		resources = []string{}
	}
	// Whole seconds in the clock's zone, as RFC 3339 without fractions.
	ev, err := json.Marshal(event.Envelope{
		Version:    "0",
		ID:         newEventID(),
		DetailType: detailType,
		Source:     event.SourceECR,
		AccountID:  s.account,
		Time:       s.clock.Now().Truncate(time.Second),
		Region:     s.region,
		Resources:  resources,
		Detail:     d,
	})
	if err != nil {
		s.log.Error("encode ECR event", "err", err)
		return
	}
	s.events.Push(ev)
}

func (s *Server) emitImageAction(action, repo, digest, tag string) {
	s.emit(event.TypeImageAction, nil, ImageActionDetail{
		Result: "SUCCESS", RepositoryName: repo, ImageDigest: digest, ActionType: action, ImageTag: tag,
	})
}

func (s *Server) emitScan(repo, digest string, tags []string, counts map[string]int) {
	nonZero := map[string]int{}
	for sev, n := range counts {
		if n > 0 {
			nonZero[sev] = n
		}
	}
	if tags == nil {
		tags = []string{}
	}
	s.emit(event.TypeImageScan, []string{s.repoARN(repo)}, ImageScanDetail{
		ScanStatus: "COMPLETE", RepositoryName: repo, FindingSeverityCounts: nonZero, ImageDigest: digest, ImageTags: tags,
	})
}

// WaitEvents blocks until every event emitted before the call has been handed
// to OnEvent (and OnEvent returned), or ctx ends.
func (s *Server) WaitEvents(ctx context.Context) error { return s.events.Wait(ctx) }
