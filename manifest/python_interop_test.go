package manifest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPythonVerifiesBundlesWeSign has Python check, step by step as model_signing's `verify key`
// does and with the same `cryptography` library, the key-signed bundles this package writes:
// the signature, the hint, the statement and every file. It skips where python3 or cryptography
// is missing.
func TestPythonVerifiesBundlesWeSign(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	if out, err := exec.Command(python, "-c", "import cryptography").CombinedOutput(); err != nil {
		t.Skipf("python3 has no cryptography module: %s", out)
	}
	script, _ := filepath.Abs("../testdata/python/verify_like_model_signing.py")
	// The check is faithful to model_signing: it accepts what model_signing v1.1.0 signed.
	py := filepath.Join(interop, "signed", "v1.1.0-elliptic-key")
	if out, err := exec.Command(python, script, py, filepath.Join(py, "model.sig"),
		filepath.Join(interop, "signed", "keys", "certificate", "signing-key-pub.pem")).CombinedOutput(); err != nil {
		t.Fatalf("the check refuses model_signing's own bundle: %s", out)
	}
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		t.Run(curve.Params().Name, func(t *testing.T) {
			k, err := ecdsa.GenerateKey(curve, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			der, _ := x509.MarshalPKCS8PrivateKey(k)
			pubDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
			keyDir := t.TempDir()
			pubPath := filepath.Join(keyDir, "key.pub")
			os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
			signer, err := NewKeySigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
			if err != nil {
				t.Fatal(err)
			}

			model := t.TempDir()
			writeFiles(t, model, map[string]string{
				"config.json": `{"a": "<b> & c"}`, "model.safetensors": "weights", "tokenizer/vocab.txt": "v", ".hidden": "h",
			})
			bundle, _, err := SignDir(context.Background(), model, Options{}, signer)
			if err != nil {
				t.Fatal(err)
			}
			sig := filepath.Join(model, "model.sig")
			os.WriteFile(sig, bundle, 0o644)

			run := func() (string, bool) {
				out, err := exec.Command(python, script, model, sig, pubPath).CombinedOutput()
				return string(bytes.TrimSpace(out)), err == nil
			}
			if out, ok := run(); !ok || out != "Verification succeeded" {
				t.Fatalf("Python refused our bundle: %s", out)
			}
			os.WriteFile(filepath.Join(model, "model.safetensors"), []byte("weightz"), 0o644)
			if out, ok := run(); ok || !strings.Contains(out, "changed ['model.safetensors']") {
				t.Fatalf("Python accepted a changed file: %s", out)
			}
		})
	}
}
