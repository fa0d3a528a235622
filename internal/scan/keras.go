package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// Keras models describe their layers in a JSON config: config.json inside a Keras 3 .keras
// zip, the root group's model_config attribute in a legacy .h5 file. Loading rebuilds every
// object the config names, so the config is where code hides:
//   - Lambda layers carry marshalled Python bytecode ("__lambda__" in Keras 3, function_type
//     "lambda" in Keras 2), anywhere in the config (nested models, activations,
//     initializers), and TorchModuleWrapper layers a pickled PyTorch module: code, judged by
//     the policy's code rule;
//   - "module" entries outside keras make Keras import that module and take the named
//     class or function from it: judged like a pickle import (the safe_mode bypasses,
//     CVE-2025-1550 and its successors, went through module and function references);
//   - functions of keras itself that touch files or turn safe mode off;
//   - registered custom objects, which only load when the caller supplies their code;
//   - TFOpLambda layers (Keras 2) calling TensorFlow's file and Python ops.

// kerasDeniedFunctions are keras functions that a config must not call: they fetch or write
// files or switch off safe mode (CVE-2025-1550, CVE-2025-8747, CVE-2025-9906).
var kerasDeniedFunctions = setOf("get_file", "enable_unsafe_deserialization", "load_model",
	"load_weights", "save_model", "save_weights", "load_img", "save_img", "exec", "eval")

// kerasDeniedTFOps are TensorFlow functions a TFOpLambda layer may name that read or write
// files or run Python.
var kerasDeniedTFOps = []string{"io.", "py_function", "numpy_function", "compat.v1.py_func",
	"raw_ops.", "compat.v1.io.", "compat.v1.gfile", "saved_model.", "keras.", "__operators__.call"}

// kerasMaxConfig bounds the JSON a config may be.
const kerasMaxConfig = 64 << 20

// looksLikeKerasConfig: a JSON object that names a class and its config at the top.
func looksLikeKerasConfig(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	_, cls := m["class_name"].(string)
	_, cfg := m["config"]
	return cls && cfg
}

// decodeJSON decodes r (at most limit bytes) keeping numbers as text.
func decodeJSON(r io.Reader, limit int64) (any, error) {
	dec := json.NewDecoder(io.LimitReader(r, limit))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	// Python's json.load refuses anything after the value, so Keras would not load it.
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// scanKerasJSON checks a JSON file for a Keras model config and applies the rules to it. It
// returns FormatKerasConfig, or FormatUnknown when the JSON is not a Keras config. js is what
// a look at the same bytes found, or nil.
func scanKerasJSON(r io.ReaderAt, size int64, rep *Report, member string, js *jsonFacts) Format {
	if size > kerasMaxConfig {
		// Too large to decode here; if it starts like a Keras config it is not waved
		// through as plain JSON.
		head := make([]byte, 4096)
		n, _ := r.ReadAt(head, 0)
		if bytes.Contains(head[:n], []byte(`"class_name"`)) {
			rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: "limit.keras-config", Err: ErrLimit,
				Message: fmt.Sprintf("a Keras-like config of %d bytes, over the %d-byte limit, is not inspected", size, kerasMaxConfig)})
			return FormatKerasConfig
		}
		return FormatUnknown
	}
	if !js.mayBeKerasConfig() {
		return FormatUnknown
	}
	v, err := decodeJSON(io.NewSectionReader(r, 0, size), size)
	if err != nil || !looksLikeKerasConfig(v) {
		return FormatUnknown
	}
	judgeKerasConfig(v, rep, member, "the config")
	return FormatKerasConfig
}

// judgeKerasConfig walks a decoded Keras config and reports what loading it would run.
// where names the config's place in findings (config.json, the model_config attribute).
func judgeKerasConfig(v any, rep *Report, member, where string) {
	k := kerasJudge{rep: rep, member: member, where: where, seen: map[string]bool{}}
	k.walk(v, "")
}

type kerasJudge struct {
	rep    *Report
	member string
	where  string
	seen   map[string]bool // rule+detail already reported
	count  int
}

// maxKerasFindings bounds the findings one config can add.
const maxKerasFindings = 200

func (k *kerasJudge) add(v Verdict, rule, path string, class error, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if k.seen[rule+msg] || k.count >= maxKerasFindings {
		return
	}
	k.seen[rule+msg] = true
	k.count++
	if path == "" {
		path = "/"
	}
	k.rep.add(Finding{Verdict: v, Member: k.member, Offset: -1, Rule: rule,
		Message: fmt.Sprintf("%s at %s: %s", k.where, path, msg), Err: class})
}

