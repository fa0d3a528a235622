package manifest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sampleStatement(t *testing.T) (*Manifest, []byte) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"config.json": "{}", "model.safetensors": "weights", "tok/vocab.txt": "v"})
	m, err := FromDir(context.Background(), dir, Options{ModelName: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := EncodeStatement(m)
	if err != nil {
		t.Fatal(err)
	}
	return m, payload
}

func TestStatementRoundTripKeepsPayloadBytes(t *testing.T) {
	m, payload := sampleStatement(t)
	st, err := DecodeStatement(payload)
	if err != nil {
		t.Fatal(err)
	}
	if &st.Payload[0] != &payload[0] {
		t.Fatal("the decoded statement must keep the signed bytes, not a copy or a re-encoding")
	}
	if err := Compare(m, st.Manifest, CompareOptions{}); err != nil {
		t.Fatal(err)
	}
	if st.SubjectName != "demo" || st.SubjectDigest != m.RootDigest() {
		t.Fatalf("subject %q %s", st.SubjectName, st.SubjectDigest)
	}
	if strings.Join(st.Manifest.Serialization.IgnorePaths, ",") != ".git,.gitattributes,.github,.gitignore,model.sig" {
		t.Fatalf("ignore paths %v", st.Manifest.Serialization.IgnorePaths)
	}
}

func TestDecodeStatementAcceptsAnyResourceOrder(t *testing.T) {
	m, _ := sampleStatement(t)
	// Reverse the resources: the root digest changes with the order, so re-encode a statement
	// whose subject matches the reversed list, as a signer that sorts differently would.
	for i, j := 0, len(m.Resources)-1; i < j; i, j = i+1, j-1 {
		m.Resources[i], m.Resources[j] = m.Resources[j], m.Resources[i]
	}
	payload, err := EncodeStatement(m)
	if err != nil {
		t.Fatal(err)
	}
	st, err := DecodeStatement(payload)
	if err != nil {
		t.Fatalf("a reordered manifest must decode: %v", err)
	}
	if st.Manifest.Resources[0].Name != "tok/vocab.txt" {
		t.Fatal("decoding must keep the listed order")
	}
}

func TestDecodeStatementRefusals(t *testing.T) {
	_, good := sampleStatement(t)
	cases := []struct {
		name string
		edit func(string) string
		want error
	}{
		{"wrong statement type", func(s string) string {
			return strings.Replace(s, "https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1", 1)
		}, ErrStatementType},
		{"wrong predicate type", func(s string) string {
			return strings.Replace(s, PredicateType, "https://example.com/other", 1)
		}, ErrPredicateType},
		{"tampered root digest", func(s string) string {
			i := strings.Index(s, `"sha256": "`) + len(`"sha256": "`)
			c := "0"
			if s[i] == '0' {
				c = "1"
			}
			return s[:i] + c + s[i+1:]
		}, ErrRootDigest},
		{"tampered resource digest", func(s string) string {
			i := strings.Index(s, `"digest": "`) + len(`"digest": "`)
			c := "0"
			if s[i] == '0' {
				c = "1"
			}
			return s[:i] + c + s[i+1:]
		}, ErrRootDigest},
		{"two subjects", func(s string) string {
			return strings.Replace(s, `"subject": [`, `"subject": [{"name":"x","digest":{"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}},`, 1)
		}, ErrSubject},
		{"no subject", func(s string) string {
			i, j := strings.Index(s, `"subject": [`), strings.Index(s, `"predicateType"`)
			return s[:i] + `"subject": [], ` + s[j:]
		}, ErrSubject},
		{"escaping name", func(s string) string {
			return strings.Replace(s, `"name": "config.json"`, `"name": "../config.json"`, 1)
		}, ErrUnsafeName},
		{"absolute name", func(s string) string { return strings.Replace(s, `"name": "config.json"`, `"name": "/etc/passwd"`, 1) }, ErrUnsafeName},
		{"unknown method", func(s string) string { return strings.Replace(s, `"method": "files"`, `"method": "layers"`, 1) }, ErrInvalid},
		{"algorithm disagrees with serialization", func(s string) string {
			return strings.Replace(s, `"algorithm": "sha256"`, `"algorithm": "blake3"`, 1)
		}, ErrInvalid},
		{"uppercase hex", func(s string) string {
			i := strings.Index(s, `"digest": "`) + len(`"digest": "`)
			return s[:i] + strings.ToUpper(s[i:i+64]) + s[i+64:]
		}, ErrInvalid},
		{"not json", func(s string) string { return s[:len(s)/2] }, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeStatement([]byte(tc.edit(string(good))))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeStatementRefusesDuplicateResources(t *testing.T) {
	m, _ := sampleStatement(t)
	m.Resources = append(m.Resources, m.Resources[0])
	payload, err := EncodeStatement(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeStatement(payload); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v", err)
	}
}

func TestCompareReportsEveryDifference(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a": "1", "b": "2", "c": "3"})
	signed, err := FromDir(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "a"))
	os.WriteFile(filepath.Join(dir, "b"), []byte("changed"), 0o644)
	os.WriteFile(filepath.Join(dir, "d"), []byte("new"), 0o644)

	_, err = CheckDir(context.Background(), dir, signed, CheckOptions{})
	var diff *Diff
	if !errors.As(err, &diff) || !errors.Is(err, ErrMismatch) {
		t.Fatalf("got %v, want a *Diff", err)
	}
	if strings.Join(diff.Missing, ",") != "a" || strings.Join(diff.Extra, ",") != "d" || len(diff.Mismatched) != 1 || diff.Mismatched[0].Name != "b" {
		t.Fatalf("diff %+v", diff)
	}
	mm := diff.Mismatched[0]
	if !strings.HasPrefix(mm.Expected, "sha256:") || mm.Expected == mm.Actual {
		t.Fatalf("mismatch must carry both digests: %+v", mm)
	}
	for _, want := range []string{": a", ": d", `"b"`, mm.Expected, mm.Actual} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not name %s", err, want)
		}
	}

	_, err = CheckDir(context.Background(), dir, signed, CheckOptions{IgnoreUnsigned: true})
	if !errors.As(err, &diff) || len(diff.Extra) != 0 || len(diff.Missing) != 1 || len(diff.Mismatched) != 1 {
		t.Fatalf("ignoring unsigned files still reports missing and changed ones: %v", err)
	}
}

func TestCheckDirRefusesEscapingNamesBeforeReadingAnything(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a": "1"})
	signed := &Manifest{Serialization: Serialization{Method: MethodFiles, HashType: SHA256},
		Resources: []Resource{{Name: "../../etc/passwd", Algorithm: SHA256, Digest: make([]byte, 32)}}}
	if _, err := CheckDir(context.Background(), dir, signed, CheckOptions{IgnoreUnsigned: true}); !errors.Is(err, ErrUnsafeName) {
		t.Fatalf("got %v, want ErrUnsafeName", err)
	}
}

func TestValidateName(t *testing.T) {
	for _, bad := range []string{"", "/abs", "../x", "a/../../x", "a/..", "a\\b", "a//b", "./a", "a/", "a/./b"} {
		if ValidateName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{".", "a", "a/b", "..a", "a..b/c", ".hidden/x"} {
		if err := ValidateName(good); err != nil {
			t.Errorf("%q refused: %v", good, err)
		}
	}
}

// A statement decodes in one pass only where that gives what decoding the predicate apart
// gives; a second top-level predicate key (any case), which one pass would merge into the
// first where Python's json keeps the last, goes the general way.
func TestDecodeStatementInOnePassOnlyWhereItAgrees(t *testing.T) {
	m := &Manifest{ModelName: "m", Serialization: Serialization{Method: MethodFiles, HashType: SHA256},
		Resources: []Resource{{Name: "a", Algorithm: SHA256, Digest: make([]byte, 32)}}}
	payload, err := EncodeStatement(m)
	if err != nil {
		t.Fatal(err)
	}
	fast, ok := decodeV1Once(payload)
	if !ok {
		t.Fatal("a statement as EncodeStatement writes it does not decode in one pass")
	}
	slow, err := decodeStatement(payload)
	if err != nil || !reflect.DeepEqual(fast, slow) {
		t.Fatalf("one pass %+v, general path %+v, %v", fast, slow, err)
	}
	// The second predicate holds only the resources: kept alone (as Python keeps it), it has
	// no serialization and is refused; merged into the first, it would pass.
	twice := bytes.Replace(payload, []byte(`"predicate": {`), []byte(`"predicate": {"serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false}}, "Predicate": {`), 1)
	body := bytes.Replace(twice, []byte(`"serialization": {
      "method": "files",
      "hash_type": "sha256",
      "allow_symlinks": false
    },`), nil, 1)
	if bytes.Equal(body, twice) || bytes.Equal(twice, payload) {
		t.Fatalf("the payload is not laid out as expected:\n%s", payload)
	}
	if _, ok := decodeV1Once(body); ok {
		t.Fatal("a statement with two predicate keys decoded in one pass")
	}
	if _, err := DecodeStatement(body); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no serialization") {
		t.Fatalf("two predicates: %v, want the last alone refused for having no serialization", err)
	}
}
