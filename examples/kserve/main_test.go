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
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/manifest"
)

// initBin is the storage initializer, built once and run as KServe runs it.
var initBin string

// raceEnabled is set by race_test.go when the tests run with -race.
var raceEnabled bool

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "storage-initializer-test")
	if err != nil {
		panic(err)
	}
	initBin = filepath.Join(dir, "storage-initializer")
	args := []string{"build", "-o", initBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("building the storage initializer: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func safetensors(n int) []byte {
	header := fmt.Sprintf(`{"weight":{"dtype":"F32","shape":[%d],"data_offsets":[0,%d]}}`, n, 4*n)
	for len(header)%8 != 0 {
		header += " "
	}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(bytes.Repeat([]byte{1, 2, 3, 4}, n))
	return b.Bytes()
}

func modelFiles() map[string][]byte {
	return map[string][]byte{
		"config.json":          []byte(`{"model_type":"tiny"}`),
		"model.safetensors":    safetensors(128),
		"tokenizer/vocab.json": []byte(`{"a":0}`),
	}
}

// fixture is a Hub serving a signed model and a tampered copy, and a policy trusting the key.
type fixture struct {
	hub        *hubtest.TestServer
	policyText string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, modelFiles())
}

// newFixtureWith serves files signed as acme/tiny-llm (and as mallory's, whom the policy does
// not list), and a copy whose first safetensors file was changed after signing.
func newFixtureWith(t *testing.T, files map[string][]byte) *fixture {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	priv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, data, 0o644)
	}
	signer, err := manifest.NewKeySigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle, _, err := manifest.SignDir(context.Background(), dir, manifest.Options{}, signer)
	if err != nil {
		t.Fatal(err)
	}
	signed := map[string][]byte{"model.sig": bundle}
	tampered := map[string][]byte{"model.sig": bundle}
	var names []string
	for k, v := range files {
		signed[k], tampered[k] = v, v
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, ".safetensors") {
			w := bytes.Clone(signed[name])
			w[len(w)-1] ^= 0xff
			tampered[name] = w
			break
		}
	}

	ts := hubtest.NewServer(t,
		hubtest.WithModel("acme/tiny-llm", signed),
		hubtest.WithModel("acme/tiny-llm-tampered", tampered),
		hubtest.WithModel("mallory/tiny-llm", signed))
	policy := map[string]any{
		"apiVersion": "modelverify.echelongraph.io/v1alpha1",
		"kind":       "ModelPolicy",
		"endpoints":  []any{map[string]any{"name": "hub", "url": ts.URL, "cdnHosts": []any{ts.CDNHost()}}},
		"publishers": []any{map[string]any{"name": "acme", "namespaces": []any{"acme"},
			"identities": []any{map[string]any{"publicKey": map[string]any{"pem": string(pub)}}}}},
	}
	raw, _ := json.Marshal(policy)
	return &fixture{hub: ts, policyText: string(raw)}
}

// env is the container's environment: the Hub, the policy from the ConfigMap, nothing else
// from the test's own environment that could reach a real Hub or cache.
func (f *fixture) env(t *testing.T, extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "HF_ENDPOINT=" + f.hub.URL, "GORACE=atexit_sleep_ms=0"}
	if f.policyText != "" {
		env = append(env, "MODELVERIFY_POLICY="+f.policyText)
	}
	return append(env, extra...)
}

func runInit(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(initBin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			if !d.IsDir() {
				names = append(names, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	sort.Strings(names)
	return names
}

func TestInitializerWritesTheVerifiedModelIntoDest(t *testing.T) {
	f := newFixture(t)
	dest := filepath.Join(t.TempDir(), "mnt", "models")
	commit, _ := f.hub.Resolve("acme/tiny-llm", "main")
	// KServe's spelling: hf://org/name:revision.
	logs, code := runInit(t, f.env(t), "hf://acme/tiny-llm:"+commit, dest)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, logs)
	}
	want := []string{evidenceFile, "config.json", "model.safetensors", "tokenizer/vocab.json"}
	sort.Strings(want)
	if got := listDir(t, dest); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("dest holds %v, want %v (the staging cache must be gone)", got, want)
	}
	for name, data := range modelFiles() {
		got, _ := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name)))
		if !bytes.Equal(got, data) {
			t.Errorf("%s differs from the published file", name)
		}
	}
	var ev struct{ Commit, Publisher, Verification string }
	data, _ := os.ReadFile(filepath.Join(dest, evidenceFile))
	if err := json.Unmarshal(data, &ev); err != nil || ev.Commit != commit || ev.Publisher != "acme" || ev.Verification != "signature" {
		t.Errorf("evidence %s (%v)", data, err)
	}
	// The decision went to stderr as slog JSON, one object per line.
	var sawDecision bool
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if rec["msg"] == "modelverify decision" && rec["decision"] == "allowed" {
			sawDecision = true
		}
	}
	if !sawDecision {
		t.Errorf("no allowed decision in the logs:\n%s", logs)
	}

	// The pod restarts: the initializer runs again over its own output and verifies again.
	if logs, code := runInit(t, f.env(t), "hf://acme/tiny-llm:"+commit, dest); code != 0 {
		t.Fatalf("re-run: exit %d:\n%s", code, logs)
	}
	if got := listDir(t, dest); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("after a re-run dest holds %v", got)
	}
}

