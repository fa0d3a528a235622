package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// object is one Kubernetes document, decoded generically.
type object map[string]any

func (o object) str(path ...string) string {
	s, _ := o.get(path...).(string)
	return s
}

func (o object) get(path ...string) any {
	var cur any = map[string]any(o)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (o object) list(path ...string) []any {
	l, _ := o.get(path...).([]any)
	return l
}

// loadManifests parses every YAML document under manifests/, by kind.
func loadManifests(t *testing.T) map[string]object {
	t.Helper()
	files, err := filepath.Glob("manifests/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	byKind := map[string]object{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitYAML(data) {
			var o object
			if err := yaml.UnmarshalStrict(doc, &o); err != nil {
				t.Fatalf("%s document %d: %v", file, i, err)
			}
			if o == nil {
				continue
			}
			kind := o.str("kind")
			if o.str("apiVersion") == "" || kind == "" || o.str("metadata", "name") == "" {
				t.Fatalf("%s document %d lacks apiVersion, kind or metadata.name", file, i)
			}
			if _, dup := byKind[kind]; dup {
				t.Fatalf("two %s documents", kind)
			}
			byKind[kind] = o
		}
	}
	for _, kind := range []string{"ClusterStorageContainer", "InferenceService", "ConfigMap", "ClusterPolicy"} {
		if byKind[kind] == nil {
			t.Fatalf("no %s among the manifests", kind)
		}
	}
	return byKind
}

// splitYAML splits a multi-document YAML stream on its "---" separator lines.
func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if bytes.Equal(bytes.TrimRight(line, " \r\n"), []byte("---")) {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	return append(docs, cur.Bytes())
}

// kyvernoAlternatives splits a Kyverno pattern value on its " | " alternatives.
func kyvernoAlternatives(pattern string) []string {
	var alts []string
	for _, a := range strings.Split(pattern, "|") {
		alts = append(alts, strings.TrimSpace(a))
	}
	return alts
}

// kyvernoMatch reports whether s matches a Kyverno wildcard pattern with alternatives: '*' is
// any run of characters (including '/'), '?' any one character.
func kyvernoMatch(pattern, s string) bool {
	for _, alt := range kyvernoAlternatives(pattern) {
		re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(alt)) + "$"
		if regexp.MustCompile(re).MatchString(s) {
			return true
		}
	}
	return false
}

func TestKyvernoMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"hf://acme-ml/* | hf://platform-team/*", "hf://acme-ml/llm:abc", true},
		{"hf://acme-ml/* | hf://platform-team/*", "hf://platform-team/x", true},
		{"hf://acme-ml/* | hf://platform-team/*", "hf://acme-ml-evil/x", false},
		{"hf://acme-ml/* | hf://platform-team/*", "s3://acme-ml/x", false},
		{"ghcr.io/echelongraph/*", "ghcr.io/echelongraph/x:v1", true},
		{"ghcr.io/echelongraph/*", "ghcr.io/echelongraph-evil/x", false},
	} {
		if got := kyvernoMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("kyvernoMatch(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

func TestManifestsAreConsistent(t *testing.T) {
	m := loadManifests(t)
	csc, isvc, cm, kyv := m["ClusterStorageContainer"], m["InferenceService"], m["ConfigMap"], m["ClusterPolicy"]

	// The ClusterStorageContainer: KServe finds the initializer by its container name, and
	// routes hf:// to it.
	if csc.str("apiVersion") != "serving.kserve.io/v1alpha1" || csc.str("spec", "workloadType") != "initContainer" {
		t.Errorf("ClusterStorageContainer: apiVersion %q, workloadType %q", csc.str("apiVersion"), csc.str("spec", "workloadType"))
	}
	if name := csc.str("spec", "container", "name"); name != "storage-initializer" {
		t.Errorf("container name %q: KServe recognises only storage-initializer", name)
	}
	var prefixes []string
	for _, f := range csc.list("spec", "supportedUriFormats") {
		prefixes = append(prefixes, object(f.(map[string]any)).str("prefix"))
	}
	if !slices.Equal(prefixes, []string{"hf://"}) {
		t.Errorf("supportedUriFormats prefixes %v, want exactly hf://", prefixes)
	}

	// Its environment takes the policy from the ConfigMap, by the name and key the ConfigMap has,
	// and stages downloads inside /mnt/models, which the initializer clears afterwards.
	env := map[string]object{}
	for _, e := range csc.list("spec", "container", "env") {
		o := object(e.(map[string]any))
		env[o.str("name")] = o
	}
	ref := env[policyEnv]
	if ref == nil {
		t.Fatalf("no %s in the initializer's environment", policyEnv)
	}
	cmName, cmKey := ref.str("valueFrom", "configMapKeyRef", "name"), ref.str("valueFrom", "configMapKeyRef", "key")
	if cmName != cm.str("metadata", "name") {
		t.Errorf("%s comes from ConfigMap %q, but the ConfigMap is %q", policyEnv, cmName, cm.str("metadata", "name"))
	}
	if opt, _ := ref.get("valueFrom", "configMapKeyRef", "optional").(bool); opt {
		t.Error("the policy ConfigMap is optional: a pod without it would start unverified")
	}
	policyText := cm.str("data", cmKey)
	if policyText == "" {
		t.Fatalf("ConfigMap %s has no key %q", cmName, cmKey)
	}
	if cache := env["HF_HUB_CACHE"].str("value"); cache != "" && !strings.HasPrefix(cache, "/mnt/models/") {
		t.Errorf("HF_HUB_CACHE %q is outside /mnt/models: the read-only root file system cannot hold it", cache)
	}
	if ro, _ := csc.get("spec", "container", "securityContext", "readOnlyRootFilesystem").(bool); !ro {
		t.Error("the initializer's root file system is writable")
	}

	// The policy in the ConfigMap is a valid policy.
	policy, err := modelverify.ParsePolicy([]byte(policyText))
	if err != nil {
		t.Fatalf("the ConfigMap's policy: %v", err)
	}

	// The InferenceService runs where the ConfigMap is, and names a model the policy claims.
	ns := isvc.str("metadata", "namespace")
	if ns == "" || ns != cm.str("metadata", "namespace") {
		t.Errorf("InferenceService in namespace %q, ConfigMap in %q: the pod cannot read it", ns, cm.str("metadata", "namespace"))
	}
	uri := isvc.str("spec", "predictor", "model", "storageUri")
	if !strings.HasPrefix(uri, "hf://") {
		t.Fatalf("storageUri %q is not hf://", uri)
	}
	r, err := hub.ParseReference(uri)
	if err != nil {
		t.Fatalf("storageUri: %v", err)
	}
	pub, err := policy.Publisher(r.RepoID())
	if err != nil {
		t.Fatalf("storageUri %s: %v", uri, err)
	}
	if pub.RequirePinnedRevision && !hub.IsCommit(r.Revision) {
		t.Errorf("publisher %s requires a pinned revision; storageUri %s has %q", pub.Name, uri, r.Revision)
	}

	// Kyverno: the storageUri rule admits exactly the policy's publishers, and this storageUri.
	var uriPattern, runtimePattern, imagePattern string
	var imageNamespaces []string
	for _, rule := range kyv.list("spec", "rules") {
		o := object(rule.(map[string]any))
		kinds := object(o.list("match", "any")[0].(map[string]any)).list("resources", "kinds")
		switch {
		case o.str("name") == "storage-uri-from-approved-publishers":
			uriPattern = o.str("validate", "pattern", "spec", "predictor", "model", "storageUri")
		case o.str("name") == "runtime-model-from-approved-publishers":
			// The modelverify runtime's model (examples/service/manifests) is held to the same publishers.
			if env := o.list("validate", "pattern", "spec", "predictor", "model", "env"); len(env) == 1 {
				runtimePattern = object(env[0].(map[string]any)).str("value")
			}
		case slices.Contains(kinds, any("Pod")):
			containers := o.list("validate", "pattern", "spec", "containers")
			imagePattern = object(containers[0].(map[string]any)).str("image")
			for _, n := range object(o.list("match", "any")[0].(map[string]any)).list("resources", "namespaces") {
				imageNamespaces = append(imageNamespaces, n.(string))
			}
			inits := o.list("validate", "pattern", "spec", "=(initContainers)")
			if len(inits) == 0 || object(inits[0].(map[string]any)).str("image") != imagePattern {
				t.Error("init containers (the storage initializer) are not held to the same registries")
			}
		}
	}
	if kyv.str("spec", "validationFailureAction") != "Enforce" {
		t.Errorf("Kyverno policy action %q, want Enforce", kyv.str("spec", "validationFailureAction"))
	}
	if runtimePattern != uriPattern {
		t.Errorf("Kyverno admits the runtime's models %q, but storageUri %q", runtimePattern, uriPattern)
	}
	if !kyvernoMatch(uriPattern, uri) {
		t.Errorf("Kyverno pattern %q refuses the example storageUri %s", uriPattern, uri)
	}
	var want []string
	for _, p := range policy.Publishers {
		for _, n := range p.Namespaces {
			if strings.Contains(n, "/") {
				want = append(want, "hf://"+n)
			} else {
				want = append(want, "hf://"+n+"/*")
			}
		}
	}
	got := kyvernoAlternatives(uriPattern)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("Kyverno admits %v; the policy's publishers are %v", got, want)
	}
	for _, p := range policy.Publishers {
		if !strings.Contains(object(kyv.list("spec", "rules")[0].(map[string]any)).str("validate", "message"), p.Name) {
			t.Errorf("the Kyverno message does not name publisher %s", p.Name)
		}
	}

	// The images rule covers the namespace, the initializer's image and the image the
	// Dockerfile builds.
	if !slices.Contains(imageNamespaces, ns) {
		t.Errorf("the image rule covers %v, not the models' namespace %s", imageNamespaces, ns)
	}
	image := csc.str("spec", "container", "image")
	if !kyvernoMatch(imagePattern, image) {
		t.Errorf("Kyverno refuses the initializer's own image %s", image)
	}
	dockerfile, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dockerfile), "-t "+image+" ") {
		t.Errorf("the Dockerfile's build command does not tag %s", image)
	}
	if !strings.Contains(string(dockerfile), "USER 65532:65532") || csc.get("spec", "container", "securityContext", "runAsUser") != float64(65532) {
		t.Error("the Dockerfile's user and the container's runAsUser differ")
	}
	if !strings.Contains(string(dockerfile), "./examples/kserve") {
		t.Error("the Dockerfile does not build this initializer")
	}
	for _, img := range []string{"kserve/huggingfaceserver:v0.15.0", "docker.io/kserve/huggingfaceserver:v0.15.0",
		"gcr.io/knative-releases/knative.dev/serving/cmd/queue@sha256:" + strings.Repeat("0", 64)} {
		if !kyvernoMatch(imagePattern, img) {
			t.Errorf("Kyverno refuses KServe's own image %s", img)
		}
	}
	for _, img := range []string{"docker.io/library/python:3", "evil.example.com/echelongraph/x", "ghcr.io/someone/x"} {
		if kyvernoMatch(imagePattern, img) {
			t.Errorf("Kyverno admits the unapproved image %s", img)
		}
	}
}
