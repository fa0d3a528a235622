package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// verifier scan names every model format by content and prints its findings (issue 14).
func TestScanNamesModelFormats(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"model.onnx":       "onnx/add.onnx",
		"evil.onnx":        "onnx/external_dotdot.onnx",
		"model.keras":      "keras/lambda.keras",
		"model.h5":         "keras/tfop_write_file.h5",
		"saved_model.pb":   "savedmodel/read_file.pb",
		"model.tflite":     "tflite/custom_op.tflite",
		"tokenizer.model":  "text/tokenizer.model",
		"config.json":      "text/config.json",
		"README.md":        "text/README.md",
		"saved_model.pbtx": "savedmodel/read_write_file.pbtxt",
	}
	model := map[string][]byte{}
	for name, src := range files {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "scan", src))
		if err != nil {
			t.Fatal(err)
		}
		model[name] = b
	}
	writeModel(t, dir, model)
	out, _ := wantExit(t, 1, dir, "scan", ".")
	for _, want := range []string{
		"safe       onnx              model.onnx",
		"dangerous  onnx              evil.onnx",
		"climbs out with ..",
		"safe       keras             model.keras",
		"a Lambda layer",
		"dangerous  keras-h5          model.h5",
		"dangerous  tf-savedmodel     saved_model.pb",
		"safe       tflite            model.tflite",
		`custom operator "MyNativeOp"`,
		"safe       sentencepiece     tokenizer.model",
		"safe       json              config.json",
		"safe       text              README.md",
		"dangerous  tf-savedmodel     saved_model.pbtx",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
