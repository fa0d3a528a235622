package main

import (
	"bytes"
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
			if kind == "ValidatingPolicy" {
				// Two of them: the model locations and the images.
				kind += "/" + o.str("metadata", "name")
			}
			if _, dup := byKind[kind]; dup {
				t.Fatalf("two %s documents", kind)
			}
			byKind[kind] = o
		}
	}
	for _, kind := range []string{"ClusterStorageContainer", "InferenceService", "ConfigMap",
		"ValidatingPolicy/modelverify-approved-model-sources", "ValidatingPolicy/modelverify-approved-images"} {
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

// celVariable is the expression of a ValidatingPolicy's variable.
func celVariable(t *testing.T, vp object, name string) string {
	t.Helper()
	for _, v := range vp.list("spec", "variables") {
		if o := object(v.(map[string]any)); o.str("name") == name {
			return o.str("expression")
		}
	}
	t.Fatalf("ValidatingPolicy %s has no variable %s", vp.str("metadata", "name"), name)
	return ""
}

// rawString is the content of a CEL raw string literal r'...'.
func rawString(t *testing.T, expr string) string {
	t.Helper()
	s, ok := strings.CutPrefix(strings.TrimSpace(expr), "r'")
	if !ok || !strings.HasSuffix(s, "'") {
		t.Fatalf("%q is not a CEL raw string", expr)
	}
	return strings.TrimSuffix(s, "'")
}

func TestManifestsAreConsistent(t *testing.T) {
	m := loadManifests(t)
	csc, isvc, cm := m["ClusterStorageContainer"], m["InferenceService"], m["ConfigMap"]
	models, images := m["ValidatingPolicy/modelverify-approved-model-sources"], m["ValidatingPolicy/modelverify-approved-images"]

	// The ClusterStorageContainer: KServe finds the initializer by its container name, and
	// routes hf:// and oci:// to it: exactly the schemes the initializer takes (KServe's fetch
	// mode never consults a ClusterStorageContainer, and rewrites oci+fetch:// to oci://).
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
	if !slices.Equal(prefixes, []string{"hf://", "oci://"}) {
		t.Errorf("supportedUriFormats prefixes %v, want exactly hf:// and oci://", prefixes)
	}
	for _, uri := range []string{"hf://acme-ml/llm", "oci://ghcr.io/acme-ml/models/llm@sha256:" + strings.Repeat("ab", 32)} {
		if msg, err := checkSource(uri); msg != "" {
			t.Errorf("the ClusterStorageContainer routes %s to the initializer, which refuses it: %s %v", uri, msg, err)
		}
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

	// The policy approves the OCI publishers' repositories, over HTTPS, in a registry it lists.
	ociPublishers := 0
	for _, p := range policy.Publishers {
		for _, claim := range p.OCI {
			ociPublishers++
			host, repo, _ := strings.Cut(claim, "/")
			reg, ok := policy.Registry(host)
			if !ok {
				t.Errorf("publisher %s claims %s in a registry the policy does not list", p.Name, claim)
				continue
			}
			example := strings.ReplaceAll(repo, "*", "model")
			if !reg.AllowsRepository(example) {
				t.Errorf("publisher %s claims %s, but registry %s does not allow repository %s", p.Name, claim, host, example)
			}
			if got, err := policy.OCIPublisher(host + "/" + example); err != nil || got.Name != p.Name {
				t.Errorf("%s/%s: publisher %v (%v), want %s", host, example, got, err, p.Name)
			}
		}
	}
	if ociPublishers == 0 || len(policy.Registries) == 0 {
		t.Error("the ConfigMap's policy approves no OCI registry or publisher: every oci:// model would be refused")
	}
	for _, r := range policy.Registries {
		if r.PlainHTTP {
			t.Errorf("registry %s is reached over plain HTTP in the cluster's policy", r.Host)
		}
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

	// Kyverno (the ValidatingPolicies that `verifier policy export kyverno` generates from
	// examples/policy.yaml; examples/verifier tests that they are its output and runs them in
	// Kyverno): they admit this storageUri, every publisher of the ConfigMap's policy with the
	// same revision pinning, and the images this example runs.
	for _, vp := range []object{models, images} {
		if a := fmt.Sprint(vp.get("spec", "validationActions")); a != "[Deny]" || vp.str("spec", "failurePolicy") != "Fail" {
			t.Errorf("ValidatingPolicy %s: validationActions %s, failurePolicy %q; want [Deny] and Fail", vp.str("metadata", "name"), a, vp.str("spec", "failurePolicy"))
		}
	}
	pubs := celVariable(t, models, "publishers")
	grammar := regexp.MustCompile(rawString(t, celVariable(t, models, "grammar")))
	// Each entry admits a location its 'admit' pattern matches, unless a more specific claim
	// shadows it; an oci:// entry also wants its registry's repository list ('registry').
	field := func(entry, name string) string {
		if m := regexp.MustCompile(`'` + name + `': r'([^']*)'`).FindStringSubmatch(entry); m != nil {
			return m[1]
		}
		return ""
	}
	admits := func(uri string) bool {
		if !grammar.MatchString(uri) {
			return false
		}
		for _, entry := range regexp.MustCompile(`(?m)\{'publisher'.*$`).FindAllString(pubs, -1) { // one entry per line
			admit, shadow, reg := field(entry, "admit"), field(entry, "shadow"), field(entry, "registry")
			if admit == "" || !regexp.MustCompile(admit).MatchString(uri) {
				continue
			}
			if shadow != "" && regexp.MustCompile(shadow).MatchString(uri) {
				continue
			}
			if reg != "" && !regexp.MustCompile(reg).MatchString(uri) {
				continue
			}
			return true
		}
		return false
	}
	if !admits(uri) {
		t.Errorf("the Kyverno policy refuses the example storageUri %s", uri)
	}
	for _, p := range policy.Publishers {
		for _, ns := range p.Namespaces {
			if strings.ContainsAny(ns, "/*?[") {
				continue
			}
			pinned := "hf://" + ns + "/model@" + strings.Repeat("ab", 20)
			if !admits(pinned) {
				t.Errorf("the Kyverno policy refuses publisher %s's %s", p.Name, pinned)
			}
			if unpinned := "hf://" + ns + "/model"; admits(unpinned) == p.RequirePinnedRevision {
				t.Errorf("the Kyverno policy admits %s: %v, but publisher %s requirePinnedRevision is %v", unpinned, !p.RequirePinnedRevision, p.Name, p.RequirePinnedRevision)
			}
		}
	}
	// And every OCI claim of the ConfigMap's policy, pinned by digest, and by tag where the
	// publisher does not require a digest.
	for _, p := range policy.Publishers {
		for _, claim := range p.OCI {
			repo := "oci://" + strings.ReplaceAll(claim, "*", "model")
			if pinned := repo + "@sha256:" + strings.Repeat("ab", 32); !admits(pinned) {
				t.Errorf("the Kyverno policy refuses publisher %s's %s, which the initializer would verify", p.Name, pinned)
			}
			if tagged := repo + ":v1"; admits(tagged) == p.RequireDigest {
				t.Errorf("the Kyverno policy admits %s: %v, but publisher %s requireDigest is %v", tagged, !p.RequireDigest, p.Name, p.RequireDigest)
			}
		}
	}
	for _, bad := range []string{"hf://evil-org/x", "s3://acme-ml/x", "hf://acme-ml/../evil-org/x", "hf://acme-ml-evil/x",
		"oci://ghcr.io/evil/model@sha256:" + strings.Repeat("ab", 32), "oci://ghcr.io/acme-ml/models/../../evil/m@sha256:" + strings.Repeat("ab", 32)} {
		if admits(bad) {
			t.Errorf("the Kyverno policy admits %s", bad)
		}
	}

	// The images rule covers the namespace, the initializer's image and the image the
	// Dockerfile builds.
	if cond := fmt.Sprint(images.get("spec", "matchConditions")); !strings.Contains(cond, "'"+ns+"'") {
		t.Errorf("the image rule's scope %s does not cover the models' namespace %s", cond, ns)
	}
	imageRE := regexp.MustCompile(rawString(t, celVariable(t, images, "image")))
	image := csc.str("spec", "container", "image")
	if !imageRE.MatchString(image) {
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
		if !imageRE.MatchString(img) {
			t.Errorf("Kyverno refuses KServe's own image %s", img)
		}
	}
	for _, img := range []string{"docker.io/library/python:3", "evil.example.com/echelongraph/x", "ghcr.io/someone/x"} {
		if imageRE.MatchString(img) {
			t.Errorf("Kyverno admits the unapproved image %s", img)
		}
	}
}
