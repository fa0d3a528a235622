package scan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// refProbes are the per-probe decodes that jsonFacts replaced: a look for a weight_map key
// (after a byte order mark) and for class_name and config (without one), each true unless the
// file decodes as an object lacking the key.
func refProbes(data []byte) (index, keras bool) {
	var ip struct {
		WeightMap json.RawMessage `json:"weight_map"`
	}
	index = json.Unmarshal(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), &ip) != nil || ip.WeightMap != nil
	var kp struct {
		ClassName json.RawMessage `json:"class_name"`
		Config    json.RawMessage `json:"config"`
	}
	keras = json.Unmarshal(data, &kp) != nil || kp.ClassName != nil && kp.Config != nil
	return index, keras
}

// exactKeys are the top-level keys Python's json.load sees, or nil when it sees no object.
func exactKeys(data []byte) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), &m) != nil {
		return nil
	}
	return m
}

// checkJSONFacts: one look says what the separate decodes said, or is more generous; it never
// misses a key Python would see, and it agrees with json.Valid.
func checkJSONFacts(t *testing.T, data []byte) {
	t.Helper()
	f := jsonFactsOf(bytesReaderAt(data), int64(len(data)))
	index, keras := refProbes(data)
	if index && !f.mayBeIndex() {
		t.Fatalf("%q: the decode may see a weight_map, the probe says no", data)
	}
	if keras && !f.mayBeKerasConfig() {
		t.Fatalf("%q: the decode may see class_name and config, the probe says no", data)
	}
	if m := exactKeys(data); m != nil {
		_, w := m["weight_map"]
		_, c := m["class_name"]
		_, k := m["config"]
		if w && !f.weightMap || c && !f.className || k && !f.config {
			t.Fatalf("%q: keys %v, facts %+v", data, m, *f)
		}
	}
	if want := json.Valid(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))); f.valid != want {
		t.Fatalf("%q: valid %v, json.Valid %v", data, f.valid, want)
	}
}

func TestJSONFactsSeeEveryKeyTheDecoderSees(t *testing.T) {
	for _, tc := range []struct {
		json         string
		index, keras bool
	}{
		{`{"index": 1, "pad": "x"}`, false, false},
		{`{"metadata": {"weight_map": 1}, "x": [{"weight_map": 2}]}`, false, false}, // nested keys do not count
		{`{"weight_map": {"a": "b.safetensors"}}`, true, false},
		{`{"weight\u005fmap": {}}`, true, true}, // an escape may decode to any key
		{`{"WEIGHT_MAP": {}}`, true, false},     // Go matches keys case-insensitively
		{`{"weight-map": 1, "ClassName": 2, "CONFIG": 3}`, true, true},
		{`{"class_name": "Sequential", "config": {}}`, false, true},
		{`{"class_name": "Sequential"}`, false, false},
		{"\xef\xbb\xbf" + `{"class_name": "M", "config": {}}`, false, true}, // a mark goes to the decoder
		{`{"s": "a \" } ] { [ ,", "config": "}", "class_name": 1}`, false, true},
		{`{"a": 1`, true, true},             // not JSON: the parsers report it
		{`[{"weight_map": 1}]`, true, true}, // not an object
		{` { } `, false, false},
		{`{"kelvin_\u212a": 1, "n": -1.5e3, "t": true, "z": null}`, true, true},
		{`{"` + strings.Repeat("x", 40) + `": 1, "config": 2}`, false, false},
	} {
		f := jsonFactsOf(bytesReaderAt(tc.json), int64(len(tc.json)))
		if f.mayBeIndex() != tc.index || f.mayBeKerasConfig() != tc.keras {
			t.Errorf("%s: index %v keras %v, want %v %v (%+v)", tc.json, f.mayBeIndex(), f.mayBeKerasConfig(), tc.index, tc.keras, *f)
		}
		checkJSONFacts(t, []byte(tc.json))
	}
	if f := jsonFactsOf(bytesReaderAt("{}"), smallJSON+1); f != nil || !f.mayBeIndex() || !f.mayBeKerasConfig() {
		t.Errorf("a file over smallJSON: facts %v, want none, and every probe to read it", f)
	}
}

// FuzzJSONFacts: the one look at a small JSON file agrees with json.Valid and never misses a
// key that the decodes it replaced would have seen.
func FuzzJSONFacts(f *testing.F) {
	seed(f, fixtureDir+"/keras/*.json", fixtureDir+"/index_ok/*", fixtureDir+"/text/*.json")
	f.Add([]byte(`{"weight\u005fmap": {"a": "b"}, "c": [1, {"d": "\"}"}]}`))
	f.Add([]byte("\xef\xbb\xbf{\"class_name\": 1, \"config\": {}}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkJSONFacts(t, b)
	})
}

// FuzzPickleProbeAtANonOpcode: content whose first byte is no pickle opcode is never a pickle
// to the probe, which is why scanAt does not probe it at all.
func FuzzPickleProbeAtANonOpcode(f *testing.F) {
	seed(f, fixtureDir+"/text/*")
	f.Add([]byte(`{"a": "cos\nsystem\n(S'id'\ntR."}`))
	f.Add([]byte("[\x80\x02cos\nsystem\nq\x00."))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || isOpcode(b[0]) {
			return
		}
		if _, ok := probeAsPickle(bytes.NewReader(b), newConfig(nil), "", 0); ok {
			t.Fatalf("%q starts with 0x%02x, no opcode, yet probes as a pickle", b, b[0])
		}
	})
}
