package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/echelongraph/go-modelverify/internal/testtools"
)

// The admission policies run in the real engines: the kyverno CLI, gator and kubeconform, which
// .ci/tools.sh builds into a cache keyed by version. Without a binary its test skips, saying how
// to build it; CI sets MODELVERIFY_REQUIRE_ENGINES=1, which turns the skip into a failure.

// engineTool is the path of a tool .ci/tools.sh built; without it the test skips (or fails in CI).
func engineTool(t *testing.T, name string) string {
	t.Helper()
	return testtools.Find(t, name)
}

// runTool runs an engine and returns its combined output and whether it exited 0.
func runTool(t *testing.T, dir, bin string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return string(out), err == nil
}

// suiteObjects are the sample objects every engine suite must cover, with whether each must be
// admitted (no expected finding).
func suiteObjects(t *testing.T) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob("../admission/tests/objects/*.yaml")
	objs := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		data, _ := os.ReadFile(f)
		var o struct {
			Metadata struct {
				Name        string
				Annotations map[string]string
			}
		}
		if err := yaml.Unmarshal(data, &o); err != nil || o.Metadata.Name != name {
			t.Fatalf("%s: object named %q (%v): file and object names must agree", f, o.Metadata.Name, err)
		}
		objs[name] = o.Metadata.Annotations[expectAnnotation] == ""
		if objs[name] != strings.HasPrefix(name, "good-") {
			t.Fatalf("%s: the name says %s but it expects %q", f, name[:4], o.Metadata.Annotations[expectAnnotation])
		}
	}
	if len(objs) < 20 {
		t.Fatalf("%d sample objects", len(objs))
	}
	return objs
}

// TestEngineSuitesCoverEveryObject checks, without any engine, that the Kyverno and gator
// suites expect of each sample object what its annotation (and so the scanner) does.
func TestEngineSuitesCoverEveryObject(t *testing.T) {
	objs := suiteObjects(t)
	for _, dir := range []string{"kyverno", "kyverno-clusterpolicy"} {
		data, err := os.ReadFile(filepath.Join("../admission/tests", dir, "kyverno-test.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var suite struct {
			Resources []string
			Results   []struct {
				Resources []string
				Result    string
			}
		}
		if err := yaml.Unmarshal(data, &suite); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, r := range suite.Results {
			for _, name := range r.Resources {
				good, ok := objs[name]
				if !ok || good != (r.Result == "pass") {
					t.Errorf("%s: %s expected to %s", dir, name, r.Result)
				}
				seen[name] = true
			}
		}
		for name := range objs {
			// good-pod-unrelated is no model-serving pod: no policy matches it, so no
			// result can name it. The gator suite and the scanner check it is admitted.
			if !seen[name] && name != "good-pod-unrelated" {
				t.Errorf("%s: no result for %s", dir, name)
			}
			if !strings.Contains(string(data), "../objects/"+name+".yaml") {
				t.Errorf("%s: %s is not among the resources", dir, name)
			}
		}
	}
	data, err := os.ReadFile("../admission/tests/gatekeeper/suite.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Tests []struct {
			Cases []struct {
				Name, Object string
				Assertions   []struct{ Violations string }
			}
		}
	}
	if err := yaml.Unmarshal(data, &suite); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range suite.Tests[0].Cases {
		good, ok := objs[c.Name]
		if !ok || c.Object != "../objects/"+c.Name+".yaml" || good != (c.Assertions[0].Violations == "no") {
			t.Errorf("gatekeeper: case %s (%s) expects violations %s", c.Name, c.Object, c.Assertions[0].Violations)
		}
		seen[c.Name] = true
	}
	if len(seen) != len(objs) {
		t.Errorf("gatekeeper: %d cases for %d objects", len(seen), len(objs))
	}
}

