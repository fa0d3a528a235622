package scan

import (
	"io"
	"os"
	"testing"
)

// The fixtures in testdata/scan/keras are written by make_keras.py: configs in Keras's
// serialization format, HDF5 by the real HDF5 library through h5py.
func TestKerasFixtures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		format  Format
		verdict Verdict
		rule    string // a rule that must fire; "" for none
	}{
		{"sequential.keras", FormatKeras, Safe, ""},
		{"sequential.h5", FormatKerasH5, Safe, ""},
		{"sequential_fixed.h5", FormatKerasH5, Safe, ""},
		{"sequential_str.h5", FormatKerasH5, Safe, ""},
		{"sequential_latest.h5", FormatKerasH5, Safe, ""},
		{"weights_only.h5", FormatHDF5, Safe, ""},
		{"lambda.keras", FormatKeras, Safe, "code.keras-lambda"},
		{"nested_lambda.keras", FormatKeras, Safe, "code.keras-lambda"},
		{"activation_lambda.keras", FormatKeras, Safe, "code.keras-lambda"},
		{"torch_module.keras", FormatKeras, Safe, "code.keras-torch-module"},
		{"config_lambda.json", FormatKerasConfig, Safe, "code.keras-lambda"},
		{"lambda.h5", FormatKerasH5, Safe, "code.keras-lambda"},
		{"lambda_fixed.h5", FormatKerasH5, Safe, "code.keras-lambda"},
		{"lambda_str.h5", FormatKerasH5, Safe, "code.keras-lambda"},
		{"lambda_latest.h5", FormatKerasH5, Safe, "code.keras-lambda"},
		{"lambda_userblock.bin", FormatKerasH5, Safe, "code.keras-lambda"},
		{"builtins_exec.keras", FormatKeras, Dangerous, "keras.module"},
		{"os_module.keras", FormatKeras, Dangerous, "keras.module"},
		{"get_file.keras", FormatKeras, Dangerous, "keras.function"},
		{"enable_unsafe.keras", FormatKeras, Dangerous, "keras.function"},
		{"custom_object.keras", FormatKeras, Suspicious, "keras.custom-object"},
		{"tfop_write_file.h5", FormatKerasH5, Dangerous, "keras.tf-op"},
		{"lambda_dense_attrs.h5", FormatHDF5, Suspicious, "hdf5.unsupported"},
		{"truncated.h5", FormatHDF5, Suspicious, "hdf5.malformed"},
		{"truncated.keras", FormatZip, Dangerous, "zip.unreadable"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, fixture("keras", tc.file))
			if rep.Format != tc.format || rep.Verdict != tc.verdict || tc.rule != "" && !hasRule(rep, tc.rule) {
				t.Fatalf("got %s %s, want %s %s with %q\n%s", rep.Format, rep.Verdict, tc.format, tc.verdict, tc.rule, dump(rep))
			}
			if tc.rule == "" && len(rep.Findings) > 0 {
				t.Fatalf("a benign model has findings\n%s", dump(rep))
			}
		})
	}
	if rep := scanPath(t, fixture("keras", "truncated.h5")); !rep.Has(ErrTruncated) {
		t.Errorf("a cut HDF5 file is not reported truncated\n%s", dump(rep))
	}
}

// A Keras 2 SavedModel's keras_metadata.pb (encoded by make_savedmodel.py) is judged like
// any Keras config.
func TestKerasMetadata(t *testing.T) {
	rep := scanPath(t, fixture("savedmodel", "keras_metadata.pb"))
	if rep.Format != FormatKerasMetadata || rep.Verdict != Safe || len(rep.Findings) > 0 {
		t.Fatalf("benign metadata\n%s", dump(rep))
	}
	rep = scanPath(t, fixture("savedmodel", "keras_metadata_lambda.pb"))
	if rep.Format != FormatKerasMetadata || !hasRule(rep, "code.keras-lambda") {
		t.Fatalf("Lambda in metadata\n%s", dump(rep))
	}
}