func TestInitializerRefusalLeavesDestEmpty(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ name, uri, reason string }{
		{"tampered weights", "hf://acme/tiny-llm-tampered", "digest-mismatch"},
		{"unknown publisher", "hf://mallory/tiny-llm", "publisher-not-allowed"},
		{"missing repository", "hf://acme/absent@main", "hub-error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			logs, code := runInit(t, f.env(t), tc.uri, dest)
			if code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, logs)
			}
			if !strings.Contains(logs, "model refused; nothing was written") || !strings.Contains(logs, tc.reason) {
				t.Errorf("logs do not give the refusal and %s:\n%s", tc.reason, logs)
			}
			if entries, _ := os.ReadDir(dest); len(entries) != 0 {
				t.Errorf("a refused model left %d entries in dest", len(entries))
			}
		})
	}
	// With two models, one refused: neither is left for the predictor.
	first, second := t.TempDir(), t.TempDir()
	if logs, code := runInit(t, f.env(t), "hf://acme/tiny-llm", first, "hf://acme/tiny-llm-tampered", second); code != 1 {
		t.Fatalf("two models: exit %d\n%s", code, logs)
	}
	for _, d := range []string{first, second} {
		if entries, _ := os.ReadDir(d); len(entries) != 0 {
			t.Errorf("%s not empty after the second model was refused", d)
		}
	}
}

func TestInitializerPolicySources(t *testing.T) {
	f := newFixture(t)
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policyFile, []byte(f.policyText), 0o644)
	noEnv := &fixture{hub: f.hub}

	// --policy FILE, with no environment policy.
	if logs, code := runInit(t, noEnv.env(t), "--policy", policyFile, "hf://acme/tiny-llm", t.TempDir()); code != 0 {
		t.Errorf("--policy: exit %d\n%s", code, logs)
	}
	// --policy wins over the environment: a file that refuses everything from this Hub.
	other := strings.Replace(f.policyText, `"namespaces":["acme"]`, `"namespaces":["someone-else"]`, 1)
	otherFile := filepath.Join(t.TempDir(), "other.yaml")
	os.WriteFile(otherFile, []byte(other), 0o644)
	if logs, code := runInit(t, f.env(t), "--policy", otherFile, "hf://acme/tiny-llm", t.TempDir()); code != 1 {
		t.Errorf("--policy over $MODELVERIFY_POLICY: exit %d\n%s", code, logs)
	}
	// No policy anywhere (the default file does not exist here): nothing is pulled.
	if _, err := os.Stat(defaultPolicyFile); err == nil {
		t.Skip(defaultPolicyFile + " exists on this machine")
	}
	dest := t.TempDir()
	logs, code := runInit(t, noEnv.env(t), "hf://acme/tiny-llm", dest)
	if code != 2 || !strings.Contains(logs, "cannot load the policy") || !strings.Contains(logs, defaultPolicyFile) {
		t.Errorf("no policy: exit %d\n%s", code, logs)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 0 {
		t.Error("dest written without a policy")
	}
	// An invalid policy text is not a policy.
	bad := &fixture{hub: f.hub, policyText: "kind: ModelPolicy\n"}
	if logs, code := runInit(t, bad.env(t), "hf://acme/tiny-llm", t.TempDir()); code != 2 || !strings.Contains(logs, "invalid policy") {
		t.Errorf("invalid policy: exit %d\n%s", code, logs)
	}
}

func TestInitializerKeepsACacheOutsideDest(t *testing.T) {
	f := newFixture(t)
	cache, dest := t.TempDir(), t.TempDir()
	if logs, code := runInit(t, f.env(t, "HF_HUB_CACHE="+cache), "hf://acme/tiny-llm", dest); code != 0 {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	if _, err := os.Stat(filepath.Join(cache, "models--acme--tiny-llm", "snapshots")); err != nil {
		t.Errorf("HF_HUB_CACHE outside dest was not used or not kept: %v", err)
	}
	// A cache inside dest, as the ClusterStorageContainer sets it, is removed afterwards.
	dest2 := t.TempDir()
	if logs, code := runInit(t, f.env(t, "HF_HUB_CACHE="+filepath.Join(dest2, ".cache", "huggingface")), "hf://acme/tiny-llm", dest2); code != 0 {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	if _, err := os.Stat(filepath.Join(dest2, ".cache")); err == nil {
		t.Error("the staging cache inside dest was left behind")
	}
}

func TestInitializerClearsTheStagingOfAKilledRun(t *testing.T) {
	f := newFixture(t)
	dest := t.TempDir()
	// A run killed mid-download leaves its staging cache and an export staging directory.
	os.MkdirAll(filepath.Join(dest, stagingCache, "models--acme--tiny-llm", "blobs"), 0o755)
	os.WriteFile(filepath.Join(dest, stagingCache, "models--acme--tiny-llm", "blobs", "partial"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(dest, ".modelverify-export-123", "tokenizer"), 0o755)
	if logs, code := runInit(t, f.env(t), "hf://acme/tiny-llm", dest); code != 0 {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	want := []string{evidenceFile, "config.json", "model.safetensors", "tokenizer/vocab.json"}
	sort.Strings(want)
	if got := listDir(t, dest); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("dest holds %v, want %v", got, want)
	}
}

func TestInitializerUsageErrorsExitTwoAndWriteNothing(t *testing.T) {
	f := newFixture(t)
	occupied := t.TempDir()
	os.WriteFile(filepath.Join(occupied, "someone-elses-file"), []byte("x"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"hf://acme/tiny-llm"}, "usage"},
		{[]string{"s3://bucket/model", t.TempDir()}, "only hf://"},
		{[]string{"hf://not a repo", t.TempDir()}, "invalid storage URI"},
		{[]string{"hf://acme/tiny-llm", occupied}, "not empty"},
	} {
		logs, code := runInit(t, f.env(t), tc.args...)
		if code != 2 || !strings.Contains(logs, tc.want) {
			t.Errorf("%v: exit %d, want 2 and %q:\n%s", tc.args, code, tc.want, logs)
		}
	}
	if got := listDir(t, occupied); len(got) != 1 {
		t.Errorf("the initializer touched a directory it did not write: %v", got)
	}
}
