package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/manifest"
)

// serviceBin is the runtime, built once and run as KServe runs its container.
var serviceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "service-test")
	if err != nil {
		panic(err)
	}
	serviceBin = filepath.Join(dir, "service")
	build := exec.Command("go", "build", "-o", serviceBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("building the service: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hubFixture is a Hub serving a signed model and a tampered copy, whose API answers only once
// the test releases it, so that the runtime can be probed while it is still verifying.
type hubFixture struct {
	url, work string
	release   func()
}

func newHub(t *testing.T) *hubFixture {
	t.Helper()
	work := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	os.WriteFile(filepath.Join(work, "key.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	signer, err := manifest.NewKeySigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(work, "model")
	os.MkdirAll(model, 0o755)
	files := map[string][]byte{
		"config.json":       []byte(`{"model_type":"tiny"}`),
		"model.safetensors": []byte("\x13\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":{}}"),
	}
	for name, data := range files {
		os.WriteFile(filepath.Join(model, name), data, 0o644)
	}
	bundle, _, err := manifest.SignDir(context.Background(), model, manifest.Options{}, signer)
	if err != nil {
		t.Fatal(err)
	}
	signed := map[string][]byte{"model.sig": bundle, "model.safetensors": files["model.safetensors"], "config.json": files["config.json"]}
	tampered := map[string][]byte{"model.sig": bundle, "model.safetensors": files["model.safetensors"], "config.json": []byte(`{"model_type":"evil"}`)}

	s, err := hubtest.Open(hubtest.WithModel("acme/tiny", signed), hubtest.WithModel("acme/tiny-tampered", tampered), hubtest.WithModel("other/tiny", signed))
	if err != nil {
		t.Fatal(err)
	}
	cdn := httptest.NewServer(s.CDN())
	s.SetCDNURL(cdn.URL)
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	hubSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-gate
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { s.Close(); hubSrv.Close(); cdn.Close() })
	t.Cleanup(release) // runs first: a held request must not keep Close waiting

	policy := fmt.Sprintf(`apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints:
  - url: %s
    cdnHosts: [%q]
publishers:
  - name: acme
    namespaces: [acme]
    identities:
      - publicKey: {path: key.pub}
audit:
  slog: true
`, hubSrv.URL, strings.TrimPrefix(cdn.URL, "http://"))
	os.WriteFile(filepath.Join(work, "policy.yaml"), []byte(policy), 0o644)
	return &hubFixture{url: hubSrv.URL, work: work, release: release}
}

// runtime is one running service: its address, and its log lines as they come.
type runtime struct {
	t     *testing.T
	cmd   *exec.Cmd
	base  string
	lines chan map[string]any
	seen  []string
}

func (h *hubFixture) start(t *testing.T, env []string, args ...string) *runtime {
	t.Helper()
	cmd := exec.Command(serviceBin, append([]string{"--policy", "policy.yaml", "--http-address", "127.0.0.1:0"}, args...)...)
	cmd.Dir = h.work
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "HF_ENDPOINT=" + h.url,
		"HF_HUB_CACHE=" + filepath.Join(h.work, "cache"), "HF_TOKEN=", "HF_HUB_OFFLINE="}, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rt := &runtime{t: t, cmd: cmd, lines: make(chan map[string]any, 1000)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				rec = map[string]any{"msg": "NOT JSON: " + sc.Text()}
			}
			rt.lines <- rec
		}
		close(rt.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	listening := rt.waitFor("listening")
	rt.base = "http://" + listening["address"].(string)
	return rt
}

// waitFor reads log lines until one's message starts with prefix. The deadline only keeps a
// broken runtime from hanging the test; nothing is asserted about how long it took.
func (rt *runtime) waitFor(prefix string) map[string]any {
	rt.t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case rec, ok := <-rt.lines:
			if !ok {
				rt.t.Fatalf("the runtime exited before logging %q:\n%s", prefix, strings.Join(rt.seen, "\n"))
			}
			msg, _ := rec["msg"].(string)
			rt.seen = append(rt.seen, msg)
			if strings.HasPrefix(msg, "NOT JSON") {
				rt.t.Errorf("log line %s", msg)
			}
			if strings.HasPrefix(msg, prefix) {
				return rec
			}
		case <-deadline:
			rt.t.Fatalf("no %q in the log:\n%s", prefix, strings.Join(rt.seen, "\n"))
		}
	}
}

