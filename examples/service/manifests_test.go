package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// sharedCRDs is where the project's shared interop files keep the CRDs too large to copy here.
const sharedCRDs = "/work/shared/interop/k8s/crds"

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var o map[string]any
	if err := yaml.UnmarshalStrict(data, &o); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return o
}

func get(o any, path ...string) any {
	for _, p := range path {
		m, ok := o.(map[string]any)
		if !ok {
			return nil
		}
		o = m[p]
	}
	return o
}

func str(o any, path ...string) string {
	s, _ := get(o, path...).(string)
	return s
}

// crdSchema is the OpenAPI schema of a CRD's version.
func crdSchema(t *testing.T, path, version string) map[string]any {
	t.Helper()
	crd := readYAML(t, path)
	for _, v := range get(crd, "spec", "versions").([]any) {
		if str(v, "name") == version {
			return get(v, "schema", "openAPIV3Schema").(map[string]any)
		}
	}
	t.Fatalf("%s has no version %s", path, version)
	return nil
}

// validate checks v against an OpenAPI v3 structural schema as the API server does with
// strict field validation (kubectl apply --validate=strict): every field is known, every value
// has its type, every required field is there.
func validate(schema map[string]any, v any, path string) []string {
	if v == nil {
		return nil
	}
	if b, _ := schema["x-kubernetes-preserve-unknown-fields"].(bool); b && schema["properties"] == nil {
		return nil
	}
	if b, _ := schema["x-kubernetes-int-or-string"].(bool); b {
		switch v.(type) {
		case string, float64:
			return nil
		}
		return []string{fmt.Sprintf("%s: %v is neither an integer nor a string", path, v)}
	}
	var errs []string
	switch typ, _ := schema["type"].(string); typ {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, got %T", path, v)}
		}
		props, _ := schema["properties"].(map[string]any)
		extra, _ := schema["additionalProperties"].(map[string]any)
		for _, r := range asSlice(schema["required"]) {
			if _, ok := m[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required field %s is missing", path, r))
			}
		}
		for k, sub := range m {
			switch {
			case k == "metadata" && !strings.Contains(path, "."):
				// ObjectMeta is the API server's own, not the CRD schema's, to check.
			case props[k] != nil:
				errs = append(errs, validate(props[k].(map[string]any), sub, path+"."+k)...)
			case extra != nil:
				errs = append(errs, validate(extra, sub, path+"."+k)...)
			default:
				errs = append(errs, fmt.Sprintf("%s: unknown field %q", path, k))
			}
		}
	case "array":
		l, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an array, got %T", path, v)}
		}
		items, _ := schema["items"].(map[string]any)
		for i, e := range l {
			errs = append(errs, validate(items, e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case "string":
		if _, ok := v.(string); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a string, got %v", path, v))
		}
	case "integer", "number":
		if _, ok := v.(float64); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a number, got %v", path, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a boolean, got %v", path, v))
		}
	}
	return errs
}

func asSlice(v any) []any { l, _ := v.([]any); return l }

func TestValidateCatchesWhatTheAPIServerRefuses(t *testing.T) {
	schema := crdSchema(t, "testdata/crds/serving.kserve.io_servingruntimes.yaml", "v1alpha1")
	for _, doc := range []string{
		`{"spec":{"containers":[{"name":"x","imagePullPolicy":"IfNotPresent","bogus":1}]}}`,
		`{"spec":{"containers":[{"name":"x","ports":[{"containerPort":"8080"}]}]}}`,
		`{"spec":{"supportedModelFormats":[{"name":"x"}]}}`,
	} {
		var o map[string]any
		yaml.Unmarshal([]byte(doc), &o)
		if errs := validate(schema, o, ""); len(errs) == 0 {
			t.Errorf("%s passed", doc)
		}
	}
}

