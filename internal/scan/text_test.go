package scan

import (
	"os"
	"testing"
)

// Configs and tokenizers have names of their own, so "unknown" means unrecognised
// (make_text.py writes the fixtures; tokenizer.model comes from the real SentencePiece).
func TestTextFormatsAreNamedByContent(t *testing.T) {
	for _, tc := range []struct {
		file   string
		format Format
	}{
		{"config.json", FormatJSON},
		{"tokenizer_config.json", FormatJSON},
		{"bom.json", FormatJSON},
		{"tokenizer.model", FormatSentencePiece},
		{"README.md", FormatText},
		{"merges.txt", FormatText},
		{"two_values.json", FormatText}, // not one JSON value: json.load refuses it
		{"latin1.txt", FormatUnknown},   // not UTF-8
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, fixture("text", tc.file))
			if rep.Format != tc.format || rep.Verdict != Safe || len(rep.Findings) > 0 {
				t.Fatalf("got %s %s, want %s safe\n%s", rep.Format, rep.Verdict, tc.format, dump(rep))
			}
		})
	}
	for _, tc := range []struct {
		content string
		format  Format
	}{
		{`[1, 2, {"a": [true, null]}]`, FormatJSON},
		{`"just a string"`, FormatText},
		{`{"a": 1`, FormatText},
		{"{\"a\": \"\x01\"}", FormatUnknown},
		{"\x00\x01\x02\x03", FormatUnknown},
		{"", FormatText},
	} {
		if rep := scanBytes(t, []byte(tc.content)); rep.Format != tc.format {
			t.Errorf("%q: got %s, want %s", tc.content, rep.Format, tc.format)
		}
	}
	// A cut SentencePiece model is not one.
	b, err := os.ReadFile(fixture("text", "tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	if rep := scanBytes(t, b[:len(b)-5]); rep.Format == FormatSentencePiece {
		t.Errorf("a cut tokenizer.model is still sentencepiece")
	}
}

// Text inside an archive is named too, where the member can be read at random.
func TestTextFormatsInsideZip(t *testing.T) {
	rep := scanBytes(t, makeZip(t, zipEntry{name: "config.json", data: []byte(`{"a": 1}`)}, zipEntry{name: "notes.txt", data: []byte("hello\n")}))
	got := map[string]Format{}
	for _, m := range rep.Members {
		got[m.Name] = m.Format
	}
	if got["config.json"] != FormatJSON || got["notes.txt"] != FormatText {
		t.Fatalf("member formats %v", got)
	}
}

// Binary content is given up on at its first non-text byte: naming a large raw-data file
// (an ONNX model's external data) does not read it through.
func TestNameContentStopsAtBinary(t *testing.T) {
	data := make([]byte, 64<<20)
	copy(data, "text at first\n")
	data[20] = 0xff
	rep := scanBytes(t, data)
	if rep.Format != FormatUnknown || rep.BytesRead > 4<<20 {
		t.Fatalf("%s after reading %d of %d bytes", rep.Format, rep.BytesRead, len(data))
	}
}
