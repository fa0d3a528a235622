package modelverify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// policyProblems returns the problems of err's *PolicyError by field.
func policyProblems(t *testing.T, err error) map[string]string {
	t.Helper()
	var pe *modelverify.PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("want a *PolicyError, got %v", err)
	}
	out := map[string]string{}
	for _, p := range pe.Problems {
		out[p.Field] = p.Message
	}
	return out
}

// A policy that loads but names an audit log in a directory that does not exist, or a record
// key too short to use, fails CheckPolicy exactly as it fails NewVerifier, every problem in one
// round, and CheckPolicy creates nothing.
func TestCheckPolicyRunsTheChecksNewVerifierRuns(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-dir", "audit.jsonl")
	shortKey := filepath.Join(dir, "short.key")
	if err := os.WriteFile(shortKey, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := `apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints: [{url: ` + g.hub.URL + `}]
publishers:
  - name: acme
    namespaces: [acme]
    requireSignature: false
audit: {path: ` + missing + `}
records: {keyFile: ` + shortKey + `}
`
	p, err := modelverify.ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatalf("the document alone is valid: %v", err)
	}
	opts := []modelverify.Option{modelverify.WithCacheDir(filepath.Join(dir, "cache"))}
	for name, check := range map[string]func() error{
		"CheckPolicy": func() error { return modelverify.CheckPolicy(p, opts...) },
		"NewVerifier": func() error { _, err := modelverify.NewVerifier(p, opts...); return err },
	} {
		probs := policyProblems(t, check())
		if len(probs) != 2 || !strings.Contains(probs["audit.path"], "does not exist") ||
			!strings.Contains(probs["audit.path"], "mkdir -p "+filepath.Dir(missing)) ||
			!strings.Contains(probs["records.keyFile"], "openssl rand -hex 32") {
			t.Errorf("%s: %v", name, probs)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "cache")); !os.IsNotExist(err) {
		t.Errorf("a check made the cache: %v", err)
	}

	// Fixed, both pass, and CheckPolicy still leaves nothing behind: no audit log, no key.
	p.Audit.Path = filepath.Join(dir, "audit.jsonl")
	p.Records.KeyFile = filepath.Join(dir, "record.key")
	if err := modelverify.CheckPolicy(p, opts...); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p.Audit.Path, p.Records.KeyFile} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("CheckPolicy made %s", f)
		}
	}
	v, err := modelverify.NewVerifier(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
}