// TestServingRuntimeManifestIsValidAndProbesThisServer checks the runtime's manifest against
// KServe's CRD, and that what it asks of the container is what this program does.
func TestServingRuntimeManifestIsValidAndProbesThisServer(t *testing.T) {
	rt := readYAML(t, "manifests/serving-runtime.yaml")
	schema := crdSchema(t, "testdata/crds/serving.kserve.io_servingruntimes.yaml", "v1alpha1")
	for _, e := range validate(schema, rt, "ServingRuntime") {
		t.Error(e)
	}
	if str(rt, "apiVersion") != "serving.kserve.io/v1alpha1" || str(rt, "kind") != "ServingRuntime" {
		t.Fatalf("%s %s", str(rt, "apiVersion"), str(rt, "kind"))
	}
	if !slices.Contains(asSlice(get(rt, "spec", "protocolVersions")), any("v2")) {
		t.Error("the runtime does not declare the Open Inference Protocol (v2)")
	}
	if disabled, _ := get(rt, "spec", "storageHelper", "disabled").(bool); !disabled {
		t.Error("KServe's storage initializer would run too: the runtime pulls and verifies the model itself")
	}
	c := asSlice(get(rt, "spec", "containers"))[0]
	if str(c, "name") != "kserve-container" {
		t.Errorf("container %q: KServe merges the predictor into kserve-container", str(c, "name"))
	}
	var port float64
	var addr string
	args := map[string]string{}
	for _, a := range asSlice(get(c, "args")) {
		k, v, _ := strings.Cut(a.(string), "=")
		args[k] = v
	}
	addr = args["--http-address"]
	if args["--model-name"] != "{{.Name}}" || args["--policy"] == "" || addr == "" {
		t.Errorf("args %v: want --model-name={{.Name}}, --policy and --http-address", args)
	}
	for _, p := range asSlice(get(c, "ports")) {
		port, _ = get(p, "containerPort").(float64)
	}
	if !strings.HasSuffix(addr, fmt.Sprintf(":%d", int(port))) {
		t.Errorf("the server listens on %s, the container port is %v", addr, port)
	}
	for probe, path := range map[string]string{"livenessProbe": "/v2/health/live", "readinessProbe": "/v2/health/ready"} {
		if str(c, probe, "httpGet", "path") != path || get(c, probe, "httpGet", "port") != port {
			t.Errorf("%s asks %v, want GET %s on port %v", probe, get(c, probe), path, port)
		}
	}
	// The image is the one the Dockerfile builds from this program, as the same user.
	dockerfile, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if image := str(c, "image"); !strings.Contains(string(dockerfile), "-t "+image+" ") || !strings.Contains(string(dockerfile), "./examples/service") {
		t.Errorf("the Dockerfile does not build %s from ./examples/service", image)
	}
	if !strings.Contains(string(dockerfile), "USER 65532:65532") || get(c, "securityContext", "runAsUser") != float64(65532) {
		t.Error("the Dockerfile's user and the container's runAsUser differ")
	}
	// The flags it passes are this program's.
	for k := range args {
		if !strings.Contains(mainSource(t), `"`+strings.TrimPrefix(k, "--")+`"`) {
			t.Errorf("the runtime passes %s, which the program does not define", k)
		}
	}

	// The policy it mounts is the storage initializer's ConfigMap, by name, key and namespace.
	cm := readYAML(t, "../kserve/manifests/policy-configmap.yaml")
	var mounted map[string]any
	for _, v := range asSlice(get(rt, "spec", "volumes")) {
		if str(v, "configMap", "name") != "" {
			mounted = v.(map[string]any)
		}
	}
	if mounted == nil || str(mounted, "configMap", "name") != str(cm, "metadata", "name") ||
		str(rt, "metadata", "namespace") != str(cm, "metadata", "namespace") {
		t.Fatalf("the runtime mounts %v; the policy is ConfigMap %s/%s", mounted, str(cm, "metadata", "namespace"), str(cm, "metadata", "name"))
	}
	var mountPath string
	for _, m := range asSlice(get(c, "volumeMounts")) {
		if str(m, "name") == str(mounted, "name") {
			mountPath = str(m, "mountPath")
		}
	}
	item := asSlice(get(mounted, "configMap", "items"))[0]
	if filepath.Join(mountPath, str(item, "path")) != args["--policy"] || str(cm, "data", str(item, "key")) == "" {
		t.Errorf("--policy %s, but the ConfigMap's key %s is mounted at %s", args["--policy"], str(item, "key"), filepath.Join(mountPath, str(item, "path")))
	}
	// A read-only root needs the cache on a volume.
	var cache string
	for _, e := range asSlice(get(c, "env")) {
		if str(e, "name") == "HF_HUB_CACHE" {
			cache = str(e, "value")
		}
	}
	found := false
	for _, m := range asSlice(get(c, "volumeMounts")) {
		found = found || (cache != "" && strings.HasPrefix(cache, str(m, "mountPath")) && str(m, "name") != str(mounted, "name"))
	}
	if !found {
		t.Errorf("HF_HUB_CACHE %q is not on a writable volume", cache)
	}
}

