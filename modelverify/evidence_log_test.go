package modelverify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestEvidenceLogsAsOneGroupWithoutPerFileDigests(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	m, err := g.verifier().Verify(context.Background(), "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("model verified", "evidence", m.Evidence())
	var line struct{ Evidence map[string]any }
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	ev := m.Evidence()
	e := line.Evidence
	if e["commit"] != ev.Commit || e["decision"] != "allowed" || e["verification"] != "signature" ||
		e["manifestDigest"] != ev.ManifestDigest || e["files"] != 3.0 {
		t.Errorf("evidence logged as %v", e)
	}
	if signer, _ := e["signer"].(map[string]any); signer["kind"] != "key" || !strings.HasPrefix(signer["identity"].(string), "key sha256:") {
		t.Errorf("signer logged as %v", e["signer"])
	}
	if _, ok := e["digests"]; ok {
		t.Error("per-file digests in the log line")
	}
}
