package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
	"github.com/google/go-containerregistry/pkg/authn"
)

// The demo's two repositories: a signed model, and a copy whose weights changed after signing.
const (
	demoGood     = "acme/tiny-llm"
	demoTampered = "acme/tiny-llm-tampered"
)

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "demo", "verifier demo [--keep]")
	keep := fs.Bool("keep", false, "keep the demo's cache, policy and audit log, and print where they are")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("demo: takes no arguments")
	}
	work, err := os.MkdirTemp("", "modelverify-demo-")
	if err != nil {
		return err
	}
	if *keep {
		defer fmt.Fprintf(e.stderr, "demo files kept in %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}

	// A publisher's key, and its model signed with it, as `verifier sign key` would.
	priv, pub, err := demoKey()
	if err != nil {
		return err
	}
	good, err := demoSignedModel(ctx, filepath.Join(work, "model"), priv)
	if err != nil {
		return err
	}
	tampered := make(map[string][]byte, len(good))
	for k, v := range good {
		tampered[k] = v
	}
	// One weight flipped after signing: the Hub's own digests still match (the attacker
	// uploaded the file), only the publisher's signature can tell.
	w := bytes.Clone(good["model.safetensors"])
	w[len(w)-1] ^= 0xff
	tampered["model.safetensors"] = w

	hubURL, cdnHost, stop, err := demoHub(good, tampered)
	if err != nil {
		return err
	}
	defer stop()
	oci, err := startDemoRegistry(ctx, good, priv)
	if err != nil {
		return err
	}
	defer oci.stop()

	auditLog := filepath.Join(work, "audit.jsonl")
	policyDoc := map[string]any{
		"apiVersion": modelverify.PolicyAPIVersion,
		"kind":       modelverify.PolicyKind,
		"endpoints":  []any{map[string]any{"name": "demo-hub", "url": hubURL, "cdnHosts": []string{cdnHost}}},
		// The demo registry is on loopback, so it is reached over plain HTTP, which its entry must say.
		"registries": []any{map[string]any{"host": oci.host, "plainHTTP": true}},
		"publishers": []any{map[string]any{
			"name": "acme", "namespaces": []string{"acme"}, "oci": []string{oci.host + "/acme/*"},
			"identities": []any{map[string]any{"publicKey": map[string]any{"pem": string(pub)}}},
		}},
		// Pickles may load when the scanner finds nothing in them that runs code, so that the demo
		// shows the scanner at work on a hostile one; the default policy refuses pickles outright.
		"content": map[string]any{"pickle": "scan", "allowFormats": []string{"safetensors", "json", "pickle"}},
		"audit":   map[string]any{"path": auditLog},
	}
	raw, err := json.MarshalIndent(policyDoc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "policy.json"), raw, 0o644); err != nil {
		return err
	}
	p, err := modelverify.ParsePolicy(raw)
	if err != nil {
		return fmt.Errorf("demo policy: %w", err)
	}
	v, err := modelverify.NewVerifier(p,
		modelverify.WithEndpoint(hubURL),
		modelverify.WithCacheDir(filepath.Join(work, "cache")),
		// The demo Hub knows no tokens: never send it the user's HF_TOKEN, and never go offline.
		modelverify.WithHubOptions(hub.WithToken(""), hub.WithOffline(false)),
		// Nor the user's Docker credentials to the demo registry.
		modelverify.WithRegistryOptions(registry.WithKeychain(authn.NewMultiKeychain())),
		// The demo's own record key, so that it writes nothing into the user's configuration.
		modelverify.WithRecordKeyFile(filepath.Join(work, "record.key")))
	if err != nil {
		return err
	}
	defer v.Close()

	out := e.stdout
	if e.json {
		out = &bytes.Buffer{} // the human story is not mixed into the JSON
	}
	fmt.Fprintf(out, "A local Hub at %s serves two repositories. The policy trusts one publisher,\n", hubURL)
	fmt.Fprintf(out, "\"acme\", whose models must be signed by its key. %s was changed after signing.\n\n", demoTampered)

	goodRef, badRef := "hf://"+demoGood+"@main", "hf://"+demoTampered+"@main"
	fmt.Fprintf(out, "1. pull %s\n", goodRef)
	model, goodErr := v.Verify(ctx, goodRef)
	if goodErr == nil {
		fmt.Fprintf(out, "   ALLOWED: %s\n", model.Evidence().Verification)
		printEvidence(out, model.Evidence(), "   ")
		fmt.Fprintf(out, "   load from:    %s\n", model.Dir())
	} else {
		fmt.Fprintf(out, "   unexpectedly refused: %v\n", goodErr)
	}

	fmt.Fprintf(out, "\n2. pull %s\n", badRef)
	_, badErr := v.Verify(ctx, badRef)
	var ref *modelverify.Refusal
	if errors.As(badErr, &ref) {
		fmt.Fprintf(out, "   REFUSED: %s\n", strings.Join(ref.ReasonNames(), ", "))
		for _, pr := range ref.Problems {
			fmt.Fprintf(out, "   - %s\n", pr)
		}
		fmt.Fprintln(out, "   nothing was published: there is no path to load")
	} else if badErr == nil {
		fmt.Fprintln(out, "   unexpectedly allowed")
	} else {
		fmt.Fprintf(out, "   failed: %v\n", badErr)
	}

	fmt.Fprintf(out, "\nA local OCI registry at %s serves the same model as a KServe modelcar, signed with\n", oci.host)
	fmt.Fprintln(out, "cosign's bundle format by acme's key. The policy approves this registry alone, and acme's")
	fmt.Fprintln(out, "repositories on it.")
	ociAllowed, ociRefused, ociOK, err := demoOCISteps(ctx, out, v, oci, good, priv, 3)
	if err != nil {
		return err
	}

	var last *modelverify.Record
	var recs []modelverify.Record
	if files, err := modelverify.AuditFiles(auditLog); err == nil {
		for rec, err := range modelverify.ReadAuditFiles(files...) {
			if err != nil {
				return fmt.Errorf("reading the demo's audit log: %w", err)
			}
			recs = append(recs, rec)
			if rec.Decision == modelverify.DecisionRefused {
				last = &recs[len(recs)-1]
			}
		}
	}
	if last != nil {
		fmt.Fprintf(out, "\naudit log: the last model blocked was %s at %s (%s)\n", last.Ref, last.Time.UTC().Format(time.RFC3339), strings.Join(last.Reasons, ", "))
	}
	printOCIAudit(out, recs)

	ok := goodErr == nil && ref != nil && errors.Is(badErr, modelverify.ErrDigestMismatch) && last != nil && ociOK
	if e.json {
		j := map[string]any{"ok": ok, "hub": hubURL, "registry": oci.host}
		if goodErr == nil {
			j["allowed"] = evidenceJSON(model.Evidence())
		}
		if ref != nil {
			j["refused"] = ref
		}
		o := map[string]any{"refused": ociRefused}
		if ociAllowed != nil {
			o["allowed"] = evidenceJSON(*ociAllowed)
		}
		j["oci"] = o
		if err := writeJSON(e, j); err != nil {
			return err
		}
	}
	if !ok {
		return fmt.Errorf("demo: expected %s allowed, %s refused for digest-mismatch, the signed modelcar allowed and the OCI attacks refused", goodRef, badRef)
	}
	if !e.json {
		fmt.Fprintln(out, "\ndemo passed: from the Hub and from a registry, the signed model allowed with its evidence,")
		fmt.Fprintln(out, "every attack refused with its reasons, and each decision in the audit log.")
	}
	return nil
}

