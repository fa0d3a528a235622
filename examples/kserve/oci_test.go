package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/examples/kserve/internal/modelcar"
	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// ociFixture is a registry serving modelcars, a cosign-style key, and a policy that approves
// the registry and trusts the key for acme's repositories.
type ociFixture struct {
	ts         *registrytest.TestServer
	key        *modelcar.Key
	policyText string
}

func newOCIFixture(t *testing.T, opts ...registrytest.Option) *ociFixture {
	t.Helper()
	ts := registrytest.NewServer(t, opts...)
	key, err := modelcar.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.GetPublicKeyPem()
	if err != nil {
		t.Fatal(err)
	}
	policy := map[string]any{
		"apiVersion": "modelverify.echelongraph.io/v1alpha1",
		"kind":       "ModelPolicy",
		// A policy needs an endpoint even when it loads from registries only.
		"endpoints":  []any{map[string]any{"url": "https://huggingface.co"}},
		"registries": []any{map[string]any{"host": ts.Host, "plainHTTP": true}},
		"publishers": []any{map[string]any{"name": "acme", "oci": []any{ts.Host + "/acme/*"},
			"identities": []any{map[string]any{"publicKey": map[string]any{"pem": pub}}}}},
	}
	raw, _ := json.Marshal(policy)
	return &ociFixture{ts: ts, key: key, policyText: string(raw)}
}

// push pushes a modelcar of files to repo:v1 and returns its descriptor.
func (f *ociFixture) push(t *testing.T, repo string, files map[string][]byte) registrytest.Descriptor {
	t.Helper()
	return f.ts.PushManifest(t, repo, "v1", modelcar.Image(files))
}

// signBundle stores cosign v3's signature of d (a Sigstore bundle referrer).
func (f *ociFixture) signBundle(t *testing.T, repo string, d registrytest.Descriptor) {
	t.Helper()
	m, err := f.key.BundleReferrer(d)
	if err != nil {
		t.Fatal(err)
	}
	f.ts.PushReferrer(t, repo, m)
}

// signLegacy stores cosign v2's signature of d (the sha256-<hex>.sig tag).
func (f *ociFixture) signLegacy(t *testing.T, repo string, d registrytest.Descriptor) {
	t.Helper()
	tag, m, err := f.key.LegacySignature(f.ts.Host+"/"+repo, d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	f.ts.PushManifest(t, repo, tag, m)
}

// env is the container's environment: the policy, no Hub, no Docker config of the test's own.
func (f *ociFixture) env(t *testing.T, extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GORACE=atexit_sleep_ms=0",
		"MODELVERIFY_POLICY=" + f.policyText}, extra...)
}

