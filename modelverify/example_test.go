package modelverify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// The load gate in one page, and a test of it in a few lines: a publisher signs its model with
// model_signing's key method (manifest.SignFiles, from memory), the Hub serves it (hubtest,
// in-process, with real safetensors bytes from hubtest.Safetensors), and a service verifies it
// before loading. A copy whose weights were changed after signing is refused, with the reason.
func Example() {
	ctx := context.Background()

	// The publisher's key, and its signed model.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	signer, _ := manifest.NewKeySigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
	weights := hubtest.Safetensors(map[string][]float32{"weight": {0.5, 1, 2}})
	files := map[string][]byte{"config.json": []byte(`{"model_type":"tiny"}`), "model.safetensors": weights}
	bundle, _, err := manifest.SignFiles(ctx, files, manifest.Options{ModelName: "tiny"}, signer)
	if err != nil {
		log.Fatal(err)
	}
	signed := map[string][]byte{"model.sig": bundle, "config.json": files["config.json"], "model.safetensors": weights}
	tampered := map[string][]byte{"model.sig": bundle, "config.json": files["config.json"],
		"model.safetensors": hubtest.Safetensors(map[string][]float32{"weight": {0.5, 1, 3}})}

	// The Hub, and its CDN that LFS downloads redirect to.
	srv := hubtest.New(hubtest.WithModel("acme/tiny", signed), hubtest.WithModel("acme/tiny-tampered", tampered))
	defer srv.Close()
	cdn := httptest.NewServer(srv.CDN())
	defer cdn.Close()
	srv.SetCDNURL(cdn.URL)
	hubServer := httptest.NewServer(srv)
	defer hubServer.Close()
	cdnURL, _ := url.Parse(cdn.URL)

	// The service's policy: this Hub, and acme's models signed by acme's key.
	policy, err := modelverify.ParsePolicy([]byte(fmt.Sprintf(`
apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints:
  - url: %s
    cdnHosts: [%q]
publishers:
  - name: acme
    namespaces: [acme]
    identities:
      - publicKey:
          pem: %q
`, hubServer.URL, cdnURL.Host, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))))
	if err != nil {
		log.Fatal(err)
	}
	work, _ := os.MkdirTemp("", "service")
	defer os.RemoveAll(work)
	cache := filepath.Join(work, "hf-cache")
	// Nothing from the environment (HF_ENDPOINT, HF_TOKEN, ...), and no audit log: a test.
	v, err := modelverify.NewVerifier(policy,
		modelverify.WithEnvironment(false),
		modelverify.WithEndpoint(hubServer.URL),
		modelverify.WithCacheDir(cache),
		modelverify.WithRecordKeyFile(filepath.Join(work, "record.key")),
		modelverify.WithAuditSink(modelverify.DiscardSink{}))
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	m, err := v.Verify(ctx, "hf://acme/tiny@main")
	if err != nil {
		log.Fatal(err)
	}
	ev := m.Evidence()
	fmt.Printf("allowed %s: %d files, verified by %s (%s signer)\n", ev.Repo, len(m.Files()), ev.Verification, ev.Signer.Kind)
	fmt.Println("load from the snapshot:", strings.HasPrefix(m.Dir(), cache))

	_, err = v.Verify(ctx, "hf://acme/tiny-tampered@main")
	var refusal *modelverify.Refusal
	if errors.As(err, &refusal) {
		p := refusal.Problems[0]
		fmt.Printf("refused %s: %s in %s\n", "acme/tiny-tampered", p.Reason.Name(), p.File)
	}
	fmt.Println("is a digest mismatch:", errors.Is(err, modelverify.ErrDigestMismatch))
	// Output:
	// allowed acme/tiny: 2 files, verified by signature (key signer)
	// load from the snapshot: true
	// refused acme/tiny-tampered: digest-mismatch in model.safetensors
	// is a digest mismatch: true
}

// Scan judges a weight file by its bytes alone. This pickle would run os.system on load.
func ExampleScan() {
	dir, _ := os.MkdirTemp("", "scan")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "pytorch_model.bin")
	os.WriteFile(path, maliciousPickle, 0o644)

	report, err := modelverify.Scan(context.Background(), path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(report.Format, report.Verdict)
	for _, f := range report.Findings {
		if f.Global != "" {
			fmt.Println("imports", f.Global)
		}
	}
	// Output:
	// pickle dangerous
	// imports os.system
}
