package regflow

import "testing"

func TestSignatureStatusLine(t *testing.T) {
	for _, tt := range []struct {
		s    SignatureStatus
		want string
	}{
		{SignatureStatus{Reason: "prod requires no signature"}, ""},
		{SignatureStatus{Required: true, Verified: true, Identity: "ci@acme.example (issuer https://accounts.example)"}, "Signed by ci@acme.example (issuer https://accounts.example)"},
		{SignatureStatus{Required: true, Reason: "no signature on sha256:0123456789ab"}, "Signature not verified: no signature on sha256:0123456789ab"},
	} {
		if got := tt.s.Line(); got != tt.want {
			t.Errorf("Line() = %q, want %q", got, tt.want)
		}
	}
}
