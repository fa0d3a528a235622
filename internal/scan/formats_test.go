package scan

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTorchSaveCheckpointsAreSafe(t *testing.T) {
	for _, tc := range []struct {
		file   string
		format Format
	}{
		{"torch_state_dict_zip.pt", FormatPyTorchZip},
		{"torch_state_dict_zip_proto4.pt", FormatPyTorchZip},
		{"torch_module_state_dict_zip.pt", FormatPyTorchZip},
		{"torch_state_dict_legacy.pt", FormatPyTorchLegacy},
		{"torch_module_state_dict_legacy.pt", FormatPyTorchLegacy},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, fixture(tc.file))
			if rep.Verdict != Safe || rep.Format != tc.format {
				t.Fatalf("got %s %s, want %s safe\n%s", rep.Format, rep.Verdict, tc.format, dump(rep))
			}
			for _, g := range []string{"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage"} {
				if !hasGlobal(rep, g) {
					t.Errorf("globals %v lack %s", rep.Globals, g)
				}
			}
		})
	}
	// The state dict with every dtype imports every storage class it uses, and nothing else.
	rep := scanPath(t, fixture("torch_state_dict_legacy.pt"))
	for _, g := range rep.Globals {
		if !allowedGlobals[g] {
			t.Errorf("torch.save wrote %s, which is not on the allowlist", g)
		}
	}
}

// A legacy checkpoint whose storage data is cut short is caught by walking the storage headers.
func TestLegacyCheckpointWithTruncatedStorageIsNotSafe(t *testing.T) {
	b, err := os.ReadFile(fixture("torch_state_dict_legacy.pt"))
	if err != nil {
		t.Fatal(err)
	}
	rep := scanBytes(t, b[:len(b)-3])
	if rep.Verdict == Safe || !rep.Has(ErrTruncated) || !hasRule(rep, "pytorch.storage-truncated") {
		t.Fatalf("want a truncated storage\n%s", dump(rep))
	}
	rep = scanBytes(t, append(append([]byte{}, b...), "trailing"...))
	if !hasRule(rep, "pytorch.trailing") {
		t.Fatalf("want trailing bytes reported\n%s", dump(rep))
	}
}

func TestSafetensorsRules(t *testing.T) {
	for _, tc := range []struct {
		file      string
		rule      string // "" for a valid file
		truncated bool
	}{
		{"ok.safetensors", "", false},
		{"ok_empty.safetensors", "", false},
		{"ok_leading_whitespace.safetensors", "", false},
		{"bad_HeaderTooSmall.safetensors", "safetensors.HeaderTooSmall", true},
		{"bad_HeaderTooLarge.safetensors", "safetensors.HeaderTooLarge", false},
		{"bad_InvalidHeaderLength.safetensors", "safetensors.InvalidHeaderLength", true},
		{"bad_InvalidHeader.safetensors", "safetensors.InvalidHeader", false},
		{"bad_InvalidHeaderDeserialization.safetensors", "safetensors.InvalidHeaderDeserialization", false},
		{"bad_unknown_dtype.safetensors", "safetensors.InvalidHeaderDeserialization", false},
		{"bad_metadata_not_string.safetensors", "safetensors.InvalidHeaderDeserialization", false},
		{"bad_negative_shape.safetensors", "safetensors.InvalidHeaderDeserialization", false},
		{"bad_duplicate_metadata.safetensors", "safetensors.InvalidHeaderDeserialization", false},
		{"bad_InvalidOffset_gap.safetensors", "safetensors.InvalidOffset", false},
		{"bad_InvalidOffset_overlap.safetensors", "safetensors.InvalidOffset", false},
		{"bad_InvalidOffset_start.safetensors", "safetensors.InvalidOffset", false},
		{"bad_TensorInvalidInfo.safetensors", "safetensors.TensorInvalidInfo", false},
		{"bad_ValidationOverflow.safetensors", "safetensors.ValidationOverflow", false},
		{"bad_MisalignedSlice.safetensors", "safetensors.MisalignedSlice", false},
		{"bad_MetadataIncompleteBuffer_trailing.safetensors", "safetensors.MetadataIncompleteBuffer", false},
		{"bad_MetadataIncompleteBuffer_truncated.safetensors", "safetensors.MetadataIncompleteBuffer", true},
		{"bad_DuplicateTensor.safetensors", "safetensors.DuplicateTensor", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, fixture("safetensors", tc.file))
			if rep.Format != FormatSafetensors && !(tc.rule == "safetensors.HeaderTooSmall" && rep.Format == FormatUnknown) {
				t.Errorf("format %s, want safetensors", rep.Format)
			}
			if tc.rule == "" {
				if rep.Verdict != Safe {
					t.Fatalf("valid file is %s\n%s", rep.Verdict, dump(rep))
				}
				if rep.BytesRead > 4096 {
					t.Errorf("read %d bytes of a %d-byte file; only the header should be read", rep.BytesRead, rep.Size)
				}
				return
			}
			if rep.Verdict != Suspicious || !hasRule(rep, tc.rule) {
				t.Fatalf("want a suspicious %s finding\n%s", tc.rule, dump(rep))
			}
			if !rep.Has(ErrMalformed) || rep.Has(ErrTruncated) != tc.truncated {
				t.Errorf("want ErrMalformed (truncated=%v)\n%s", tc.truncated, dump(rep))
			}
		})
	}
}