func TestInitializerVerifiesAnOCIModelcarIntoDest(t *testing.T) {
	for _, form := range []string{"bundle", "legacy"} {
		t.Run(form, func(t *testing.T) {
			f := newOCIFixture(t)
			d := f.push(t, "acme/tiny", modelFiles())
			if form == "bundle" {
				f.signBundle(t, "acme/tiny", d)
			} else {
				f.signLegacy(t, "acme/tiny", d)
			}
			want := []string{evidenceFile, "config.json", "model.safetensors", "tokenizer/vocab.json"}
			sort.Strings(want)
			for _, uri := range []string{f.ts.Ref("acme/tiny", "v1"), f.ts.Ref("acme/tiny", d.Digest)} {
				// The cache inside dest, as KServe's single volume has it: hard links, no copies.
				dest := filepath.Join(t.TempDir(), "mnt", "models")
				logs, code := runInit(t, f.env(t), uri, dest)
				if code != 0 {
					t.Fatalf("%s: exit %d:\n%s", uri, code, logs)
				}
				if got := listDir(t, dest); strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("%s: dest holds %v, want %v (the staging cache must be gone)", uri, got, want)
				}
				for name, data := range modelFiles() {
					if got, _ := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name))); !bytes.Equal(got, data) {
						t.Errorf("%s: %s differs from the file in the image", uri, name)
					}
				}
				var ev struct{ Ref, Commit, Endpoint, Repo, Publisher, Verification string }
				data, _ := os.ReadFile(filepath.Join(dest, evidenceFile))
				if err := json.Unmarshal(data, &ev); err != nil || ev.Ref != uri || ev.Commit != d.Digest || ev.Endpoint != "oci://"+f.ts.Host ||
					ev.Repo != "acme/tiny" || ev.Publisher != "acme" || ev.Verification != "signature" {
					t.Errorf("%s: evidence %s (%v)", uri, data, err)
				}
				last := lastLogLine(t, logs)
				if last["msg"] != "model verified and ready" || last["decision"] != "allowed" || last["published"] != "linked" {
					t.Errorf("%s: last log line %v", uri, last)
				}
				for _, want := range []string{"resolving the tag to a digest", "verifying the cosign signature", "downloading layer",
					"layer downloaded; it matches its digest in the manifest", "scanning every file", `"msg":"modelverify decision"`} {
					if !strings.Contains(logs, want) {
						t.Errorf("%s: the logs lack %q:\n%s", uri, want, logs)
					}
				}
			}
			// A cache outside dest is the verifier's store, kept; dest gets its own copy.
			cache, dest := t.TempDir(), t.TempDir()
			logs, code := runInit(t, f.env(t, "HF_HUB_CACHE="+cache), f.ts.Ref("acme/tiny", "v1"), dest)
			if code != 0 || lastLogLine(t, logs)["published"] != "copied" {
				t.Fatalf("cache outside dest: exit %d:\n%s", code, logs)
			}
			if got := listDir(t, dest); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("cache outside dest: dest holds %v", got)
			}
			stored := filepath.Join(cache, "oci", strings.ReplaceAll(f.ts.Host, ":", "_"), "acme", "tiny", strings.Replace(d.Digest, ":", "-", 1), "config.json")
			if _, err := os.Stat(stored); err != nil {
				t.Errorf("the verified model is not kept in the store outside dest: %v", err)
			}
		})
	}
}

func TestInitializerRefusesOCIModelsAndLeavesDestEmpty(t *testing.T) {
	f := newOCIFixture(t)
	// Unsigned.
	f.push(t, "acme/unsigned", modelFiles())
	// Signed, in a registry the policy does not list.
	other := registrytest.NewServer(t)
	od := other.PushManifest(t, "acme/tiny", "v1", modelcar.Image(modelFiles()))
	m, err := f.key.BundleReferrer(od)
	if err != nil {
		t.Fatal(err)
	}
	other.PushReferrer(t, "acme/tiny", m)
	// Signed, with a hostile layer: an entry that climbs out of the model.
	hostile := registrytest.Modelcar(registrytest.Tar(registrytest.File("models/config.json", []byte(`{}`)),
		registrytest.File("models/../../etc/cron.d/evil", []byte("* * * * * root sh"))))
	f.signBundle(t, "acme/hostile", f.ts.PushManifest(t, "acme/hostile", "v1", hostile))
	// Signed, but the registry serves other bytes than the layer's digest names.
	corrupt := modelcar.Image(modelFiles())
	f.signBundle(t, "acme/corrupt", f.ts.PushManifest(t, "acme/corrupt", "v1", corrupt))
	f.ts.AddFault(registrytest.Fault{Kind: registrytest.FaultCorrupt, Route: registrytest.RouteBlobs, Repo: "acme/corrupt",
		Digest: registrytest.Digest(corrupt.Layers[0].Data)})
	// Signed by the key, in a repository no publisher claims.
	f.signBundle(t, "evil/tiny", f.push(t, "evil/tiny", modelFiles()))

	for _, tc := range []struct{ name, uri, reason string }{
		{"unsigned", f.ts.Ref("acme/unsigned", "v1"), "unsigned"},
		{"unapproved registry", other.Ref("acme/tiny", "v1"), "endpoint-not-allowed"},
		{"hostile layer", f.ts.Ref("acme/hostile", "v1"), "unsafe-content"},
		{"layer bytes differ from the digest", f.ts.Ref("acme/corrupt", "v1"), "digest-mismatch"},
		{"repository no publisher claims", f.ts.Ref("evil/tiny", "v1"), "publisher-not-allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "models")
			logs, code := runInit(t, f.env(t), tc.uri, dest)
			if code != exitRefused {
				t.Fatalf("exit %d, want %d:\n%s", code, exitRefused, logs)
			}
			last := lastLogLine(t, logs)
			if last["msg"] != "model refused; nothing was written" || !strings.Contains(jsonText(last["reasons"]), `"`+tc.reason+`"`) ||
				last["temporary"] != nil {
				t.Errorf("last log line %v, want a refusal for %s", last, tc.reason)
			}
			if entries, _ := os.ReadDir(dest); len(entries) != 0 {
				t.Errorf("a refused model left %d entries in dest", len(entries))
			}
		})
	}
	for _, r := range other.Requests() {
		if strings.HasPrefix(r, "GET ") || strings.HasPrefix(r, "HEAD ") {
			t.Errorf("the unapproved registry was read from: %s", r)
		}
	}
	if _, err := os.Stat("/etc/cron.d/evil"); err == nil {
		t.Error("the hostile layer wrote outside the model")
	}
}

