package dynamo

import (
	"slices"
	"testing"
	"time"

	"github.com/regflow/regflow/shared/regflow"
)

// TestItemAttributeNames: items are encoded by json tags now; the attribute names (and what
// is left out) must stay those of the tables already deployed.
func TestItemAttributeNames(t *testing.T) {
	r := regflow.ApprovalRequest{ID: "req-1", Env: "prod", Repository: "app", Digest: "sha256:abc", Status: regflow.StatusPending,
		CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Version: 1}
	it := requestItemOf(r)
	it.TTL = 42
	m, err := marshalMap(it)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PK", "SK", "GSI1PK", "GSI1SK", "ttl", "id", "env", "repository", "status", "createdAt", "version"} {
		if _, ok := m[want]; !ok {
			t.Errorf("attribute %q missing", want)
		}
	}
	for _, absent := range []string{"DecidedAt", "TTL", "indexed", "keyed"} {
		if _, ok := m[absent]; ok {
			t.Errorf("attribute %q must not be written", absent)
		}
	}
	var back requestItem
	if err := unmarshalMap(m, &back); err != nil || back.ID != "req-1" || back.TTL != 42 || !back.DecidedAt.IsZero() {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	t.Logf("attributes: %v", keys)
}
