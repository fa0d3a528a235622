package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/manifest"
)

// testKey is a P-256 key pair written to files, as a user keeps one.
type testKey struct {
	privPEM, pubPEM   []byte
	privPath, pubPath string
	key               *ecdsa.PrivateKey
}

func newTestKey(t *testing.T) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tk := testKey{
		privPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pubPEM:   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		privPath: filepath.Join(dir, "key.pem"),
		pubPath:  filepath.Join(dir, "key.pub"),
		key:      k,
	}
	writeFile(t, tk.privPath, tk.privPEM)
	writeFile(t, tk.pubPath, tk.pubPEM)
	return tk
}

// testCA is a root CA and a leaf signing certificate issued by it, written to files.
type testCA struct {
	rootPath, leafKeyPath, leafCertPath string
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "verifier test root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	leaf := newTestKey(t)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "model signer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &leaf.key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := testCA{
		rootPath:     filepath.Join(dir, "root.pem"),
		leafKeyPath:  leaf.privPath,
		leafCertPath: filepath.Join(dir, "leaf.pem"),
	}
	writeFile(t, ca.rootPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}))
	writeFile(t, ca.leafCertPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}))
	return ca
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tinyModel is a small model's files: a config, a tokenizer and real safetensors weights.
func tinyModel() map[string][]byte {
	return map[string][]byte{
		"config.json":         []byte(`{"model_type":"tiny","hidden_size":4}`),
		"tokenizer.json":      []byte(`{"version":"1.0","model":{"type":"BPE"}}`),
		"model.safetensors":   demoSafetensors(64),
		"nested/extra.json":   []byte(`{"note":"a file in a directory"}`),
		"nested/weights.json": []byte(`[1,2,3]`),
	}
}

// writeModel writes files under dir.
func writeModel(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(name)), data)
	}
}

// signFiles returns files plus a model.sig signing them with key, made with the library.
func signFiles(t *testing.T, files map[string][]byte, key testKey) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	writeModel(t, dir, files)
	signer, err := manifest.NewKeySigner(key.privPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle, _, err := manifest.SignDir(context.Background(), dir, manifest.Options{}, signer)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{"model.sig": bundle}
	for k, v := range files {
		out[k] = v
	}
	return out
}

// tamper returns a copy of files with the last byte of name flipped.
func tamper(files map[string][]byte, name string) map[string][]byte {
	out := make(map[string][]byte, len(files))
	for k, v := range files {
		out[k] = v
	}
	b := bytes.Clone(files[name])
	b[len(b)-1] ^= 0xff
	out[name] = b
	return out
}

// writePolicy writes a policy that trusts hubURL (with its CDN) and one publisher "acme" whose
// models key signs; edit changes the document first.
func writePolicy(t *testing.T, hubURL, cdnHost string, key testKey, auditLog string, edit func(doc map[string]any)) string {
	t.Helper()
	doc := map[string]any{
		"apiVersion": "modelverify.echelongraph.io/v1alpha1",
		"kind":       "ModelPolicy",
		"endpoints":  []any{map[string]any{"name": "test-hub", "url": hubURL, "cdnHosts": []any{cdnHost}}},
		"publishers": []any{map[string]any{
			"name":       "acme",
			"namespaces": []any{"acme"},
			"identities": []any{map[string]any{"publicKey": map[string]any{"path": key.pubPath}}},
		}},
		"audit": map[string]any{"path": auditLog},
	}
	if edit != nil {
		edit(doc)
	}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policy.json")
	writeFile(t, path, raw)
	return path
}

func firstPublisher(doc map[string]any) map[string]any {
	return doc["publishers"].([]any)[0].(map[string]any)
}