// A registry that keeps failing says nothing about the model: the run exits 2, as for any
// error that is not a refusal, marked temporary, so that an operator (and the kubelet, which
// restarts the init container) knows to try again rather than to fix the model.
func TestInitializerRegistryFailureIsATemporaryError(t *testing.T) {
	f := newOCIFixture(t)
	f.signBundle(t, "acme/tiny", f.push(t, "acme/tiny", modelFiles()))
	f.ts.AddFault(registrytest.Fault{Kind: registrytest.FaultStatus, Status: http.StatusServiceUnavailable, Route: registrytest.RouteManifests})
	env := map[string]string{"MODELVERIFY_POLICY": f.policyText}
	var logs bytes.Buffer
	in := newInitializer(&logs, func(k string) string { return env[k] })
	// Two quick retries instead of a minute of them.
	in.verifierOpts = []modelverify.Option{modelverify.WithRegistryOptions(registry.WithRetry(2, time.Millisecond, time.Millisecond, time.Second))}
	dest := filepath.Join(t.TempDir(), "models")
	code := in.run(t.Context(), []string{f.ts.Ref("acme/tiny", "v1"), dest}, &logs)
	if code != exitError {
		t.Fatalf("exit %d, want %d:\n%s", code, exitError, logs.String())
	}
	last := lastLogLine(t, logs.String())
	if last["msg"] != "model refused; nothing was written" || last["temporary"] != true || !strings.Contains(jsonText(last["reasons"]), "hub-error") {
		t.Errorf("last log line %v, want a temporary failure", last)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 0 {
		t.Errorf("a failed pull left %d entries in dest", len(entries))
	}
	// The same registry, healthy again: the retry of the pod passes.
	f.ts.ClearFaults()
	logs.Reset()
	if code := in.run(t.Context(), []string{f.ts.Ref("acme/tiny", "v1"), dest}, &logs); code != exitOK {
		t.Fatalf("after the registry recovered: exit %d:\n%s", code, logs.String())
	}
}

// Credentials come from the Docker config KSERVE_OCI_DOCKER_CONFIG names, as KServe mounts the
// pod's imagePullSecret for an initializer; one that cannot be read is a configuration error.
func TestInitializerReadsRegistryCredentialsFromKServesDockerConfig(t *testing.T) {
	f := newOCIFixture(t, registrytest.WithBasicAuth("robot", "s3cret"))
	f.signBundle(t, "acme/tiny", f.push(t, "acme/tiny", modelFiles()))
	uri := f.ts.Ref("acme/tiny", "v1")

	if logs, code := runInit(t, f.env(t), uri, t.TempDir()); code != exitRefused || !strings.Contains(logs, "hub-error") {
		t.Fatalf("without credentials: exit %d, want %d:\n%s", code, exitRefused, logs)
	}
	cfg := filepath.Join(t.TempDir(), "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte("robot:s3cret"))
	os.WriteFile(cfg, []byte(`{"auths":{"`+f.ts.Host+`":{"auth":"`+auth+`"}}}`), 0o600)
	if logs, code := runInit(t, f.env(t, dockerConfigEnv+"="+cfg, insecureRegistryEnv+"=true"), uri, t.TempDir()); code != exitOK ||
		!strings.Contains(logs, "$"+insecureRegistryEnv+" is ignored") {
		t.Fatalf("with %s: exit %d:\n%s", dockerConfigEnv, code, logs)
	}
	for _, bad := range []string{filepath.Join(t.TempDir(), "absent.json"), writeFile(t, "not json")} {
		dest := t.TempDir()
		logs, code := runInit(t, f.env(t, dockerConfigEnv+"="+bad), uri, dest)
		if code != exitError || !strings.Contains(logs, "cannot use the registry credentials") {
			t.Errorf("%s=%s: exit %d, want %d:\n%s", dockerConfigEnv, bad, code, exitError, logs)
		}
		if entries, _ := os.ReadDir(dest); len(entries) != 0 {
			t.Errorf("dest written with unusable credentials")
		}
	}
}

// KServe hands its initializer oci:// URIs only (it rewrites oci+fetch:// first); the other
// spellings are usage errors that say so.
func TestInitializerTakesOnlyOCIURIsKServeHandsOver(t *testing.T) {
	f := newOCIFixture(t)
	for _, tc := range []struct{ uri, want string }{
		{"oci+fetch://" + f.ts.Host + "/acme/tiny:v1", "KServe passes an oci+fetch:// storageUri to its storage initializer as oci://"},
		{"oci+modelcar://" + f.ts.Host + "/acme/tiny:v1", "this initializer takes oci:// URIs"},
		{"oci://acme/tiny", "invalid storage URI"},
		{"oci://" + f.ts.Host + "/acme/tiny@sha256:abc", "invalid storage URI"},
	} {
		dest := t.TempDir()
		logs, code := runInit(t, f.env(t), tc.uri, dest)
		if code != exitError || !strings.Contains(logs, tc.want) {
			t.Errorf("%s: exit %d, want %d and %q:\n%s", tc.uri, code, exitError, tc.want, logs)
		}
		if entries, _ := os.ReadDir(dest); len(entries) != 0 {
			t.Errorf("%s: dest written", tc.uri)
		}
	}
	if len(f.ts.Requests()) != 0 {
		t.Errorf("a usage error reached the registry: %v", f.ts.Requests())
	}
}

func lastLogLine(t *testing.T, logs string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		t.Fatalf("last log line is not JSON: %q", lines[len(lines)-1])
	}
	return rec
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The same holds for the Hub: before, a Hub that kept failing exited 1, as if the model had
// been refused.
func TestInitializerHubFailureIsATemporaryError(t *testing.T) {
	f := newFixture(t)
	f.hub.AddFault(hubtest.Fault{Kind: hubtest.FaultStatus, Status: http.StatusBadGateway})
	t.Setenv("HF_ENDPOINT", f.hub.URL)
	t.Setenv("HF_TOKEN", "")
	env := map[string]string{"MODELVERIFY_POLICY": f.policyText}
	var logs bytes.Buffer
	in := newInitializer(&logs, func(k string) string { return env[k] })
	in.verifierOpts = []modelverify.Option{modelverify.WithHubOptions(hub.WithRetry(2, time.Millisecond, time.Millisecond, time.Second))}
	dest := filepath.Join(t.TempDir(), "models")
	if code := in.run(t.Context(), []string{"hf://acme/tiny-llm", dest}, &logs); code != exitError {
		t.Fatalf("exit %d, want %d:\n%s", code, exitError, logs.String())
	}
	if last := lastLogLine(t, logs.String()); last["temporary"] != true || !strings.Contains(jsonText(last["reasons"]), "hub-error") {
		t.Errorf("last log line %v, want a temporary failure", last)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 0 {
		t.Errorf("a failed pull left %d entries in dest", len(entries))
	}
}

// The other packings the gate knows, a CNCF ModelPack artefact and a KitOps ModelKit, go
// through the initializer the same way as a modelcar.
func TestInitializerVerifiesModelPackAndModelKitArtefacts(t *testing.T) {
	f := newOCIFixture(t)
	for repo, m := range map[string]registrytest.Manifest{
		"acme/pack": registrytest.ModelPack(modelFiles()),
		"acme/kit":  registrytest.ModelKit(modelFiles()),
	} {
		f.signBundle(t, repo, f.ts.PushManifest(t, repo, "v1", m))
		dest := t.TempDir()
		logs, code := runInit(t, f.env(t), f.ts.Ref(repo, "v1"), dest)
		if code != 0 {
			t.Fatalf("%s: exit %d:\n%s", repo, code, logs)
		}
		for name, data := range modelFiles() {
			if got, _ := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name))); !bytes.Equal(got, data) {
				t.Errorf("%s: %s differs from the artefact's", repo, name)
			}
		}
	}
}