// demoKey makes a fresh P-256 key pair, PEM-encoded.
func demoKey() (priv, pub []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}

// demoSignedModel writes a tiny model into dir, signs it with priv, and returns its files with
// model.sig.
func demoSignedModel(ctx context.Context, dir string, priv []byte) (map[string][]byte, error) {
	files := map[string][]byte{
		"config.json":       []byte(`{"model_type":"tiny-llm","hidden_size":8,"num_hidden_layers":1}` + "\n"),
		"tokenizer.json":    []byte(`{"version":"1.0","model":{"type":"BPE","vocab":{"a":0,"b":1}}}` + "\n"),
		"model.safetensors": demoSafetensors(256),
	}
	for name, data := range files {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return nil, err
		}
	}
	signer, err := manifest.NewKeySigner(priv, nil)
	if err != nil {
		return nil, err
	}
	bundle, _, err := manifest.SignDir(ctx, dir, manifest.Options{ModelName: "tiny-llm"}, signer)
	if err != nil {
		return nil, err
	}
	files["model.sig"] = bundle
	return files, nil
}

// demoSafetensors is a valid safetensors file with one F32 tensor of n values.
func demoSafetensors(n int) []byte {
	header := fmt.Sprintf(`{"weight":{"dtype":"F32","shape":[%d],"data_offsets":[0,%d]}}`, n, 4*n)
	for len(header)%8 != 0 {
		header += " "
	}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	for i := range n {
		binary.Write(&b, binary.LittleEndian, float32(i)/float32(n))
	}
	return b.Bytes()
}

// demoHub serves the two repositories on loopback: the Hub, and its CDN for LFS downloads.
func demoHub(good, tampered map[string][]byte) (hubURL, cdnHost string, stop func(), err error) {
	srv, err := hubtest.Open(hubtest.WithModel(demoGood, good), hubtest.WithModel(demoTampered, tampered))
	if err != nil {
		return "", "", nil, err
	}
	hubLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	cdnLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		hubLn.Close()
		return "", "", nil, err
	}
	srv.SetCDNURL("http://" + cdnLn.Addr().String())
	hubSrv := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	cdnSrv := &http.Server{Handler: srv.CDN(), ReadHeaderTimeout: 10 * time.Second}
	go hubSrv.Serve(hubLn)
	go cdnSrv.Serve(cdnLn)
	stop = func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hubSrv.Shutdown(ctx)
		cdnSrv.Shutdown(ctx)
	}
	return "http://" + hubLn.Addr().String(), cdnLn.Addr().String(), stop, nil
}