// Every cut of a legacy .h5 model is either read whole or reported, never safe with its
// Lambda missed.
func TestHDF5EveryTruncation(t *testing.T) {
	b, err := os.ReadFile(fixture("keras", "lambda_latest.h5"))
	if err != nil {
		t.Fatal(err)
	}
	for n := 8; n < len(b); n += 7 {
		rep := scanBytes(t, b[:n])
		if rep.Format == FormatHDF5 && rep.Verdict == Safe && n > 1024 {
			t.Fatalf("cut at %d: safe hdf5 without the config\n%s", n, dump(rep))
		}
		if rep.Format == FormatKerasH5 && !hasRule(rep, "code.keras-lambda") {
			t.Fatalf("cut at %d: keras-h5 without its Lambda\n%s", n, dump(rep))
		}
	}
}

// A Keras model inside another archive is still judged by content.
func TestKerasInsideZip(t *testing.T) {
	b, err := os.ReadFile(fixture("keras", "lambda.h5"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := os.ReadFile(fixture("keras", "get_file.keras"))
	if err != nil {
		t.Fatal(err)
	}
	rep := scanBytes(t, makeZip(t, zipEntry{name: "m/model.h5", data: b, method: 8}, zipEntry{name: "m/inner.keras", data: k}))
	if !hasRule(rep, "code.keras-lambda") || !hasRule(rep, "keras.function") || rep.Verdict != Dangerous {
		t.Fatalf("nested Keras models not judged\n%s", dump(rep))
	}
	formats := map[string]Format{}
	for _, m := range rep.Members {
		formats[m.Name] = m.Format
	}
	if formats["m/model.h5"] != FormatKerasH5 || formats["m/inner.keras"] != FormatKeras {
		t.Fatalf("member formats %v", formats)
	}
}

// JSON that is not a Keras config stays what it was.
func TestKerasConfigNeedsClassAndConfig(t *testing.T) {
	for _, s := range []string{`{"architectures": ["BertModel"], "model_type": "bert"}`, `{"class_name": "X"}`, `{"config": {}}`} {
		if rep := scanBytes(t, []byte(s)); rep.Format == FormatKerasConfig {
			t.Errorf("%s read as a Keras config", s)
		}
	}
}

// readCounter counts reads.
type readCounter struct{ n *int }

func (c readCounter) ReadAt([]byte, int64) (int, error) {
	*c.n++
	return 0, io.EOF
}

// Only the config attributes are decoded: an attribute of another name that points into the
// global heap costs no read (a file of many such attributes cannot multiply the heap reads).
func TestHDF5ReadsOnlyConfigAttributes(t *testing.T) {
	attr := func(name string) []byte {
		n := append([]byte(name), 0)
		msg := []byte{3, 0, byte(len(n)), 0, 8, 0, 4, 0, 0}
		msg = append(msg, n...)
		msg = append(msg, 0x19, 0x01, 0, 0, 16, 0, 0, 0) // variable-length string
		msg = append(msg, 2, 0, 0, 0)                    // scalar dataspace
		return append(msg, 64, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0)
	}
	reads := 0
	h := &hdf5File{r: readCounter{&reads}, size: 1 << 20, offSize: 8, lenSize: 8, attrs: map[string]string{}, unreadable: map[string]error{}}
	for range 1000 {
		h.attribute(attr("layer_names"))
	}
	if reads != 0 || len(h.attrs) != 0 || len(h.unreadable) != 0 {
		t.Fatalf("%d reads, attrs %v, unreadable %v", reads, h.attrs, h.unreadable)
	}
	h.attribute(attr("model_config"))
	if reads == 0 {
		t.Fatal("the config attribute was not read")
	}
}

// A Keras config too large to decode is reported, not named plain JSON.
func TestKerasConfigOverTheLimit(t *testing.T) {
	big := make([]byte, kerasMaxConfig+16)
	for i := range big {
		big[i] = ' '
	}
	copy(big, `{"class_name": "Sequential", "config": {"layers": [`)
	copy(big[len(big)-4:], `]}}`)
	rep := scanBytes(t, big)
	if rep.Format != FormatKerasConfig || rep.Verdict == Safe || !hasRule(rep, "limit.keras-config") {
		t.Fatalf("got %s\n%s", rep.Format, dump(rep))
	}
}