func TestSafetensorsDuplicateNamesAreCaughtEvenWhenIdentical(t *testing.T) {
	// The reference reader accepts this file: both entries point at the same four bytes.
	rep := scanPath(t, fixture("safetensors", "bad_DuplicateTensor.safetensors"))
	for _, f := range rep.Findings {
		if f.Rule == "safetensors.DuplicateTensor" && strings.Contains(f.Message, `"a"`) && f.Offset > 8 {
			return
		}
	}
	t.Fatalf("no DuplicateTensor finding naming tensor a at its offset\n%s", dump(rep))
}

func TestSafetensorsIndexIsCheckedAgainstItsShards(t *testing.T) {
	ctx := context.Background()
	rep, err := CheckSafetensorsIndex(ctx, fixture("index_ok"), "model.safetensors.index.json")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Format != FormatSafetensorsIndex || rep.Verdict != Safe || len(rep.Members) != 2 {
		t.Fatalf("good index: got %s %s with %d shards\n%s", rep.Format, rep.Verdict, len(rep.Members), dump(rep))
	}
	rep, err = CheckSafetensorsIndex(ctx, fixture("index_bad"), "model.safetensors.index.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range []string{"index.path", "index.missing-shard", "index.tensor-unlisted"} {
		if !hasRule(rep, rule) {
			t.Errorf("bad index: no %s finding\n%s", rule, dump(rep))
		}
	}
	if rep.Verdict != Dangerous {
		t.Errorf("a shard name escaping the directory must be dangerous, got %s", rep.Verdict)
	}
	// A config.json is JSON but not an index.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures": ["BertModel"], "hidden_size": 8}`), 0o644)
	rep, err = CheckSafetensorsIndex(ctx, dir, "config.json")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict == Safe || !hasRule(rep, "index.not-index") {
		t.Errorf("config.json accepted as an index\n%s", dump(rep))
	}
	if _, err := CheckSafetensorsIndex(ctx, dir, "missing.json"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing index: err = %v, want os.ErrNotExist", err)
	}
}

func TestGGUFRules(t *testing.T) {
	for _, tc := range []struct{ file, rule string }{
		{"ok.gguf", ""},
		{"bad_version.gguf", "gguf.version"},
		{"bad_duplicate_key.gguf", "gguf.duplicate-key"},
		{"bad_alignment.gguf", "gguf.alignment"},
		{"bad_nested_array.gguf", "gguf.value"},
		{"bad_tensor_offset.gguf", "gguf.tensor-offset"},
		{"bad_tensor_type.gguf", "gguf.tensor-type"},
		{"bad_duplicate_tensor.gguf", "gguf.duplicate-tensor"},
		{"bad_truncated_data.gguf", "gguf.truncated"},
		{"bad_string_length.gguf", "gguf.value"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, fixture("gguf", tc.file))
			if rep.Format != FormatGGUF {
				t.Errorf("format %s", rep.Format)
			}
			if tc.rule == "" {
				if rep.Verdict != Safe {
					t.Fatalf("valid GGUF is %s\n%s", rep.Verdict, dump(rep))
				}
				return
			}
			if rep.Verdict == Safe || !hasRule(rep, tc.rule) {
				t.Fatalf("want %s\n%s", tc.rule, dump(rep))
			}
		})
	}
}

func TestNumPyRules(t *testing.T) {
	for _, tc := range []struct{ file, rule string }{
		{"ok_f4.npy", ""},
		{"ok_structured.npy", ""},
		{"ok_unicode.npy", ""},
		{"bad_truncated.npy", "numpy.truncated"},
		{"bad_trailing.npy", "numpy.trailing"},
		{"bad_header.npy", "numpy.header-length"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, fixture("numpy", tc.file))
			if rep.Format != FormatNumPy {
				t.Errorf("format %s", rep.Format)
			}
			if tc.rule == "" && rep.Verdict != Safe || tc.rule != "" && (rep.Verdict == Safe || !hasRule(rep, tc.rule)) {
				t.Fatalf("want rule %q\n%s", tc.rule, dump(rep))
			}
		})
	}
}

// The quick look for a weight_map key in small JSON files must see every spelling Python's json
// reads as that key: an escaped key, a key after a BOM, a duplicate key later in the file.
func TestIndexKeySpelledWithEscapesIsStillAnIndex(t *testing.T) {
	for name, doc := range map[string]string{
		"escaped":   `{"metadata":{},"weight\u005fmap":{"w":"../../etc/passwd"}}`,
		"bom":       "\xef\xbb\xbf" + `{"weight_map":{"w":"../x.safetensors"}}`,
		"later key": `{"a":1,"b":{"weight_map":1},"weight_map":{"w":"/abs.safetensors"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			rep := scanBytes(t, []byte(doc), WithName("model.safetensors.index.json"))
			if name == "bom" {
				// parseIndex reads no BOM: such a file is not taken for an index, as before.
				if rep.Format == FormatSafetensorsIndex && rep.Verdict == Safe {
					t.Fatalf("a BOM index with an escaping shard is safe: %s", dump(rep))
				}
				return
			}
			if rep.Format != FormatSafetensorsIndex || rep.Verdict != Dangerous {
				t.Fatalf("got %s", dump(rep))
			}
		})
	}
}
