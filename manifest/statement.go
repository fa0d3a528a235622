package manifest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/echelongraph/go-modelverify/internal/digest"
	"github.com/echelongraph/go-modelverify/internal/jsonwalk"
	godigest "github.com/opencontainers/go-digest"
)

// The in-toto and model_signing type URIs an OMS payload carries.
const (
	StatementType       = "https://in-toto.io/Statement/v1"
	PredicateType       = "https://model_signing/signature/v1.0"
	PredicateTypeV01    = "https://model_signing/Digests/v0.1" // model_signing v0.2, one subject per file
	PayloadType         = "application/vnd.in-toto+json"
	compatModelName     = "compat-undefined-not-present"
	maxStatementSize    = 256 << 20
	maxResourceNameSize = 4096
)

// Statement is a decoded OMS payload. Payload holds the exact bytes that were signed: the
// manifest is read from them and they are never re-serialized.
type Statement struct {
	Payload       []byte
	Type          string
	PredicateType string
	// SubjectName is the model name the signer recorded; informational.
	SubjectName string
	// SubjectDigest is the root digest the signer recorded. For the v0.1 layout, which has one
	// subject per file and no root digest, it is empty.
	SubjectDigest godigest.Digest
	Manifest      *Manifest
}

// EncodeStatement returns the in-toto statement for m, laid out exactly as Python
// model_signing writes it (protobuf's JSON with a two-space indent), so that the same manifest
// signed by either tool carries the same payload.
func EncodeStatement(m *Manifest) ([]byte, error) {
	ser := m.Serialization
	if err := ser.Validate(); err != nil {
		return nil, err
	}
	alg := ser.ResourceAlgorithm()
	for _, r := range m.Resources {
		if err := ValidateName(pathOf(r)); err != nil {
			return nil, err
		}
		if r.Algorithm != alg {
			return nil, fmt.Errorf("%w: resource %q has algorithm %q, but the serialization gives %q", ErrInvalid, r.Name, r.Algorithm, alg)
		}
		if len(r.Digest) != digest.Algorithm(ser.HashType).Size() {
			return nil, fmt.Errorf("%w: resource %q has a %d-byte digest, want %d", ErrInvalid, r.Name, len(r.Digest), digest.Algorithm(ser.HashType).Size())
		}
	}
	var b bytes.Buffer
	w := func(s string) { b.WriteString(s) }
	w("{\n  \"_type\": ")
	writeString(&b, StatementType)
	w(",\n  \"subject\": [\n    {\n      \"name\": ")
	writeString(&b, m.ModelName)
	w(",\n      \"digest\": {\n        \"sha256\": ")
	writeString(&b, m.RootDigest().Encoded())
	w("\n      }\n    }\n  ],\n  \"predicateType\": ")
	writeString(&b, PredicateType)
	w(",\n  \"predicate\": {\n    \"serialization\": {\n      \"method\": ")
	writeString(&b, ser.Method)
	w(",\n      \"hash_type\": ")
	writeString(&b, ser.HashType)
	w(",\n      \"allow_symlinks\": ")
	w(strconv.FormatBool(ser.AllowSymlinks))
	if ser.Method == MethodShards {
		// A protobuf Struct holds numbers as doubles, and Python prints them with ".0".
		w(",\n      \"shard_size\": ")
		w(strconv.FormatInt(ser.ShardSize, 10) + ".0")
	}
	if len(ser.IgnorePaths) > 0 {
		w(",\n      \"ignore_paths\": [")
		for i, p := range ser.IgnorePaths {
			if i > 0 {
				w(",")
			}
			w("\n        ")
			writeString(&b, p)
		}
		w("\n      ]")
	}
	w("\n    },\n    \"resources\": [")
	for i, r := range m.Resources {
		if i > 0 {
			w(",")
		}
		w("\n      {\n        \"algorithm\": ")
		writeString(&b, r.Algorithm)
		w(",\n        \"digest\": ")
		writeString(&b, r.Hex())
		w(",\n        \"name\": ")
		writeString(&b, r.Name)
		w("\n      }")
	}
	if len(m.Resources) > 0 {
		w("\n    ")
	}
	w("]\n  }\n}")
	return b.Bytes(), nil
}

