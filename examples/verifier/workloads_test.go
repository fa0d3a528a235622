package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// The objects every scan-workloads test reads: the engine suites' objects (InferenceServices
// and Pods, every bypass of issue 13) and the other kinds (Deployments, StatefulSets,
// DaemonSets, Jobs, CronJobs, ServingRuntimes, ClusterStorageContainers, a List).
var workloadInputs = []string{"../admission/tests/objects", "testdata/workloads"}

// expectAnnotation lists, on each sample object, the findings (rule and field) it must raise,
// separated by ';'; empty for an object that must raise none.
const expectAnnotation = "modelverify.echelongraph.io/expect"

// scanArgs is scan-workloads with the shipped policies' rules.
func scanArgs(t *testing.T, extra ...string) []string {
	args := generateArgs(t)
	out := []string{"scan-workloads", "--policy", "../policy.yaml"}
	for _, r := range flagValues(args, "--image-registry") {
		out = append(out, "--image-registry", r)
	}
	for _, n := range flagValues(args, "--namespace") {
		out = append(out, "--namespace", n)
	}
	return append(out, extra...)
}

// sampleObject is one object of the inputs with the findings it expects.
type sampleObject struct {
	kind, name string
	expect     []string // "rule field"
}

func loadSamples(t *testing.T) []sampleObject {
	t.Helper()
	var out []sampleObject
	add := func(o map[string]any) {
		meta, _ := o["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		e, ok := ann[expectAnnotation].(string)
		if !ok {
			t.Fatalf("%v %v has no %s annotation", o["kind"], meta["name"], expectAnnotation)
		}
		var expect []string
		for _, x := range strings.Split(e, ";") {
			if x = strings.TrimSpace(x); x != "" {
				expect = append(expect, x)
			}
		}
		out = append(out, sampleObject{o["kind"].(string), meta["name"].(string), expect})
	}
	for _, dir := range workloadInputs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range bytes.Split(data, []byte("\n---\n")) {
				var o map[string]any
				if err := yaml.Unmarshal(doc, &o); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				if o["kind"] == "List" {
					for _, it := range o["items"].([]any) {
						add(it.(map[string]any))
					}
					continue
				}
				add(o)
			}
		}
	}
	return out
}

