// Package metrics writes CloudWatch metrics as embedded metric format (EMF) log lines: a
// Lambda function prints one JSON object per line and CloudWatch Logs extracts the metrics,
// so no PutMetricData call (and no permission for it) sits on any function's path.
//
// No maintained Go EMF library is served here, so this is a small writer of the parts of
// the specification regflow uses:
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"
)

// Unit is one of CloudWatch's standard units (the only values EMF accepts).
type Unit string

// The units regflow emits.
const (
	Count        Unit = "Count"
	Bytes        Unit = "Bytes"
	Milliseconds Unit = "Milliseconds"
	Seconds      Unit = "Seconds"
)

// Specification limits.
const (
	maxMetrics         = 100 // MetricDefinitions per directive
	maxDimensionsInSet = 30  // dimension keys per DimensionSet
	maxNameLength      = 255 // metric and dimension names, namespace
	maxEventBytes      = 1 << 20
)

// Metric is one value of one metric.
type Metric struct {
	Name  string
	Unit  Unit
	Value float64
}

// Writer emits EMF documents, one line each. The zero value discards everything (tests,
// the CLI): only the Lambda functions hand in their standard output.
type Writer struct {
	out       io.Writer
	namespace string
	now       func() time.Time
	mu        sync.Mutex // one document per line even when handlers run concurrently
}

// New returns a writer of namespace's metrics to out.
func New(out io.Writer, namespace string, now func() time.Time) (*Writer, error) {
	if namespace == "" || len(namespace) > maxNameLength {
		return nil, fmt.Errorf("metrics: namespace must be 1 to %d characters, got %q", maxNameLength, namespace)
	}
	if now == nil {
		now = time.Now
	}
	return &Writer{out: out, namespace: namespace, now: now}, nil
}

// Emit writes one document with the metrics ms under the dimension values dims. Each
// dimension set in sets lists keys of dims; an empty set also publishes the metrics with no
// dimension, which is what an account-wide alarm watches.
func (w *Writer) Emit(dims map[string]string, sets [][]string, ms ...Metric) error {
	if w == nil || w.out == nil || len(ms) == 0 {
		return nil
	}
	doc, err := w.document(dims, sets, ms)
	if err != nil {
		return err
	}
	line, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("metrics: encode: %w", err)
	}
	if len(line) >= maxEventBytes {
		return fmt.Errorf("metrics: a document of %d bytes exceeds CloudWatch Logs' event size", len(line))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.out.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("metrics: write: %w", err)
	}
	return nil
}

type definition struct {
	Name string `json:"Name"`
	Unit Unit   `json:"Unit,omitempty"`
}

type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []definition `json:"Metrics"`
}

type metadata struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

func (w *Writer) document(dims map[string]string, sets [][]string, ms []Metric) (map[string]any, error) {
	if len(ms) > maxMetrics {
		return nil, fmt.Errorf("metrics: %d metrics in one document, at most %d", len(ms), maxMetrics)
	}
	doc := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(dims)) {
		if k == "" || len(k) > maxNameLength || k == "_aws" {
			return nil, fmt.Errorf("metrics: dimension name %q is not allowed", k)
		}
		doc[k] = dims[k]
	}
	if sets == nil {
		sets = [][]string{}
	}
	for _, set := range sets {
		if len(set) > maxDimensionsInSet {
			return nil, fmt.Errorf("metrics: a dimension set of %d keys, at most %d", len(set), maxDimensionsInSet)
		}
		for _, k := range set {
			if _, ok := dims[k]; !ok {
				return nil, fmt.Errorf("metrics: dimension %q has no value", k)
			}
		}
	}
	defs := make([]definition, 0, len(ms))
	for _, m := range ms {
		if m.Name == "" || len(m.Name) > maxNameLength || m.Name == "_aws" {
			return nil, fmt.Errorf("metrics: metric name %q is not allowed", m.Name)
		}
		if _, dup := doc[m.Name]; dup {
			return nil, fmt.Errorf("metrics: %q is both a dimension and a metric, or twice a metric", m.Name)
		}
		if !known(m.Unit) {
			return nil, fmt.Errorf("metrics: %s: unit %q is not a CloudWatch unit", m.Name, m.Unit)
		}
		doc[m.Name] = m.Value
		defs = append(defs, definition{Name: m.Name, Unit: m.Unit})
	}
	doc["_aws"] = metadata{
		Timestamp:         w.now().UnixMilli(),
		CloudWatchMetrics: []directive{{Namespace: w.namespace, Dimensions: sets, Metrics: defs}},
	}
	return doc, nil
}

func known(u Unit) bool {
	switch u {
	case "", Count, Bytes, Milliseconds, Seconds, "Microseconds", "Kilobytes", "Megabytes",
		"Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent",
		"Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
		"Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
		"Terabits/Second", "Count/Second", "None":
		return true
	}
	return false
}