// writeString writes s as Python's json.dumps does with ensure_ascii: quotes, backslashes and
// control characters escaped, and everything outside ASCII as \u escapes (UTF-16 pairs above
// U+FFFF). Go's encoder would differ (it escapes <, > and & and keeps UTF-8).
func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || r == utf8.RuneError:
				fmt.Fprintf(b, `\u%04x`, r)
			case r < 0x80:
				b.WriteRune(r)
			case r > 0xffff:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
			default:
				fmt.Fprintf(b, `\u%04x`, r)
			}
		}
	}
	b.WriteByte('"')
}

// The statement as it is parsed. Unknown fields are ignored, as the v1.0 predicate asks.
type rawStatement struct {
	Type          string          `json:"_type"`
	Subject       []rawSubject    `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type rawSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

type rawPredicate struct {
	Serialization *struct {
		Method        string   `json:"method"`
		HashType      string   `json:"hash_type"`
		AllowSymlinks bool     `json:"allow_symlinks"`
		ShardSize     *float64 `json:"shard_size"`
		IgnorePaths   []string `json:"ignore_paths"`
	} `json:"serialization"`
	Resources []struct {
		Name      string `json:"name"`
		Algorithm string `json:"algorithm"`
		Digest    string `json:"digest"`
	} `json:"resources"`
}

// DecodeStatement parses an OMS payload: an in-toto statement v1 whose predicate is
// model_signing's v1.0 manifest, or the older v0.1 layout with one subject per file. It accepts
// resources in any order, refuses names that could escape the model root, and checks that the
// single subject's root digest matches the resources in the order they are listed.
func DecodeStatement(payload []byte) (*Statement, error) {
	if len(payload) > maxStatementSize {
		return nil, fmt.Errorf("%w: statement is %d bytes, over the %d-byte limit", ErrInvalid, len(payload), maxStatementSize)
	}
	if st, ok := decodeV1Once(payload); ok {
		return st, nil
	}
	return decodeStatement(payload)
}

// decodeStatement is DecodeStatement's general path, which decides every payload the one-pass
// decode gives up on.
func decodeStatement(payload []byte) (*Statement, error) {
	var raw rawStatement
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, fmt.Errorf("%w: statement is not valid JSON: %v", ErrInvalid, err)
	}
	if raw.Type != StatementType {
		return nil, fmt.Errorf("%w: %q, want %q", ErrStatementType, raw.Type, StatementType)
	}
	st := &Statement{Payload: payload, Type: raw.Type, PredicateType: raw.PredicateType}
	switch raw.PredicateType {
	case PredicateType:
		m, err := decodeV1(&raw)
		if err != nil {
			return nil, err
		}
		st.Manifest = m
		st.SubjectName = raw.Subject[0].Name
		st.SubjectDigest = godigest.NewDigestFromEncoded(godigest.SHA256, raw.Subject[0].Digest["sha256"])
	case PredicateTypeV01:
		m, err := decodeV01(&raw)
		if err != nil {
			return nil, err
		}
		st.Manifest = m
		st.SubjectName = m.ModelName
	default:
		return nil, fmt.Errorf("%w: %q, want %q", ErrPredicateType, raw.PredicateType, PredicateType)
	}
	return st, nil
}

// rawStatementV1 is rawStatement with the v1.0 predicate decoded in the same pass.
type rawStatementV1 struct {
	Type          string        `json:"_type"`
	Subject       []rawSubject  `json:"subject"`
	PredicateType string        `json:"predicateType"`
	Predicate     *rawPredicate `json:"predicate"`
}

// decodeV1Once decodes a v1.0 statement in one pass over payload, where DecodeStatement's
// general path validates and decodes the predicate a second time: for a manifest of 100,000
// files, most of the time verifying a signature took. It gives up (ok false) on anything the
// general path could read differently, which then decides: a payload that does not decode
// into this shape, another statement or predicate type, no predicate, or a top-level key that
// may be "predicate" more than once (the general path, like Python's json, keeps the last,
// where one pass would merge them). When it succeeds, its result is the general path's.
func decodeV1Once(payload []byte) (*Statement, bool) {
	var raw rawStatementV1
	if err := json.Unmarshal(payload, &raw); err != nil || raw.Type != StatementType ||
		raw.PredicateType != PredicateType || raw.Predicate == nil || !onePredicateKey(payload) {
		return nil, false
	}
	m, err := decodeV1Predicate(raw.Subject, raw.Predicate)
	if err != nil {
		return nil, false
	}
	return &Statement{Payload: payload, Type: raw.Type, PredicateType: raw.PredicateType, Manifest: m,
		SubjectName:   raw.Subject[0].Name,
		SubjectDigest: godigest.NewDigestFromEncoded(godigest.SHA256, raw.Subject[0].Digest["sha256"])}, true
}

// onePredicateKey reports whether the valid JSON object payload has exactly one top-level key
// that encoding/json could match to the predicate field: "predicate" in any case. A key with
// an escape or a byte outside ASCII might be one, and makes it false.
func onePredicateKey(payload []byte) bool {
	n, escaped := 0, false
	object := jsonwalk.Keys(payload, func(key []byte) {
		switch {
		case bytes.IndexByte(key, '\\') >= 0 || slices.ContainsFunc(key, func(c byte) bool { return c >= 0x80 }):
			escaped = true
		case bytes.EqualFold(key, []byte("predicate")):
			n++
		}
	})
	return object && !escaped && n == 1
}

func decodeV1(raw *rawStatement) (*Manifest, error) {
	if _, err := v1Subject(raw.Subject); err != nil {
		return nil, err
	}
	if len(raw.Predicate) == 0 || string(raw.Predicate) == "null" {
		return nil, fmt.Errorf("%w: the statement has no predicate", ErrInvalid)
	}
	var pred rawPredicate
	if err := json.Unmarshal(raw.Predicate, &pred); err != nil {
		return nil, fmt.Errorf("%w: predicate: %v", ErrInvalid, err)
	}
	return decodeV1Predicate(raw.Subject, &pred)
}

// v1Subject checks a v1.0 statement's one subject and returns its root digest.
func v1Subject(subjects []rawSubject) (string, error) {
	if len(subjects) != 1 {
		return "", fmt.Errorf("%w: expected exactly one subject, got %d", ErrSubject, len(subjects))
	}
	want, ok := subjects[0].Digest["sha256"]
	if !ok {
		return "", fmt.Errorf("%w: the subject has no sha256 digest", ErrSubject)
	}
	if _, err := hexDigest(want, 32); err != nil {
		return "", fmt.Errorf("%w: subject digest: %v", ErrSubject, err)
	}
	return want, nil
}

// decodeV1Predicate checks and reads the v1.0 predicate pred of a statement with subjects.
func decodeV1Predicate(subjects []rawSubject, pred *rawPredicate) (*Manifest, error) {
	want, err := v1Subject(subjects)
	if err != nil {
		return nil, err
	}
	if pred.Serialization == nil {
		return nil, fmt.Errorf("%w: the predicate has no serialization", ErrInvalid)
	}
	ps := pred.Serialization
	ser := Serialization{Method: ps.Method, HashType: ps.HashType, AllowSymlinks: ps.AllowSymlinks, IgnorePaths: ps.IgnorePaths}
	if ser.Method == MethodShards {
		if ps.ShardSize == nil {
			return nil, fmt.Errorf("%w: shards serialization without a shard_size", ErrInvalid)
		}
		f := *ps.ShardSize
		if f != math.Trunc(f) || f <= 0 || f > 1<<53 {
			return nil, fmt.Errorf("%w: shard_size %v is not a positive whole number", ErrInvalid, f)
		}
		ser.ShardSize = int64(f)
	}
	if err := ser.Validate(); err != nil {
		return nil, err
	}
	for i, p := range ser.IgnorePaths {
		if len(p) > maxResourceNameSize {
			return nil, fmt.Errorf("%w: ignore_paths[%d] is too long", ErrInvalid, i)
		}
	}
	alg := ser.ResourceAlgorithm()
	size := digest.Algorithm(ser.HashType).Size()
	m := &Manifest{ModelName: subjects[0].Name, Serialization: ser, Resources: make([]Resource, 0, len(pred.Resources))}
	seen := make(map[string]bool, len(pred.Resources))
	for i, r := range pred.Resources {
		if r.Algorithm != alg {
			return nil, fmt.Errorf("%w: resources[%d] (%q) has algorithm %q, but the serialization gives %q", ErrInvalid, i, r.Name, r.Algorithm, alg)
		}
		res := Resource{Name: r.Name, Algorithm: r.Algorithm}
		if len(r.Name) > maxResourceNameSize {
			return nil, fmt.Errorf("%w: resources[%d] name is %d bytes long", ErrInvalid, i, len(r.Name))
		}
		if ser.Method == MethodShards {
			p, start, end, ok := res.Shard()
			if !ok {
				return nil, fmt.Errorf("%w: resources[%d] %q is not path:start:end", ErrInvalid, i, r.Name)
			}
			if end <= start || end-start > ser.ShardSize {
				return nil, fmt.Errorf("%w: resources[%d] %q is not a shard of at most %d bytes", ErrInvalid, i, r.Name, ser.ShardSize)
			}
			if err := ValidateName(p); err != nil {
				return nil, fmt.Errorf("resources[%d]: %w", i, err)
			}
		} else if err := ValidateName(r.Name); err != nil {
			return nil, fmt.Errorf("resources[%d]: %w", i, err)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("%w: resource %q is listed twice", ErrInvalid, r.Name)
		}
		seen[r.Name] = true
		d, err := hexDigest(r.Digest, size)
		if err != nil {
			return nil, fmt.Errorf("%w: resources[%d] (%q): %v", ErrInvalid, i, r.Name, err)
		}
		res.Digest = d
		m.Resources = append(m.Resources, res)
	}
	if len(m.Resources) > 1 && seen["."] {
		return nil, fmt.Errorf("%w: a single-file resource \".\" is listed beside others", ErrInvalid)
	}
	if got := m.RootDigest().Encoded(); got != want {
		return nil, fmt.Errorf("%w: the subject says sha256:%s, but the resources hash to sha256:%s", ErrRootDigest, want, got)
	}
	return m, nil
}

// decodeV01 reads model_signing v0.2's layout: one subject per file, each with a sha256. Like
// Python, it rebuilds a files/sha256 manifest; there is no root digest to check.
func decodeV01(raw *rawStatement) (*Manifest, error) {
	if len(raw.Subject) == 0 {
		return nil, fmt.Errorf("%w: the statement has no subjects", ErrSubject)
	}
	m := &Manifest{ModelName: compatModelName, Serialization: Serialization{Method: MethodFiles, HashType: SHA256}}
	seen := map[string]bool{}
	for i, s := range raw.Subject {
		if err := ValidateName(s.Name); err != nil {
			return nil, fmt.Errorf("subject[%d]: %w", i, err)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("%w: subject %q is listed twice", ErrInvalid, s.Name)
		}
		seen[s.Name] = true
		d, err := hexDigest(s.Digest["sha256"], 32)
		if err != nil {
			return nil, fmt.Errorf("%w: subject[%d] (%q): %v", ErrSubject, i, s.Name, err)
		}
		m.Resources = append(m.Resources, Resource{Name: s.Name, Algorithm: SHA256, Digest: d})
	}
	return m, nil
}

// hexDigest decodes a lowercase hex digest of the given size in bytes.
func hexDigest(s string, size int) ([]byte, error) {
	if len(s) != 2*size {
		return nil, fmt.Errorf("digest %q is %d hex digits, want %d", truncate(s), len(s), 2*size)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, fmt.Errorf("digest %q is not lowercase hex", truncate(s))
		}
	}
	return hex.DecodeString(s)
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// pathOf returns the path part of a resource name, for validation.
func pathOf(r Resource) string {
	if p, _, _, ok := r.Shard(); ok {
		return p
	}
	return r.Name
}
