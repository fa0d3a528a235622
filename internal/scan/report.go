package scan

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Format names the kind of file the scanner found, decided by content (magic bytes and
// structure), never by the file name.
type Format string

// The formats the scanner recognises.
const (
	FormatUnknown          Format = "unknown"           // content the scanner does not recognise: raw data, images, ...
	FormatSafetensors      Format = "safetensors"       // 8-byte header length, JSON header, raw tensor bytes
	FormatSafetensorsIndex Format = "safetensors-index" // model.safetensors.index.json: a weight_map of tensors to shards
	FormatPickle           Format = "pickle"            // a raw pickle (any protocol), or several stacked
	FormatPyTorchZip       Format = "pytorch-zip"       // torch.save's zip: <archive>/data.pkl plus data/ records
	FormatPyTorchLegacy    Format = "pytorch-legacy"    // torch.save(_use_new_zipfile_serialization=False): stacked pickles then storages
	FormatPyTorchTar       Format = "pytorch-tar"       // PyTorch <= 0.1.x tar: sys_info, pickle, storages, tensors
	FormatNumPy            Format = "numpy"             // .npy: \x93NUMPY header then array bytes (or a pickle for object arrays)
	FormatNumPyZip         Format = "numpy-zip"         // .npz: a zip whose members are .npy files
	FormatGGUF             Format = "gguf"              // llama.cpp's GGUF
	FormatZip              Format = "zip"               // any other zip archive; every member is scanned by content
	FormatTar              Format = "tar"               // any other tar archive; every member is scanned by content
	Format7z               Format = "7z"                // 7-Zip archive; no model loader reads it, but payloads ship in it
	FormatTorchScript      Format = "torchscript"       // torch.jit.save's zip: data.pkl, constants.pkl and code/, which torch.load runs
	FormatNativeCode       Format = "native-code"       // an ELF, Mach-O (thin or universal) or PE executable or library
	FormatCompressed       Format = "compressed"        // a gzip, bzip2, xz or zstd stream; what it holds is scanned
	FormatONNX             Format = "onnx"              // an ONNX ModelProto; operator domains and external-data paths are checked
	FormatKeras            Format = "keras"             // a Keras 3 .keras zip: config.json, metadata.json, model.weights.h5
	FormatKerasConfig      Format = "keras-config"      // a Keras model config in JSON (config.json of a .keras file, model.to_json())
	FormatKerasH5          Format = "keras-h5"          // a legacy Keras .h5 model: HDF5 whose root group has a model_config attribute
	FormatHDF5             Format = "hdf5"              // any other HDF5 file (Keras weights, datasets); its root attributes are checked
	FormatKerasMetadata    Format = "keras-metadata"    // keras_metadata.pb of a Keras 2 SavedModel: every layer's config is checked
	FormatSavedModel       Format = "tf-savedmodel"     // TensorFlow's saved_model.pb: the ops of every graph and function are checked
	FormatTFLite           Format = "tflite"            // a TFLite FlatBuffer model; its operator codes are checked
	FormatJSON             Format = "json"              // one well-formed JSON value in UTF-8: configs, tokenizer.json, vocab.json
	FormatText             Format = "text"              // UTF-8 text without control characters: READMEs, merges.txt, vocab.txt
	FormatSentencePiece    Format = "sentencepiece"     // a SentencePiece tokenizer model (tokenizer.model, spiece.model)
)

// Formats lists every format the scanner reports.
var Formats = []Format{
	FormatUnknown, FormatSafetensors, FormatSafetensorsIndex, FormatPickle, FormatPyTorchZip,
	FormatPyTorchLegacy, FormatPyTorchTar, FormatNumPy, FormatNumPyZip, FormatGGUF, FormatZip,
	FormatTar, Format7z, FormatTorchScript, FormatNativeCode, FormatCompressed, FormatONNX,
	FormatKeras, FormatKerasConfig, FormatKerasH5, FormatHDF5, FormatKerasMetadata, FormatSavedModel, FormatTFLite,
	FormatJSON, FormatText, FormatSentencePiece,
}

// PickleFormats are the formats that are pickles, or wrap one that a loader unpickles.
var PickleFormats = []Format{FormatPickle, FormatPyTorchZip, FormatPyTorchLegacy, FormatPyTorchTar, FormatTorchScript}

// CodeFormats are the formats that are code a loader runs, whatever the file is called: a
// TorchScript archive (torch.load hands it to torch.jit.load, which runs its code/) and
// native executables and libraries.
var CodeFormats = []Format{FormatTorchScript, FormatNativeCode}

// Verdict is the scanner's judgement. Verdicts are ordered: Safe < Suspicious < Dangerous.
type Verdict int

const (
	// Safe: nothing found that loading could abuse.
	Safe Verdict = iota
	// Suspicious: not proven dangerous, but not proven safe either: an import outside the
	// allowlist, a malformed or truncated file, content the scanner could not inspect.
	Suspicious
	// Dangerous: loading the file can run code or touch the system (a denylisted or
	// unresolvable import, a loader differential known to hide payloads).
	Dangerous
)

func (v Verdict) String() string {
	switch v {
	case Safe:
		return "safe"
	case Suspicious:
		return "suspicious"
	case Dangerous:
		return "dangerous"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// MarshalText makes verdicts readable in JSON reports.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Finding is one thing the scanner noticed. It is also an error: it unwraps to the sentinel
// (ErrDangerousGlobal, ErrMalformed, ...) that classifies it, so callers match it with errors.Is.
type Finding struct {
	Verdict Verdict
	Member  string // archive member the finding is in; "" for the file itself
	Offset  int64  // byte offset within Member (or the file), -1 when not tied to a position
	Opcode  string // pickle opcode, for pickle findings
	Global  string // "module.name" of a pickle import, for pickle findings
	Rule    string // the rule that fired, e.g. "global.denylisted", "safetensors.InvalidOffset"
	Message string
	Err     error // the sentinel class of this finding; never nil
}

// Error describes the finding with its place.
func (f Finding) Error() string {
	var b strings.Builder
	b.WriteString(f.Verdict.String())
	b.WriteString(": ")
	if f.Member != "" {
		b.WriteString(f.Member)
		b.WriteString(": ")
	}
	if f.Offset >= 0 {
		fmt.Fprintf(&b, "offset %d: ", f.Offset)
	}
	if f.Opcode != "" {
		b.WriteString(f.Opcode)
		b.WriteString(": ")
	}
	b.WriteString(f.Message)
	return b.String()
}

// Unwrap returns the sentinel that classifies the finding.
func (f Finding) Unwrap() error { return f.Err }

// Report is the scanner's answer for one file.
type Report struct {
	Format   Format
	Verdict  Verdict   // the worst verdict among Findings; Safe when there are none
	Findings []Finding // everything noticed, in the order found
	// Globals lists every distinct pickle import ("module.name") seen anywhere in the
	// file, sorted, including allowlisted ones: what loading the file would import.
	Globals []string
	// Members lists the archive members that were scanned, with the format found in each.
	Members []Member
	// Size is the size of the file in bytes; BytesRead is how many of them the scan read.
	Size      int64
	BytesRead int64

	globalsCapped bool
	onnxExternal  []onnxExternal // an ONNX model's external data, checked against its directory by ScanFile
}

// Member is one scanned archive member.
type Member struct {
	Name   string
	Format Format
	Size   int64 // uncompressed size
}

// Err returns nil when the verdict is Safe, and otherwise an *UnsafeError that unwraps to
// every non-safe finding (so errors.Is(r.Err(), ErrDangerousGlobal) works).
func (r *Report) Err() error {
	if r.Verdict == Safe {
		return nil
	}
	return &UnsafeError{Report: r}
}

// Has reports whether some finding at or above the given verdict matches target
// (compared with errors.Is).
func (r *Report) Has(target error) bool {
	for _, f := range r.Findings {
		if errors.Is(f, target) {
			return true
		}
	}
	return false
}

func (r *Report) add(f Finding) {
	r.Findings = append(r.Findings, f)
	if f.Verdict > r.Verdict {
		r.Verdict = f.Verdict
	}
}

// maxGlobals bounds Report.Globals, so a pickle of millions of distinct imports cannot
// exhaust memory; the imports past it are still judged.
const maxGlobals = 10000

func (r *Report) addGlobal(g string) {
	i := sort.SearchStrings(r.Globals, g)
	if i < len(r.Globals) && r.Globals[i] == g {
		return
	}
	if len(r.Globals) >= maxGlobals {
		if !r.globalsCapped {
			r.globalsCapped = true
			r.add(Finding{Verdict: Suspicious, Offset: -1, Rule: "limit.globals",
				Message: fmt.Sprintf("more than %d distinct imports; Globals lists the first %d", maxGlobals, maxGlobals), Err: ErrLimit})
		}
		return
	}
	r.Globals = append(r.Globals, "")
	copy(r.Globals[i+1:], r.Globals[i:])
	r.Globals[i] = g
}

// UnsafeError is returned by Report.Err for a file that is not Safe.
type UnsafeError struct {
	Report *Report
}

func (e *UnsafeError) Error() string {
	var worst []string
	for _, f := range e.Report.Findings {
		if f.Verdict == e.Report.Verdict {
			worst = append(worst, f.Error())
		}
	}
	const maxShown = 3
	more := ""
	if len(worst) > maxShown {
		more = fmt.Sprintf(" (and %d more)", len(worst)-maxShown)
		worst = worst[:maxShown]
	}
	return fmt.Sprintf("scan: %s file is %s: %s%s", e.Report.Format, e.Report.Verdict, strings.Join(worst, "; "), more)
}

// Unwrap exposes every non-safe finding to errors.Is and errors.As.
func (e *UnsafeError) Unwrap() []error {
	var errs []error
	for _, f := range e.Report.Findings {
		if f.Verdict > Safe {
			errs = append(errs, f)
		}
	}
	return errs
}