// TestInferenceServiceUsesTheRuntimeWithAModelThePolicyAndAdmissionAccept ties the example
// InferenceService to the runtime, the policy and the Kyverno rule.
func TestInferenceServiceUsesTheRuntimeWithAModelThePolicyAndAdmissionAccept(t *testing.T) {
	isvc := readYAML(t, "manifests/inference-service.yaml")
	rt := readYAML(t, "manifests/serving-runtime.yaml")
	model := get(isvc, "spec", "predictor", "model")
	if str(model, "runtime") != str(rt, "metadata", "name") || str(isvc, "metadata", "namespace") != str(rt, "metadata", "namespace") {
		t.Errorf("runtime %q in %q; the ServingRuntime is %q in %q", str(model, "runtime"), str(isvc, "metadata", "namespace"),
			str(rt, "metadata", "name"), str(rt, "metadata", "namespace"))
	}
	formats := asSlice(get(rt, "spec", "supportedModelFormats"))
	if str(model, "modelFormat", "name") != str(formats[0], "name") {
		t.Errorf("model format %q; the runtime serves %q", str(model, "modelFormat", "name"), str(formats[0], "name"))
	}
	if get(model, "storageUri") != nil || get(model, "args") != nil {
		t.Error("the model is named by MODELVERIFY_MODEL alone")
	}
	var ref string
	for _, e := range asSlice(get(model, "env")) {
		if str(e, "name") == modelEnv {
			ref = str(e, "value")
		}
	}
	r, err := hub.ParseReference(ref)
	if err != nil {
		t.Fatalf("%s %q: %v", modelEnv, ref, err)
	}
	cm := readYAML(t, "../kserve/manifests/policy-configmap.yaml")
	policy, err := modelverify.ParsePolicy([]byte(str(cm, "data", "policy.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := policy.Publisher(r.RepoID())
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	if pub.RequirePinnedRevision && !hub.IsCommit(r.Revision) {
		t.Errorf("publisher %s requires a pinned commit; %s has %q", pub.Name, ref, r.Revision)
	}

	// The Kyverno ValidatingPolicy (generated by `verifier policy export kyverno`, run in
	// Kyverno by examples/verifier's tests) checks MODELVERIFY_MODEL, refuses arguments on this
	// runtime, and admits its model.
	data, err := os.ReadFile("../kserve/manifests/kyverno-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var vp map[string]any
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		if str(o, "metadata", "name") == "modelverify-approved-model-sources" {
			vp = o
		}
	}
	if vp == nil {
		t.Fatal("no ValidatingPolicy for model locations")
	}
	vars := map[string]string{}
	for _, v := range asSlice(get(vp, "spec", "variables")) {
		vars[str(v, "name")] = str(v, "expression")
	}
	if !strings.Contains(vars["refusedEnv"], "'"+modelEnv+"'") {
		t.Errorf("the Kyverno policy does not check %s: %q", modelEnv, vars["refusedEnv"])
	}
	if !strings.Contains(fmt.Sprint(get(vp, "spec", "validations")), "'"+str(rt, "metadata", "name")+"'") {
		t.Errorf("the Kyverno policy's argument rule does not name runtime %s", str(rt, "metadata", "name"))
	}
	raw := func(e string) *regexp.Regexp {
		return regexp.MustCompile(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(e), "r'"), "'"))
	}
	admitted := raw(vars["grammar"]).MatchString(ref)
	if admitted {
		admitted = false
		for _, m := range regexp.MustCompile(`'admit': (r'[^']*')`).FindAllStringSubmatch(vars["publishers"], -1) {
			admitted = admitted || raw(m[1]).MatchString(ref)
		}
	}
	if !admitted {
		t.Errorf("Kyverno refuses the example model %s", ref)
	}

	// Against KServe's own InferenceService CRD, where the shared copy is available.
	if _, err := os.Stat(filepath.Join(sharedCRDs, "serving.kserve.io_inferenceservices.yaml")); err != nil {
		t.Skip("KServe's InferenceService CRD is not available here")
	}
	schema := crdSchema(t, filepath.Join(sharedCRDs, "serving.kserve.io_inferenceservices.yaml"), "v1beta1")
	for _, e := range validate(schema, isvc, "InferenceService") {
		t.Error(e)
	}
}

func mainSource(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
