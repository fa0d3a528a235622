package modelverify

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/echelongraph/go-modelverify/internal/scan"
)

// Issue 14: formats that carry code inside data (an ONNX custom operator) are judged by the
// code rule; their other findings by the scan rule; the format by allowFormats.
func TestContentRulesJudgeModelFormats(t *testing.T) {
	dir := "../testdata/scan"
	for _, tc := range []struct {
		file      string
		reason    error  // nil: loads under the default rules
		actual    string // the Problem's Actual
		withCode  error  // the reason with allowCode: true
		notListed bool   // refused when the format is left out of allowFormats
	}{
		{file: "onnx/add.onnx", notListed: true},
		{file: "onnx/external.onnx", notListed: true},
		{file: "onnx/custom_op.onnx", reason: ErrFormatNotAllowed, actual: "code"},
		{file: "onnx/external_dotdot.onnx", reason: ErrUnsafeContent, actual: "dangerous", withCode: ErrUnsafeContent},
		{file: "keras/sequential.keras", notListed: true},
		{file: "keras/sequential.h5", notListed: true},
		{file: "keras/weights_only.h5", notListed: true},
		{file: "keras/lambda.keras", reason: ErrFormatNotAllowed, actual: "code"},
		{file: "keras/lambda.h5", reason: ErrFormatNotAllowed, actual: "code"},
		{file: "keras/config_lambda.json", reason: ErrFormatNotAllowed, actual: "code"},
		{file: "keras/get_file.keras", reason: ErrUnsafeContent, actual: "dangerous", withCode: ErrUnsafeContent},
		{file: "savedmodel/benign.pb", notListed: true},
		{file: "savedmodel/py_func.pb", reason: ErrUnsafeContent, actual: "dangerous", withCode: ErrUnsafeContent},
		{file: "tflite/add.tflite", notListed: true},
		{file: "tflite/custom_op.tflite", reason: ErrFormatNotAllowed, actual: "code"},
		{file: "tflite/flex_read_file.tflite", reason: ErrUnsafeContent, actual: "dangerous", withCode: ErrUnsafeContent},
		{file: "keras/custom_object.keras", reason: ErrUnsafeContent, actual: "suspicious", withCode: ErrUnsafeContent},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep, err := scan.ScanFile(context.Background(), filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(tc.file)
			problems := judgeContent(&ContentRules{}, name, rep)
			if tc.reason == nil {
				if len(problems) != 0 {
					t.Fatalf("default rules refuse it: %+v", problems)
				}
			} else if len(problems) != 1 || !errors.Is(problems[0].Reason, tc.reason) || problems[0].Actual != tc.actual {
				t.Fatalf("got %+v, want %v (%s)", problems, tc.reason, tc.actual)
			}
			p := judgeContent(&ContentRules{AllowCode: true}, name, rep)
			if tc.withCode == nil && len(p) != 0 || tc.withCode != nil && (len(p) != 1 || !errors.Is(p[0].Reason, tc.withCode)) {
				t.Fatalf("with allowCode: got %+v, want %v", p, tc.withCode)
			}
			if tc.notListed {
				p := judgeContent(&ContentRules{AllowFormats: []string{"safetensors"}}, name, rep)
				if len(p) != 1 || !errors.Is(p[0].Reason, ErrFormatNotAllowed) || p[0].Actual != string(rep.Format) {
					t.Fatalf("format left out of allowFormats: %+v", p)
				}
			}
		})
	}
}
