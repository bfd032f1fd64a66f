package metrics_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/metrics"
)

var at = time.Date(2026, 12, 4, 1, 2, 3, 456_000_000, time.UTC)

// validate checks one line against the EMF specification's rules for what regflow writes:
// a JSON object; _aws with an integer millisecond Timestamp and CloudWatchMetrics; each
// directive with a Namespace, Dimensions (sets of at most 30 keys, each key a string member
// of the root) and at most 100 Metrics, each named by a numeric root member, with a
// CloudWatch unit. It returns the metrics' values by name.
func validate(t *testing.T, line []byte) map[string]float64 {
	t.Helper()
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, line)
	}
	var meta struct {
		Timestamp         *json.Number `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  *string    `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
	dec := json.NewDecoder(bytes.NewReader(root["_aws"]))
	dec.UseNumber()
	if err := dec.Decode(&meta); err != nil {
		t.Fatalf("_aws: %v", err)
	}
	if meta.Timestamp == nil {
		t.Fatal("_aws.Timestamp missing")
	}
	if _, err := meta.Timestamp.Int64(); err != nil {
		t.Fatalf("_aws.Timestamp %s is not whole milliseconds", *meta.Timestamp)
	}
	if len(meta.CloudWatchMetrics) == 0 {
		t.Fatal("_aws.CloudWatchMetrics missing")
	}
	units := []string{"", "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}
	values := map[string]float64{}
	for _, d := range meta.CloudWatchMetrics {
		if d.Namespace == nil || *d.Namespace == "" {
			t.Fatal("directive without a Namespace")
		}
		if d.Dimensions == nil {
			t.Fatal("directive without Dimensions")
		}
		for _, set := range d.Dimensions {
			if len(set) > 30 {
				t.Fatalf("dimension set of %d keys", len(set))
			}
			for _, k := range set {
				var s string
				if err := json.Unmarshal(root[k], &s); err != nil {
					t.Fatalf("dimension %q is not a string member of the root: %v", k, err)
				}
			}
		}
		if len(d.Metrics) == 0 || len(d.Metrics) > 100 {
			t.Fatalf("%d metrics in a directive", len(d.Metrics))
		}
		for _, m := range d.Metrics {
			if !slices.Contains(units, m.Unit) {
				t.Fatalf("%s: unit %q", m.Name, m.Unit)
			}
			var v float64
			if err := json.Unmarshal(root[m.Name], &v); err != nil {
				t.Fatalf("metric %q is not a number member of the root: %v", m.Name, err)
			}
			values[m.Name] = v
		}
	}
	return values
}

func TestEmitFollowsTheSpecification(t *testing.T) {
	var out bytes.Buffer
	w, err := metrics.New(&out, "regflow", func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	err = w.Emit(map[string]string{"Environment": "prod"}, [][]string{{}, {"Environment"}},
		metrics.Metric{Name: "Promotions", Unit: metrics.Count, Value: 1},
		metrics.Metric{Name: "PromotionBytesMoved", Unit: metrics.Bytes, Value: 2048})
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("%d lines, want one document per line", len(lines))
	}
	got := validate(t, lines[0])
	if got["Promotions"] != 1 || got["PromotionBytesMoved"] != 2048 {
		t.Fatalf("values = %v", got)
	}
	if !strings.Contains(string(lines[0]), `"Timestamp":1796346123456`) {
		t.Fatalf("timestamp is not the clock's milliseconds: %s", lines[0])
	}
}

func TestEmitRefusesWhatCloudWatchWouldDrop(t *testing.T) {
	many := make([]metrics.Metric, 101)
	for i := range many {
		many[i] = metrics.Metric{Name: fmt.Sprintf("M%d", i), Unit: metrics.Count}
	}
	wide := make([]string, 31)
	dims := map[string]string{}
	for i := range wide {
		wide[i] = fmt.Sprintf("D%d", i)
		dims[wide[i]] = "v"
	}
	one := metrics.Metric{Name: "Promotions", Unit: metrics.Count, Value: 1}
	for _, tc := range []struct {
		name string
		dims map[string]string
		sets [][]string
		ms   []metrics.Metric
		want string
	}{
		{"unknown unit", nil, nil, []metrics.Metric{{Name: "X", Unit: "Things"}}, "not a CloudWatch unit"},
		{"dimension without a value", nil, [][]string{{"Environment"}}, []metrics.Metric{one}, `dimension "Environment" has no value`},
		{"too many metrics", nil, nil, many, "at most 100"},
		{"too wide a dimension set", dims, [][]string{wide}, []metrics.Metric{one}, "at most 30"},
		{"metric named like a dimension", map[string]string{"Promotions": "x"}, nil, []metrics.Metric{one}, "both a dimension and a metric"},
		{"reserved name", nil, nil, []metrics.Metric{{Name: "_aws", Unit: metrics.Count}}, "not allowed"},
		{"empty name", nil, nil, []metrics.Metric{{Unit: metrics.Count}}, "not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w, _ := metrics.New(&out, "regflow", nil)
			err := w.Emit(tc.dims, tc.sets, tc.ms...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if out.Len() != 0 {
				t.Fatalf("wrote %q after refusing", out.String())
			}
		})
	}
}

func TestNilWriterRecordsNothing(t *testing.T) {
	var w *metrics.Writer
	if err := w.Emit(nil, nil, metrics.Metric{Name: "X", Unit: metrics.Count}); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(&bytes.Buffer{}, "", nil); err == nil {
		t.Fatal("an empty namespace was accepted")
	}
}
