// Package regflow holds the domain types every part of regflow shares: images,
// audit entries and alerts. It imports nothing from AWS.
package regflow

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Image is what regflow knows about one image digest in one repository.
type Image struct {
	Repository string    `json:"repository"`
	Digest     string    `json:"digest"`
	Tags       []string  `json:"tags,omitempty"`
	Commit     string    `json:"commit,omitempty"`
	PushedAt   time.Time `json:"pushedAt"`
	RecordedAt time.Time `json:"recordedAt"`
}

// Ref is repo@digest.
func (i Image) Ref() string { return i.Repository + "@" + i.Digest }

// AuditEntry records one action regflow took or refused, and who was behind it.
// Entries are append-only; ID is deterministic per effect so a redelivered event
// finds its entry already written and does nothing.
type AuditEntry struct {
	// Subject is what the entry is about: "repo@digest" for an image, "repo" for a repository.
	Subject string            `json:"subject"`
	ID      string            `json:"id"`
	Time    time.Time         `json:"time"`
	Action  string            `json:"action"`
	Actor   string            `json:"actor"`
	Reason  string            `json:"reason,omitempty"`
	Details map[string]string `json:"details,omitempty"`
}

// Alert is a message for the people who run the registries.
type Alert struct {
	Kind       string  `json:"kind"`
	Title      string  `json:"title"`
	Text       string  `json:"text"`
	Repository string  `json:"repository,omitempty"`
	Digest     string  `json:"digest,omitempty"`
	Fields     []Field `json:"fields,omitempty"`
}

// Notifier tells the people who run the registries (Slack's alert channel, or the log).
type Notifier interface {
	Notify(ctx context.Context, a Alert) error
}

// Field is a labelled value shown with an alert.
type Field struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// ShortDigest returns "sha256:" and the first 12 hex characters, as people quote digests.
func ShortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12]
}

// Bytes renders a size in IEC units ("1.5 GiB").
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
