package modelverify_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/modelverify"
)

// An ONNX model's external data is checked once every file is staged, laid out as the model
// will be (staging names blobs by digest): present, it loads; left out of the model, the
// model is refused.
func TestVerifyChecksONNXExternalDataAmongTheModelsFiles(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("../testdata/scan/onnx/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	allowRaw := func(p map[string]any) {
		// The external-data file is raw floats: unknown to the scanner.
		p["content"] = map[string]any{"allowFormats": []any{"onnx", "json", "unknown"}}
	}
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		want  error
	}{
		{"with its data", map[string][]byte{"config.json": []byte(`{}`), "model.onnx": read("external.onnx"), "external.onnx.data": read("external.onnx.data")}, nil},
		{"without its data", map[string][]byte{"config.json": []byte(`{}`), "model.onnx": read("external.onnx")}, modelverify.ErrUnsafeContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(t)
			g.serve("acme/tiny", sign(t, tc.files, g.key))
			m, err := g.verifier(allowRaw).Verify(context.Background(), "hf://acme/tiny@main")
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("allowed: %+v", m.Evidence())
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "external.onnx.data") {
				t.Fatalf("refused with %v, want %v naming the missing file", err, tc.want)
			}
		})
	}
}