func (k *kerasJudge) walk(v any, path string) {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			k.walk(e, fmt.Sprintf("%s/%d", path, i))
		}
	case map[string]any:
		k.object(x, path)
		for _, key := range slices.Sorted(maps.Keys(x)) {
			k.walk(x[key], path+"/"+key)
		}
	}
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// object applies the rules to one JSON object of the config.
func (k *kerasJudge) object(m map[string]any, path string) {
	class := str(m, "class_name")
	cfg, _ := m["config"].(map[string]any)
	switch {
	case class == "TorchModuleWrapper":
		// Keras 3 rebuilds the wrapped module with torch.load of bytes in the config: a pickle.
		k.add(Safe, "code.keras-torch-module", path, ErrNote, "a TorchModuleWrapper layer: Keras unpickles the wrapped PyTorch module with torch.load when the model loads")
	case class == "Lambda" || class == "__lambda__":
		k.add(Safe, "code.keras-lambda", path, ErrNote, "a Lambda layer: Keras runs its marshalled Python bytecode when the model loads (safe_mode only stops Keras 3 .keras files)")
	case cfg != nil && str(cfg, "function_type") == "lambda":
		k.add(Safe, "code.keras-lambda", path, ErrNote, "a Keras 2 Lambda layer (function_type lambda): its function is marshalled Python bytecode")
	case class == "TFOpLambda" && cfg != nil:
		fn := str(cfg, "function")
		for _, p := range kerasDeniedTFOps {
			if strings.HasPrefix(fn, p) {
				k.add(Dangerous, "keras.tf-op", path, ErrDangerousGlobal, "TFOpLambda calls tf.%s, which reads or writes files or runs Python", fn)
			}
		}
	}
	// Keras 2 functions by reference: {"function": "name", "function_type": "function", "module": "m"}.
	if cfg != nil && str(cfg, "function_type") == "function" {
		if fn, mod := str(cfg, "function"), str(cfg, "module"); fn != "" && mod != "" {
			k.module(mod, fn, path)
		}
	}
	module, hasModule := m["module"].(string)
	if hasModule && class != "" {
		name := class
		if class == "function" {
			// A function reference: {"module": m, "class_name": "function", "config": "name"}.
			name, _ = m["config"].(string)
		}
		k.module(module, name, path)
	}
	if reg, ok := m["registered_name"].(string); ok && reg != "" && reg != class && reg != "function" && !isKerasModule(module) {
		k.add(Suspicious, "keras.custom-object", path, ErrUnlistedGlobal, "custom object %q: Keras loads it only from code the caller supplies, which the scanner cannot see", reg)
	}
}

func isKerasModule(m string) bool {
	return m == "keras" || strings.HasPrefix(m, "keras.") || m == "tf_keras" || strings.HasPrefix(m, "tf_keras.")
}

// module judges a reference to name in Python module mod.
func (k *kerasJudge) module(mod, name, path string) {
	if isKerasModule(mod) {
		if kerasDeniedFunctions[name] || strings.Contains(mod, "file_utils") || strings.HasSuffix(mod, ".config") && name != "" && strings.HasPrefix(name, "enable") {
			k.add(Dangerous, "keras.function", path, ErrDangerousGlobal, "%s.%s fetches or writes files or turns safe mode off", mod, name)
		}
		return
	}
	j := judgeGlobal(mod, name, nil)
	if j.verdict == Safe {
		return
	}
	k.add(j.verdict, "keras.module", path, j.err, "Keras imports %s.%s (outside keras: %s)", mod, name, j.reason)
}

// kerasArchive reports whether the zip just scanned is a Keras 3 .keras file: its root
// config.json is a Keras model config (a .keras file's metadata.json and weights are
// optional to Keras's loader, so they do not decide).
func kerasArchive(rep *Report, member string) bool {
	for _, m := range rep.Members {
		if m.Name == memberPath(member, "config.json") && m.Format == FormatKerasConfig {
			return true
		}
	}
	return false
}

// A TensorFlow SavedModel written by Keras 2 keeps each layer's config, Lambda bytecode
// included, in keras_metadata.pb (keras/protobuf/saved_metadata.proto): SavedMetadata
// {nodes (1): SavedObject {node_id (2), node_path (3), identifier (4), metadata (5, JSON),
// version (6)}}. tf.keras.models.load_model rebuilds the layers from that JSON.

// scanKerasMetadata recognises keras_metadata.pb and judges every node's config. It returns
// FormatKerasMetadata, or FormatUnknown when the bytes are not one.
func scanKerasMetadata(r io.ReaderAt, size int64, rep *Report, member string) Format {
	head := make([]byte, min(size, 1))
	if n, _ := r.ReadAt(head, 0); n < 1 || head[0] != 0x0a {
		return FormatUnknown
	}
	src := newPBSource(r, size)
	var metadata []pbField
	keras := false
	err := src.walk(0, size, func(f pbField) error {
		if f.num != 1 || f.typ != protowire.BytesType {
			return errPBTruncated
		}
		return src.walk(f.off, f.off+f.n, func(g pbField) error {
			switch {
			case g.num == 2 && g.typ == protowire.VarintType, g.num == 3 && g.typ == protowire.BytesType,
				g.num == 6 && g.typ == protowire.BytesType:
			case g.num == 4 && g.typ == protowire.BytesType:
				id, err := src.str(g)
				keras = keras || strings.HasPrefix(id, "_tf_keras")
				return err
			case g.num == 5 && g.typ == protowire.BytesType:
				metadata = append(metadata, g)
			default:
				return errPBTruncated
			}
			return nil
		})
	})
	if err != nil || !keras {
		return FormatUnknown
	}
	for i, m := range metadata {
		if m.n > kerasMaxConfig {
			continue
		}
		v, err := decodeJSON(io.NewSectionReader(r, m.off, m.n), m.n)
		if err != nil {
			rep.add(Finding{Verdict: Suspicious, Member: member, Offset: m.off, Rule: "keras.metadata",
				Message: fmt.Sprintf("node %d's metadata is not JSON: %v", i, err), Err: ErrMalformed})
			continue
		}
		judgeKerasConfig(v, rep, member, fmt.Sprintf("node %d's metadata", i))
	}
	return FormatKerasMetadata
}
