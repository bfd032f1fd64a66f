package store_test

import (
	"strings"
	"testing"

	"github.com/regflow/regflow/shared/store"
)

// TestPrefixesSeparateKinds: IAM's dynamodb:LeadingKeys grants "<prefix>*", so one kind's
// prefix must never start another's, and every key builder must use its kind's prefix.
func TestPrefixesSeparateKinds(t *testing.T) {
	ps := store.Prefixes()
	for i, a := range ps {
		for j, b := range ps {
			if i != j && strings.HasPrefix(b, a) {
				t.Errorf("prefix %q starts %q: a grant on one covers the other", a, b)
			}
		}
	}
	d := "sha256:1"
	for _, c := range []struct{ pk, prefix string }{
		{store.ImagePK("app", d), store.PrefixImage},
		{store.ScanPK("app", d), store.PrefixScan},
		{store.VerificationPK("app", d), store.PrefixVerification},
		{store.AuditPK("app@" + d), store.PrefixAudit},
		{store.ClaimPK("alert/1"), store.PrefixClaim},
		{store.RequestPK("req-1"), store.PrefixRequest},
		{store.ReleasePK("prod", "app"), store.PrefixRelease},
		{store.SweepPK("r1"), store.PrefixSweep},
		{store.ManifestPK(d), store.PrefixManifest},
		{store.RollbackPK("rb-1"), store.PrefixRollback},
	} {
		if !strings.HasPrefix(c.pk, c.prefix) {
			t.Errorf("key %q lacks its kind's prefix %q", c.pk, c.prefix)
		}
	}
}
