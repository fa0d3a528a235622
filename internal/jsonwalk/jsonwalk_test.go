package jsonwalk

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

// decodedKeys are the top-level keys of a valid JSON object, as encoding/json reads them.
func decodedKeys(t *testing.T, data []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	keys := []string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// checkKeys: on valid JSON, Keys sees exactly the keys encoding/json sees, in order; on
// anything else it returns without reading out of bounds.
func checkKeys(t *testing.T, data []byte) {
	t.Helper()
	var raw [][]byte
	object := Keys(data, func(k []byte) { raw = append(raw, k) })
	if !json.Valid(data) {
		return
	}
	want := decodedKeys(t, data)
	if object != (want != nil) {
		t.Fatalf("%q: object %v, decoder keys %q", data, object, want)
	}
	got := make([]string, len(raw))
	for i, k := range raw {
		if err := json.Unmarshal(append(append([]byte{'"'}, k...), '"'), &got[i]); err != nil {
			t.Fatalf("%q: key %q is no JSON string: %v", data, k, err)
		}
	}
	if want != nil && !slices.Equal(got, want) {
		t.Fatalf("%q: keys %q, want %q", data, got, want)
	}
}

func TestKeysAreTheDecodersKeys(t *testing.T) {
	for _, s := range []string{
		`{}`, ` { "a" : 1 , "b":[1,{"c":2}], "d" : {"e": "}]\"{"}, "f":null,"g":true,"h":-1.5e3 } `,
		`{"k\u0065y": "v", "\"q\"": "\\"}`, `[{"a": 1}]`, `"s"`, `12`,
	} {
		checkKeys(t, []byte(s))
	}
	for _, s := range []string{`{`, `{"a`, `{"a":`, `{"a":[`, `{"a":"\`, `{,,,`, "\x00"} {
		Keys([]byte(s), func([]byte) {}) // must not panic
	}
}

func FuzzKeys(f *testing.F) {
	f.Add([]byte(`{"weight_map": {"a": "b"}, "x": [1, "]"], "y": "\"}"}`))
	f.Add([]byte(`{"_type": "t", "predicate": {"resources": []}, "PREDICATE": null}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkKeys(t, data) })
}