func TestAdmissionEnginesKyverno(t *testing.T) {
	bin := engineTool(t, "kyverno")
	objs := suiteObjects(t)
	for _, dir := range []string{"kyverno", "kyverno-clusterpolicy"} {
		out, ok := runTool(t, "../admission/tests", bin, "test", dir, "--detailed-results")
		if !ok {
			t.Errorf("kyverno test %s failed:\n%s", dir, out)
			continue
		}
		// Every object but the one no policy matches is a passing test: a result the CLI
		// skipped would show as fewer.
		want := len(objs) - 1
		if m := regexp.MustCompile(`(\d+) tests? passed and 0 tests? failed`).FindStringSubmatch(out); m == nil || m[1] != strconv.Itoa(want) {
			t.Errorf("kyverno test %s: want %d passing tests:\n%s", dir, want, out)
		}
	}
}

func TestAdmissionEnginesGatekeeper(t *testing.T) {
	bin := engineTool(t, "gator")
	out, ok := runTool(t, "../admission/tests", bin, "verify", "gatekeeper/...", "-v")
	if !ok {
		t.Fatalf("gator verify failed:\n%s", out)
	}
	for name := range suiteObjects(t) {
		if !regexp.MustCompile(`(?m)^\s*--- PASS: ` + regexp.QuoteMeta(name) + `\s`).MatchString(out) {
			t.Errorf("gator verify did not pass case %s:\n%s", name, out)
		}
	}
}

// TestAdmissionManifestsKubeconform validates the generated policies, the KServe manifests and
// the sample objects against JSON schemas made from the Kyverno and KServe CRDs, strictly: a
// misspelt or misplaced field fails.
func TestAdmissionManifestsKubeconform(t *testing.T) {
	bin := engineTool(t, "kubeconform")
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed to make JSON schemas from the CRDs")
	}
	crds := t.TempDir()
	gzs, _ := filepath.Glob("../admission/tests/crds/*.yaml.gz")
	if len(gzs) == 0 {
		t.Fatal("no CRDs")
	}
	args := []string{filepath.Join(filepath.Dir(bin), "openapi2jsonschema.py")}
	for _, gz := range gzs {
		f, err := os.Open(gz)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(crds, strings.TrimSuffix(filepath.Base(gz), ".gz"))
		writeFile(t, dst, data)
		args = append(args, dst)
	}
	schemas := t.TempDir()
	cmd := exec.Command("python3", args...)
	cmd.Dir = schemas
	cmd.Env = append(os.Environ(), "FILENAME_FORMAT={kind}_{version}")
	if out, err := cmd.CombinedOutput(); err != nil {
		if bytes.Contains(out, []byte("No module named 'yaml'")) && os.Getenv("MODELVERIFY_REQUIRE_ENGINES") == "" {
			t.Skip("openapi2jsonschema.py needs PyYAML (apt-get install python3-yaml)")
		}
		t.Fatalf("openapi2jsonschema.py: %v\n%s", err, out)
	}
	for _, kind := range []string{"inferenceservice_v1beta1", "validatingpolicy_v1", "imagevalidatingpolicy_v1", "clusterpolicy_v1", "clusterstoragecontainer_v1alpha1", "servingruntime_v1alpha1"} {
		if _, err := os.Stat(filepath.Join(schemas, kind+".json")); err != nil {
			t.Fatalf("no schema %s.json from the CRDs", kind)
		}
	}
	out, ok := runTool(t, ".", bin, "-strict", "-summary", "-output", "text",
		"-schema-location", filepath.Join(schemas, "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"),
		"-ignore-missing-schemas",
		"../admission", "../kserve/manifests", "testdata/workloads")
	if !ok {
		t.Fatalf("kubeconform -strict:\n%s", out)
	}
	m := regexp.MustCompile(`Valid: (\d+), Invalid: 0, Errors: 0`).FindStringSubmatch(out)
	// The policies (2 ValidatingPolicies, a ClusterPolicy, a ConstraintTemplate is no CRD
	// here), the KServe manifests and every InferenceService sample must have been checked.
	if m == nil || atoiOr0(m[1]) < 25 {
		t.Errorf("kubeconform validated too little:\n%s", out)
	}
	// A misspelt field fails: the check is strict, not merely parsing.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, bad, []byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\nspec:\n  transformer:\n    storageUri: s3://x\n"))
	if out, ok := runTool(t, ".", bin, "-strict", "-schema-location", filepath.Join(schemas, "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"), bad); ok {
		t.Errorf("kubeconform -strict admits spec.transformer.storageUri:\n%s", out)
	}
}

func atoiOr0(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
