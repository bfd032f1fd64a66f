package ecrevent

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestRepositorySamples keeps the EventBridge samples under events/ decodable, since people invoke with them.
func TestRepositorySamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "events", "*", "*.json"))
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`"detail-type"`)) {
			continue // API Gateway and SQS samples
		}
		n++
		if _, err := Decode(b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if n < 5 {
		t.Fatalf("found %d EventBridge samples under events/, expected the committed ones", n)
	}
}
