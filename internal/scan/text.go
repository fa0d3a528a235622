package scan

import (
	"bytes"
	"encoding/json"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// Content that is no weight format, archive or code still gets a name when the scanner can
// tell what it is, so that "unknown" means "not recognised": configs and tokenizers are
// "json", "text" or "sentencepiece", and the policy can allow them without allowing every
// unrecognised file. The whole file is read once (it is small in every real repository);
// nothing in it is judged, only named.

// maxTextFile bounds the files named json or text; larger ones stay unknown.
const maxTextFile = 1 << 30

// nameContent names content no other format claimed: sentencepiece, json, text or unknown;
// or a SavedModel in protobuf text format (saved_model.pbtxt), whose ops are then judged. js
// is what the JSON probes found in the same bytes, or nil.
func nameContent(r io.ReaderAt, size int64, cfg *config, rep *Report, member string, js *jsonFacts) Format {
	if size > maxTextFile {
		return FormatUnknown
	}
	if off := hdf5UserBlock(r, size); off > 0 {
		return scanHDF5At(r, size, off, rep, member)
	}
	if f := scanKerasMetadata(r, size, rep, member); f != FormatUnknown {
		return f
	}
	if isSentencePiece(r, size) {
		return FormatSentencePiece
	}
	head := make([]byte, min(size, 16))
	head = head[:max(0, func() int { n, _ := r.ReadAt(head, 0); return n }())]
	tw := &textWatch{r: io.NewSectionReader(r, 0, size), binaryAt: -1}
	isJSON := false
	if trimmed := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n"); size <= cfg.maxJSONIndex && len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		bom := bytes.HasPrefix(head, []byte("\xef\xbb\xbf"))
		switch {
		case js != nil:
			isJSON = js.valid
		case size <= smallJSON:
			// Configs are small and models have thousands of them: read one whole and check it
			// in one pass, rather than token by token.
			data := make([]byte, size)
			if _, err := io.ReadFull(tw, data); err != nil {
				return FormatUnknown
			}
			if bom {
				data = data[3:]
			}
			isJSON = json.Valid(data)
		default:
			isJSON = validJSON(tw, bom)
		}
	}
	// Read on only while the content is still text: a binary file stops at its first
	// non-text byte, within the first block of raw tensor data.
	buf := make([]byte, max(1, min(size+1, 64<<10)))
	for tw.binaryAt < 0 {
		if _, err := tw.Read(buf); err == io.EOF {
			break
		} else if err != nil {
			return FormatUnknown
		}
	}
	if tw.binaryAt >= 0 || len(tw.carry) > 0 {
		return FormatUnknown
	}
	if isJSON {
		return FormatJSON
	}
	if looksLikeSavedModelText(r, size) {
		scanSavedModelText(io.NewSectionReader(r, 0, size), rep, member)
		return FormatSavedModel
	}
	return FormatText
}

// smallJSON is the size up to which a JSON file is read whole to be validated.
const smallJSON = 1 << 20

// validJSON reports whether r holds exactly one JSON value (after an optional BOM, which
// Python's json.load refuses but transformers' readers strip), reading it token by token
// so that a large tokenizer.json is never held whole.
func validJSON(r io.Reader, bom bool) bool {
	if bom {
		var b [3]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return false
		}
	}
	dec := json.NewDecoder(r)
	depth, values := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return values == 1 && depth == 0
		}
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			if values++; values > 1 {
				return false
			}
		}
	}
}

// isSentencePiece recognises a SentencePiece model (sentencepiece_model.proto ModelProto,
// tokenizer.model / spiece.model): only its fields 1 (pieces), 2 (trainer_spec),
// 3 (normalizer_spec), 4 (self_test_data) and 5 (denormalizer_spec), all messages, the
// first a piece that holds its string (field 1).
func isSentencePiece(r io.ReaderAt, size int64) bool {
	head := make([]byte, min(size, 2))
	if n, _ := r.ReadAt(head, 0); n < 2 || head[0] != 0x0a {
		return false
	}
	src := newPBSource(r, size)
	pieces := 0
	err := src.walk(0, size, func(f pbField) error {
		if f.num < 1 || f.num > 5 || f.typ != protowire.BytesType {
			return errPBTruncated
		}
		if f.num != 1 {
			return nil
		}
		if pieces++; pieces == 1 {
			// The first piece: piece (1, string), score (2, float), type (3, enum).
			return src.walk(f.off, f.off+f.n, func(g pbField) error {
				switch {
				case g.num == 1 && g.typ == protowire.BytesType,
					g.num == 2 && g.typ == protowire.Fixed32Type,
					g.num == 3 && g.typ == protowire.VarintType:
					return nil
				}
				return errPBTruncated
			})
		}
		return nil
	})
	return err == nil && pieces > 0
}
