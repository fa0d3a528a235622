package modelverify

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/manifest"
)

// A Sigstore signer's Fulcio extensions reach the evidence and the audit record (the file's
// JSON and the slog sink), copied so that neither shares the verifier's map.
func TestEvidenceAndAuditCarryTheSignersFulcioExtensions(t *testing.T) {
	ext := map[string]string{"sourceRepositoryURI": "https://github.com/acme/models", "sourceRepositoryRef": "refs/tags/v1.0"}
	signed := &manifest.Manifest{ModelName: "tiny", Serialization: manifest.Serialization{Method: manifest.MethodFiles, HashType: manifest.SHA256}}
	res := &manifest.Result{Manifest: signed, Signer: manifest.SignerInfo{Kind: manifest.SignerSigstore,
		Identity:   "https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1.0",
		OIDCIssuer: "https://token.actions.githubusercontent.com", Extensions: ext}}
	v := &Verifier{policy: &Policy{}, cfg: config{now: time.Now}}
	d := v.newDecision("hf://acme/tiny@v1.0")
	m := &Model{manifest: signed, byName: map[string]int{}}
	r, _ := hub.ParseReference("hf://acme/tiny@v1.0")
	ev := v.evidence(d, r, nil, res, m)
	if ev.Signer.Extensions["sourceRepositoryRef"] != "refs/tags/v1.0" || d.rec.SignerExtensions["sourceRepositoryURI"] != "https://github.com/acme/models" {
		t.Fatalf("evidence %+v, record %+v", ev.Signer, d.rec)
	}
	ext["sourceRepositoryRef"] = "changed"
	if ev.Signer.Extensions["sourceRepositoryRef"] != "refs/tags/v1.0" || d.rec.SignerExtensions["sourceRepositoryRef"] != "refs/tags/v1.0" {
		t.Error("the evidence shares the verifier's map")
	}
	d.rec.Decision = DecisionAllowed
	line, err := json.Marshal(d.rec)
	if err != nil || !strings.Contains(string(line), `"signerExtensions":{"sourceRepositoryRef":"refs/tags/v1.0","sourceRepositoryURI":"https://github.com/acme/models"}`) {
		t.Errorf("audit line %s (%v)", line, err)
	}
	var buf bytes.Buffer
	if err := NewSlogSink(slog.New(slog.NewJSONHandler(&buf, nil))).Write(context.Background(), d.rec); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"signerExtensions":{"sourceRepositoryRef":"refs/tags/v1.0"`) {
		t.Errorf("slog %s", buf.String())
	}
}