// probe asks the runtime as the kubelet's httpGet probe and KServe's clients do.
func (rt *runtime) probe(path string) (int, map[string]any) {
	rt.t.Helper()
	resp, err := http.Get(rt.base + path)
	if err != nil {
		rt.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		rt.t.Fatalf("GET %s: body is not JSON: %v", path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		rt.t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	return resp.StatusCode, body
}

func (rt *runtime) expect(path string, status int, field string, want any) map[string]any {
	rt.t.Helper()
	code, body := rt.probe(path)
	if code != status || (field != "" && body[field] != want) {
		rt.t.Fatalf("GET %s: %d %v, want %d with %s=%v", path, code, body, status, field, want)
	}
	return body
}

func TestRuntimeIsLiveAtOnceAndReadyOnlyOnceTheModelIsVerified(t *testing.T) {
	h := newHub(t)
	rt := h.start(t, nil, "--model-name", "tiny-llm", "hf://acme/tiny")

	// The Hub has not answered yet: live, not ready, the model known but not servable.
	rt.expect("/v2/health/live", 200, "live", true)
	rt.expect("/v2/health/ready", 503, "ready", false)
	rt.expect("/v2/models/tiny-llm/ready", 503, "ready", false)
	if body := rt.expect("/v2/models/tiny-llm", 503, "", nil); !strings.Contains(body["error"].(string), "not ready: loading") {
		t.Errorf("metadata while loading: %v", body)
	}
	rt.expect("/v2/models/other/ready", 404, "", nil)

	h.release()
	line := rt.waitFor("model verified and ready")
	ev, _ := line["evidence"].(map[string]any)
	if line["decision"] != "allowed" || ev["verification"] != "signature" || ev["commit"] == nil {
		t.Fatalf("decision line %v", line)
	}
	commit := ev["commit"].(string)
	rt.expect("/v2/health/ready", 200, "ready", true)
	rt.expect("/v2/models/tiny-llm/ready", 200, "ready", true)
	rt.expect("/v2/models/tiny-llm/versions/"+commit+"/ready", 200, "ready", true)
	rt.expect("/v2/models/tiny-llm/versions/0000000000000000000000000000000000000000/ready", 404, "", nil)
	meta := rt.expect("/v2/models/tiny-llm", 200, "name", "tiny-llm")
	if v, _ := meta["versions"].([]any); len(v) != 1 || v[0] != commit || meta["platform"] == nil || meta["inputs"] == nil || meta["outputs"] == nil {
		t.Errorf("metadata %v", meta)
	}
	rt.expect("/v2", 200, "name", "modelverify-service")
	rt.expect("/v2/models/tiny-llm/infer", 404, "", nil)

	// SIGHUP re-checks: unchanged, still ready.
	rt.cmd.Process.Signal(syscall.SIGHUP)
	if line := rt.waitFor("re-check passed"); line["trigger"] != "SIGHUP" {
		t.Errorf("re-check line %v", line)
	}
	rt.expect("/v2/health/ready", 200, "ready", true)

	// A file changes under the running server: the next re-check makes it unready for good.
	snapshot := filepath.Join(h.work, "cache", "models--acme--tiny", "snapshots", commit, "config.json")
	blob, err := filepath.EvalSymlinks(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blob, []byte(`{"model_type":"evil"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	rt.cmd.Process.Signal(syscall.SIGHUP)
	line = rt.waitFor("re-check failed")
	if line["decision"] != "refused" || !strings.Contains(fmt.Sprint(line["reasons"]), "file-changed") || !strings.Contains(fmt.Sprint(line["problems"]), "config.json") {
		t.Errorf("re-check failure line %v", line)
	}
	rt.expect("/v2/health/ready", 503, "ready", false)
	rt.expect("/v2/models/tiny-llm/ready", 503, "ready", false)
	rt.expect("/v2/health/live", 200, "live", true)
}

func TestRuntimeIsNeverReadyAfterARefusal(t *testing.T) {
	h := newHub(t)
	h.release()
	for _, tc := range []struct{ ref, name, reason string }{
		{"hf://acme/tiny-tampered", "tiny-tampered", "digest-mismatch"},
		{"hf://other/tiny", "tiny", "publisher-not-allowed"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			// The model named as the InferenceService in manifests/ names it: by environment.
			rt := h.start(t, []string{modelEnv + "=" + tc.ref})
			line := rt.waitFor("model refused")
			if line["decision"] != "refused" || !strings.Contains(fmt.Sprint(line["reasons"]), tc.reason) || line["problems"] == nil {
				t.Fatalf("refusal line %v", line)
			}
			rt.expect("/v2/health/live", 200, "live", true)
			rt.expect("/v2/health/ready", 503, "ready", false)
			rt.expect("/v2/models/"+tc.name+"/ready", 503, "ready", false)
			if body := rt.expect("/v2/models/"+tc.name, 503, "", nil); !strings.Contains(body["error"].(string), "refused ("+tc.reason) {
				t.Errorf("metadata after a refusal: %v", body)
			}
			// A re-check signal cannot bring a refused model back.
			rt.cmd.Process.Signal(syscall.SIGHUP)
			rt.expect("/v2/health/ready", 503, "ready", false)
			if err := rt.cmd.Process.Signal(syscall.Signal(0)); err != nil {
				t.Errorf("the runtime exited after a refusal (the pod would restart and retry): %v", err)
			}
		})
	}
}

func TestRuntimeRechecksOnTheOperatorsInterval(t *testing.T) {
	h := newHub(t)
	h.release()
	rt := h.start(t, nil, "--recheck-interval", "20ms", "hf://acme/tiny")
	ev := rt.waitFor("model verified and ready")["evidence"].(map[string]any)
	if line := rt.waitFor("re-check passed"); line["trigger"] != "interval" {
		t.Errorf("re-check line %v", line)
	}
	blob, err := filepath.EvalSymlinks(filepath.Join(h.work, "cache", "models--acme--tiny", "snapshots", ev["commit"].(string), "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(blob, []byte("\x13\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":{}}"), 0o644) // same bytes, new mtime
	rt.waitFor("re-check failed")
	rt.expect("/v2/health/ready", 503, "ready", false)
}

func TestRuntimeUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"not a ref"}, {"hf://acme/tiny", "hf://acme/other"}, {"--recheck-interval", "-1s", "hf://acme/tiny"}} {
		cmd := exec.Command(serviceBin, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "usage") {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
}

// TestRuntimeStopsWithoutARefusalWhenStoppedWhileVerifying: a pod deleted mid-verification
// is not a refused model, and the runtime does not log it as one. (The library's audit record
// still says the load did not happen, as it does for every verification that does not finish.)
func TestRuntimeStopsWithoutARefusalWhenStoppedWhileVerifying(t *testing.T) {
	h := newHub(t)
	rt := h.start(t, nil, "hf://acme/tiny") // the Hub holds every request
	rt.cmd.Process.Signal(syscall.SIGTERM)
	for rec := range rt.lines {
		if msg, _ := rec["msg"].(string); strings.Contains(msg, "never be ready") {
			t.Errorf("a stopped verification logged %v", rec)
		}
	}
	if err := rt.cmd.Wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}
