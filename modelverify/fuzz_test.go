package modelverify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// FuzzParsePolicy checks that no document makes the loader panic or hang, and that whatever it
// accepts is a fixed point: encoding the loaded policy and loading it again gives the same policy.
func FuzzParsePolicy(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "examples", "policy.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(basePolicy))
	f.Add([]byte(matchPolicy))
	f.Add([]byte(`{"apiVersion":"modelverify.echelongraph.io/v1alpha1","kind":"ModelPolicy","mode":"audit",
	 "endpoints":[{"url":"http://127.0.0.1:8080/","cdnHosts":["[::1]:9000","*.hf.co"]}],
	 "publishers":[{"name":"p","namespaces":["o/m-?[0-9]*"],"requireSignature":false}],
	 "content":{"maxFileSize":"1.5GiB","maxTotalSize":1099511627776,"pickle":"scan","allowFormats":["pickle","unknown"]}}`))
	f.Add([]byte("apiVersion: x\nkind: y\nmode: &a [*a]\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n"))
	f.Add([]byte("publishers:\n  - identities:\n      - publicKey: {path: " + interopPublicKey + "}\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := modelverify.ParsePolicy(doc)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "modelverify: invalid policy") {
				t.Fatalf("error without the policy prefix: %v", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("a loaded policy fails Validate: %v", err)
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := modelverify.ParsePolicy(again)
		if err != nil {
			t.Fatalf("re-encoded policy refused: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("policy changed when re-loaded:\n%+v\n%+v", p, q)
		}
		for _, pub := range p.Publishers {
			for _, ns := range pub.Namespaces {
				// Whatever a namespace claims, lookups must not panic.
				p.Publisher(strings.ReplaceAll(ns, "*", "x"))
			}
		}
	})
}

// FuzzReadAudit checks that no input makes the reader panic, that every record it yields is
// one the sink could have written, and that writing those records back reads the same.
func FuzzReadAudit(f *testing.F) {
	var seed bytes.Buffer
	for _, rec := range []modelverify.Record{
		allowedRecord("org/a", auditT0, modelverify.VerifiedSignature),
		refusedRecord("org/b", auditT0.Add(time.Second), modelverify.ErrUnsigned, modelverify.ErrDigestMismatch),
		{Time: auditT0, Decision: modelverify.DecisionAuditAllowed, Ref: "/mnt/models", Duration: time.Millisecond, Message: "é\n<>"},
	} {
		data, err := json.Marshal(rec)
		if err != nil {
			f.Fatal(err)
		}
		seed.Write(data)
		seed.WriteByte('\n')
	}
	f.Add(seed.Bytes())
	f.Add(append(seed.Bytes(), `{"time":"2026-11-25T10:00:00Z","dec`...))
	f.Add([]byte("\n\n{}\nnull\n[]\n\"x\"\n"))
	f.Add([]byte(`{"time":"2026-11-25T10:00:00Z","decision":"refused","ref":"x","durationMs":1e308}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var recs []modelverify.Record
		for rec, err := range modelverify.ReadAudit(bytes.NewReader(data)) {
			if err != nil {
				continue
			}
			if rec.Ref == "" || rec.Time.IsZero() {
				t.Fatalf("yielded an incomplete record %+v", rec)
			}
			recs = append(recs, rec)
		}
		var out bytes.Buffer
		for _, rec := range recs {
			line, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(line)
			out.WriteByte('\n')
		}
		n := 0
		for _, err := range modelverify.ReadAudit(&out) {
			if err != nil {
				t.Fatalf("re-encoded record unreadable: %v", err)
			}
			n++
		}
		if n != len(recs) {
			t.Fatalf("re-read %d records, want %d", n, len(recs))
		}
	})
}

// FuzzParseByteSize checks that every accepted size prints back to itself.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"0", "10GiB", "1.5GiB", "500 MB", "9223372036854775807", "0.001kB", "8191PiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := modelverify.ParseByteSize(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseByteSize(%q) = %d", s, v)
		}
		back, err := modelverify.ParseByteSize(v.String())
		if err != nil || back != v {
			t.Fatalf("ParseByteSize(%q) = %d, String %q, back %d, %v", s, v, v.String(), back, err)
		}
	})
}

// FuzzParseRecord checks that no verification record file, which anyone who can write the cache
// controls, makes the gate panic, or is used without a MAC under the service's key: only the
// record the gate wrote itself is.
func FuzzParseRecord(f *testing.F) {
	key := newGateKey(f)
	files := sign(f, baseModel(), key)
	ts := hubtest.NewServer(f, hubtest.WithModel("acme/tiny", files))
	p, err := modelverify.ParsePolicy([]byte(`
apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints: [{url: "` + ts.URL + `", cdnHosts: ["` + ts.CDNHost() + `"]}]
publishers: [{name: acme, namespaces: [acme], identities: [{publicKey: {pem: "` + strings.ReplaceAll(string(key.pub), "\n", `\n`) + `"}}]}]
`))
	if err != nil {
		f.Fatal(err)
	}
	v, err := modelverify.NewVerifier(p, modelverify.WithEndpoint(ts.URL), modelverify.WithCacheDir(f.TempDir()),
		modelverify.WithRecordKeyFile(filepath.Join(f.TempDir(), "record.key")), modelverify.WithHubOptions(hub.WithToken("")))
	if err != nil {
		f.Fatal(err)
	}
	defer v.Close()
	m, err := v.Verify(context.Background(), "acme/tiny")
	if err != nil {
		f.Fatal(err)
	}
	commit := m.Evidence().Commit
	valid, err := modelverify.RecordBytes(v, "acme/tiny", commit)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(bytes.Replace(valid, []byte(`"Size":`), []byte(`"Size":1`), 1))
	f.Add([]byte(`{"version":1,"repo":"acme/tiny"}`))
	f.Add([]byte(`{"mac":"","record":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		used, use := modelverify.ParseRecord(v, data, "acme/tiny", commit)
		if used && !bytes.Equal(data, valid) && !sameRecord(data, valid) {
			t.Fatalf("a record the gate did not write was used (%s): %q", use, data)
		}
	})
}

// sameRecord reports whether two record files carry the same MAC and record bytes, differing
// only in the envelope's layout.
func sameRecord(a, b []byte) bool {
	var x, y struct {
		MAC    string          `json:"mac"`
		Record json.RawMessage `json:"record"`
	}
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && x.MAC == y.MAC && bytes.Equal(x.Record, y.Record)
}
