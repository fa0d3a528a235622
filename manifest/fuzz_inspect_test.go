package manifest

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzInspectBundle feeds arbitrary bytes to InspectBundle, which reads untrusted bundles for
// error messages: it must never panic, and what it accepts must have a kind.
func FuzzInspectBundle(f *testing.F) {
	sigs, _ := filepath.Glob(filepath.Join(interop, "signed", "*", "model.sig"))
	for _, p := range sigs {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := InspectBundle(data)
		if err == nil && info.Kind == "" {
			t.Fatal("inspected a bundle without saying what kind of signer it names")
		}
		if err == nil {
			_ = info.String()
		}
	})
}