func TestScanWorkloadsFindsExactlyWhatThePolicyRefuses(t *testing.T) {
	samples := loadSamples(t)
	kinds := map[string]int{}
	bad := 0
	for _, s := range samples {
		kinds[s.kind]++
		if len(s.expect) > 0 {
			bad++
		}
	}
	// The proof the issue asks for: 20+ objects of every workload kind, good and bad.
	for _, k := range []string{"Pod", "Deployment", "StatefulSet", "Job", "CronJob", "InferenceService", "ServingRuntime", "ClusterStorageContainer"} {
		if kinds[k] == 0 {
			t.Errorf("no %s among the samples", k)
		}
	}
	if len(samples) < 20 || bad == 0 || bad == len(samples) {
		t.Fatalf("%d samples, %d bad: want 20+, good and bad", len(samples), bad)
	}

	out, _ := wantExit(t, 1, ".", scanArgs(t, append([]string{"--format", "json"}, workloadInputs...)...)...)
	var res struct {
		Objects  int
		Findings []finding
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Objects != len(samples) {
		t.Errorf("scanned %d objects, the inputs hold %d", res.Objects, len(samples))
	}
	got := map[string][]string{}
	for _, f := range res.Findings {
		got[f.Kind+"/"+f.Name] = append(got[f.Kind+"/"+f.Name], f.Rule+" "+f.Field)
		if f.Message == "" || f.Remediation == "" || f.File == "" || f.Line == 0 || f.Severity == "" {
			t.Errorf("incomplete finding %+v", f)
		}
	}
	for _, s := range samples {
		key := s.kind + "/" + s.name
		g := got[key]
		slices.Sort(g)
		want := slices.Clone(s.expect)
		slices.Sort(want)
		if !slices.Equal(g, want) {
			t.Errorf("%s: findings %q, want %q", key, g, want)
		}
	}
}

func TestScanWorkloadsReadsStdinAndExitsByWhatItFinds(t *testing.T) {
	run := func(stdin string, extra ...string) (string, string, int) {
		cmd := exec.Command(verifierBin, scanArgs(t, extra...)...)
		cmd.Env = testEnv(t)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return out.String(), errb.String(), code
	}
	good, _ := os.ReadFile("../admission/tests/objects/good-isvc-pinned.yaml")
	bad, _ := os.ReadFile("../admission/tests/objects/bad-isvc-transformer-s3.yaml")
	if out, errOut, code := run(string(good), "-"); code != 0 || !strings.Contains(out, "1 object scanned: every model location and image is admitted") {
		t.Errorf("good object: exit %d, %q %q", code, out, errOut)
	}
	out, _, code := run(string(good)+"---\n"+string(bad), "-")
	if code != 1 || !strings.Contains(out, "stdin:") || !strings.Contains(out, "spec.transformer.storageUris[0].uri") || !strings.Contains(out, "fix: ") {
		t.Errorf("bad object: exit %d, %q", code, out)
	}
	if _, errOut, code := run("kind: Pod\nspec: [\n", "-"); code != 2 || !strings.Contains(errOut, "stdin: document 1") {
		t.Errorf("broken YAML: exit %d, %q; want 2 naming the document", code, errOut)
	}
	if _, errOut, code := run("", "--format", "xml", "-"); code != 2 || !strings.Contains(errOut, "--format") {
		t.Errorf("unknown format: exit %d, %q", code, errOut)
	}
	if _, _, code := run("", "/nonexistent"); code != 2 {
		t.Errorf("missing file: exit %d, want 2", code)
	}
}

func TestScanWorkloadsSARIFValidatesAgainstTheSchema(t *testing.T) {
	out, _ := wantExit(t, 1, ".", scanArgs(t, append([]string{"--format", "sarif"}, workloadInputs...)...)...)
	clean, _ := wantExit(t, 0, ".", scanArgs(t, "--format", "sarif", "../admission/tests/objects/good-pod-predictor.yaml")...)

	c := jsonschema.NewCompiler()
	schema, err := c.Compile("testdata/sarif/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{"findings": out, "clean": clean} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(v); err != nil {
			t.Errorf("%s: SARIF output does not validate: %v", name, err)
		}
	}
	var log struct {
		Version string
		Runs    []struct {
			Tool struct {
				Driver struct{ Rules []struct{ ID string } }
			}
			Results []struct {
				RuleID    string
				RuleIndex int
				Level     string
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine int }
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) == 0 {
		t.Fatalf("SARIF log: version %q, %d runs", log.Version, len(log.Runs))
	}
	rules := log.Runs[0].Tool.Driver.Rules
	for _, r := range log.Runs[0].Results {
		if r.RuleIndex >= len(rules) || rules[r.RuleIndex].ID != r.RuleID {
			t.Errorf("result %s points at rule %d", r.RuleID, r.RuleIndex)
		}
		loc := r.Locations[0].PhysicalLocation
		if loc.ArtifactLocation.URI == "" || loc.Region.StartLine == 0 {
			t.Errorf("result %s has no file and line", r.RuleID)
		}
		if (r.RuleID == "image-unpinned") != (r.Level == "note") {
			t.Errorf("result %s has level %s", r.RuleID, r.Level)
		}
	}
}

// TestScanWorkloadsFollowsAnchorsAndMergeKeys: Kubernetes' YAML decoder expands aliases and
// merge keys, so a container or model location behind one is as real as any other.
func TestScanWorkloadsFollowsAnchorsAndMergeKeys(t *testing.T) {
	doc := `base: &evil
  name: server
  image: quay.io/evil/server:1
---
apiVersion: v1
kind: Pod
metadata: {name: anchored, namespace: models}
spec:
  containers:
    - *evil
    - <<: *evil
      name: merged
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: merged-isvc, namespace: models}
spec:
  predictor:
    model:
      <<: {storageUri: "s3://bucket/model"}
      modelFormat: {name: huggingface}
`
	path := filepath.Join(t.TempDir(), "anchors.yaml")
	writeFile(t, path, []byte(doc))
	out, _ := wantExit(t, 1, ".", scanArgs(t, "--format", "json", path)...)
	var res struct{ Findings []finding }
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.Findings {
		got = append(got, f.Name+" "+f.Field)
	}
	want := []string{"anchored spec.containers[0].image", "anchored spec.containers[1].image", "merged-isvc spec.predictor.model.storageUri"}
	if !slices.Equal(got, want) {
		t.Errorf("findings %q, want %q", got, want)
	}
}
