package ecrevent

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRepositorySamples keeps the EventBridge samples under events/ decodable, since people invoke with them.
func TestRepositorySamples(t *testing.T) {
	var files []string
	for _, dir := range []string{"tagguard", "scangate", "promoter"} { // full EventBridge events
		f, _ := filepath.Glob(filepath.Join("..", "..", "events", dir, "*.json"))
		files = append(files, f...)
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
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