// The shipped example policy passes the check as it stands in the repository, so `verifier
// policy check examples/policy.yaml` is true when it says "valid".
func TestExamplePolicyPassesCheckPolicy(t *testing.T) {
	p, err := modelverify.LoadPolicy(filepath.Join("..", "examples", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := modelverify.CheckPolicy(p, modelverify.WithCacheDir(t.TempDir()), modelverify.WithRecordKeyFile(filepath.Join(t.TempDir(), "k"))); err != nil {
		t.Fatal(err)
	}
}

// With WithEnvironment(false), no variable the Verifier would read changes anything: not the
// endpoint, the cache, offline mode, the token, a proxy or the record key.
func TestWithEnvironmentFalseIgnoresEveryVariable(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	elsewhere := t.TempDir()
	shortKey := filepath.Join(elsewhere, "short.key")
	if err := os.WriteFile(shortKey, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.verifier() // the policy, made before the environment is set
	for k, v := range map[string]string{
		"HF_ENDPOINT": "http://127.0.0.1:1", "HF_HUB_CACHE": filepath.Join(elsewhere, "hub"), "HF_HOME": elsewhere,
		"HF_TOKEN": "hf_must_not_be_sent", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
		"HTTP_PROXY": "http://127.0.0.1:1", "HTTPS_PROXY": "http://127.0.0.1:1",
		modelverify.RecordKeyEnv: shortKey,
	} {
		t.Setenv(k, v)
	}
	if _, err := modelverify.NewVerifier(g.policy, modelverify.WithCacheDir(g.cacheDir)); err == nil {
		t.Fatal("with the environment, the short record key named by " + modelverify.RecordKeyEnv + " must fail")
	}
	if _, err := modelverify.NewVerifier(g.policy, modelverify.WithEnvironment(false)); err == nil ||
		!strings.Contains(err.Error(), "needs WithCacheDir") {
		t.Fatalf("no cache: %v", err)
	}
	v, err := modelverify.NewVerifier(g.policy, modelverify.WithEnvironment(false),
		modelverify.WithEndpoint(g.hub.URL), modelverify.WithCacheDir(g.cacheDir),
		modelverify.WithRecordKeyFile(filepath.Join(t.TempDir(), "record.key")), modelverify.WithAuditSink(modelverify.DiscardSink{}))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.CacheDir() != g.cacheDir {
		t.Errorf("cache %s, want %s", v.CacheDir(), g.cacheDir)
	}
	if _, err := v.Verify(context.Background(), "hf://acme/tiny@main"); err != nil {
		t.Fatalf("offline, a proxy or another endpoint leaked in: %v", err)
	}
	for _, r := range g.hub.Requests() {
		if r.Authorization != "" {
			t.Errorf("%s %s carried %q", r.Method, r.Path, r.Authorization)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(elsewhere, "hub")); len(entries) > 0 {
		t.Errorf("HF_HUB_CACHE was written: %v", entries)
	}
	// Without the endpoint option, the default is huggingface.co, not HF_ENDPOINT.
	p := *g.policy
	p.Endpoints = append(p.Endpoints, modelverify.Endpoint{URL: hub.DefaultEndpoint})
	v2, err := modelverify.NewVerifier(&p, modelverify.WithEnvironment(false), modelverify.WithCacheDir(g.cacheDir),
		modelverify.WithRecordKeyFile(filepath.Join(t.TempDir(), "record.key")), modelverify.WithAuditSink(modelverify.DiscardSink{}))
	if err != nil {
		t.Fatal(err)
	}
	v2.Close()
	if v2.Endpoint() != hub.DefaultEndpoint {
		t.Errorf("endpoint %s, want %s", v2.Endpoint(), hub.DefaultEndpoint)
	}
}

// An endpoint refusal says where the endpoint came from: the default because HF_ENDPOINT is
// unset, or HF_ENDPOINT itself. A publisher refusal lists the namespaces the policy claims.
func TestRefusalsSayWhereTheEndpointCameFromAndWhatThePolicyClaims(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	g.verifier()
	refusal := func(ref string, opts ...modelverify.Option) modelverify.Problem {
		t.Helper()
		v, err := modelverify.NewVerifier(g.policy, append(opts, modelverify.WithCacheDir(g.cacheDir),
			modelverify.WithAuditSink(modelverify.DiscardSink{}))...)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		_, err = v.Verify(context.Background(), ref)
		var r *modelverify.Refusal
		if !errors.As(err, &r) {
			t.Fatalf("%s: %v", ref, err)
		}
		return r.Problems[0]
	}
	t.Setenv("HF_ENDPOINT", "")
	p := refusal("hf://acme/tiny@main")
	if p.Reason != modelverify.ErrEndpointNotAllowed || p.Actual != hub.DefaultEndpoint ||
		!strings.Contains(p.Detail, "the default, https://huggingface.co, because HF_ENDPOINT is unset") {
		t.Errorf("default endpoint: %s", p)
	}
	t.Setenv("HF_ENDPOINT", "https://mirror.example.com")
	if p := refusal("hf://acme/tiny@main"); p.Reason != modelverify.ErrEndpointNotAllowed || !strings.Contains(p.Detail, "comes from HF_ENDPOINT") {
		t.Errorf("HF_ENDPOINT: %s", p)
	}
	p = refusal("hf://mallory/tiny@main", modelverify.WithEndpoint(g.hub.URL))
	if p.Reason != modelverify.ErrPublisherNotAllowed || p.Expected != "a repository in acme" ||
		p.Detail != `no publisher in the policy claims "mallory/tiny"; the policy claims acme` {
		t.Errorf("publisher: %s", p)
	}
}

// CheckPolicyFile reports the document's problems and those of the resources it names in one
// round: a typo does not hide an audit log that could not be written.
func TestCheckPolicyFileReportsDocumentAndResourcesTogether(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	doc := `apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints: [{url: https://huggingface.co}]
publishers: [{name: acme, namespace: [acme], requireSignature: false}]
audit: {path: missing/audit.jsonl}
`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	err := modelverify.CheckPolicyFile(path, modelverify.WithCacheDir(filepath.Join(dir, "cache")))
	probs := policyProblems(t, err)
	if len(probs) != 2 || !strings.Contains(probs["publishers[0].namespace"], `did you mean "namespaces"`) ||
		!strings.Contains(probs["audit.path"], filepath.Join(dir, "missing")+" does not exist") {
		t.Errorf("problems %v", probs)
	}
	var pe *modelverify.PolicyError
	if errors.As(err, &pe); pe.Source != path {
		t.Errorf("source %q", pe.Source)
	}
	// Fixed, it passes, as CheckPolicy does on the loaded policy.
	if err := os.WriteFile(path, []byte(strings.NewReplacer("namespace:", "namespaces:", "missing/", "").Replace(doc)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := modelverify.CheckPolicyFile(path, modelverify.WithCacheDir(filepath.Join(dir, "cache"))); err != nil {
		t.Fatal(err)
	}
}

// A download that does not match the Hub's own digest is refused under the gate's one
// sentinel for the idea, which the hub package's sentinel matches too.
func TestAHubDigestMismatchMatchesBothLayersSentinels(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key), hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultCorrupt, File: "model.safetensors"}))
	_, err := g.verifier().Verify(context.Background(), "acme/tiny")
	var de *hub.DigestError
	if !errors.Is(err, modelverify.ErrDigestMismatch) || !errors.Is(err, hub.ErrDigestMismatch) || !errors.As(err, &de) {
		t.Fatalf("got %v", err)
	}
}
