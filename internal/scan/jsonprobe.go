package scan

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/echelongraph/go-modelverify/internal/jsonwalk"
)

// A model has thousands of small JSON files (configs, tokenizers, shard indexes), and three
// probes look at each: is it a safetensors index (a weight_map key), a Keras config
// (class_name and config keys), and is it JSON at all. Each used to decode the file on its
// own; jsonFacts answers all three from one validation and one pass over the top-level keys,
// on the same bytes.

// jsonFacts is what one look at a small JSON file tells the format probes.
type jsonFacts struct {
	bom    bool // the file starts with a UTF-8 byte order mark
	valid  bool // after the mark, exactly one JSON value (json.Valid)
	object bool // valid, and an object
	// Top-level keys that may be weight_map, class_name and config. A key is compared with
	// its case folded and its underscores and dashes dropped, and a key with an escape or a
	// byte outside ASCII may be any of them: Go's decoder matches keys case-insensitively
	// after unescaping, so the probes could only ever be more generous than Python's json,
	// which matches keys exactly; these facts are more generous still, never less.
	weightMap, className, config bool
}

// jsonFactsOf reads the small JSON file r of size bytes once and looks at it; it is nil when
// the file is over smallJSON, or cannot be read whole, and the probes must then read it
// themselves.
func jsonFactsOf(r io.ReaderAt, size int64) *jsonFacts {
	if size > smallJSON {
		return nil
	}
	data := make([]byte, size)
	if n, err := r.ReadAt(data, 0); int64(n) != size && err != nil {
		return nil
	}
	f := probeJSON(data)
	return &f
}

// mayBeIndex is false only when the file is a JSON object without a weight_map key, at its
// top: such a file cannot be a safetensors index, and is not parsed as one. A file that is
// not valid JSON goes to parseIndex, which reports it.
func (f *jsonFacts) mayBeIndex() bool {
	return f == nil || !f.object || f.weightMap
}

// mayBeKerasConfig is false only when the file is a JSON object lacking class_name or config
// at its top. A byte order mark, which Keras's json.load refuses, leaves it to the decoder.
func (f *jsonFacts) mayBeKerasConfig() bool {
	return f == nil || f.bom || !f.object || f.className && f.config
}

// probeJSON validates data and notes its top-level keys.
func probeJSON(data []byte) jsonFacts {
	var f jsonFacts
	data, f.bom = bytes.CutPrefix(data, []byte("\xef\xbb\xbf"))
	if f.valid = json.Valid(data); !f.valid {
		return f
	}
	// data is one valid JSON value from here on, which is what lets jsonwalk step over
	// strings and nested values by their delimiters alone.
	f.object = jsonwalk.Keys(data, f.noteKey)
	return f
}

// noteKey records which of the probed keys the raw (still escaped) key may be.
func (f *jsonFacts) noteKey(raw []byte) {
	var folded [16]byte
	n := 0
	for _, c := range raw {
		switch {
		case c == '\\' || c >= 0x80:
			// An escape or a multi-byte character: it could decode to any of them.
			f.weightMap, f.className, f.config = true, true, true
			return
		case c == '_' || c == '-':
			continue
		case n == len(folded):
			return // longer than every probed key
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		folded[n] = c
		n++
	}
	switch string(folded[:n]) {
	case "weightmap":
		f.weightMap = true
	case "classname":
		f.className = true
	case "config":
		f.config = true
	}
}
