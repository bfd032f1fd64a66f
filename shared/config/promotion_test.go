package config

import (
	"strings"
	"testing"
	"time"
)

func TestPromotionSettings(t *testing.T) {
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Promotion.MaxAttempts != 3 || cfg.Promotion.FailedGrace.D() != 7*24*time.Hour {
		t.Fatalf("promotion defaults = %+v, want 3 attempts and 7d", cfg.Promotion)
	}
	for _, tc := range []struct {
		yaml, field, want string
	}{
		{"promotion: {maxAttempts: -1}\n", "promotion.maxAttempts", "between 1 and 10"},
		{"promotion: {maxAttempts: 11}\n", "promotion.maxAttempts", "between 1 and 10"},
		{"promotion: {failedGrace: 30m}\n", "promotion.failedGrace", "between 1h and 365d"},
		{"promotion: {failedGrace: 400d}\n", "promotion.failedGrace", "between 1h and 365d"},
		{"promotion: {failedGrace: -1h}\n", "decode", "negative"},
		{"promotion: {failedGrace: soon}\n", "decode", "not a duration"},
	} {
		t.Run(tc.yaml, func(t *testing.T) {
			_, err := Parse([]byte(minimal + tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v should name %s and say %q", err, tc.field, tc.want)
			}
		})
	}
	ok, err := Parse([]byte(minimal + "promotion: {maxAttempts: 1, failedGrace: 36h}\n"))
	if err != nil || ok.Promotion.MaxAttempts != 1 || ok.Promotion.FailedGrace.D() != 36*time.Hour {
		t.Fatalf("explicit settings: %+v, %v", ok.Promotion, err)
	}
}
