package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	yaml "sigs.k8s.io/yaml/goyaml.v3"

	"github.com/echelongraph/go-modelverify/modelverify"
)

// scan-workloads is the detection side of the admission policies: it reads Kubernetes objects
// (kubectl get -A -o yaml output, manifests, Lists) and reports every model location and image
// that the admission policies exported from the same policy would refuse, plus image tags that
// are not pinned by digest. It decides with the admission rules' own expressions
// (admissionRules.admitsModel and admitsImage), so it finds what admission would refuse, no more
// and no less, for the objects admission sees.

// Severities, and the SARIF level each maps to.
const (
	sevHigh = "high"
	sevLow  = "low"
)

// finding is one model location or image the policy would not admit.
type finding struct {
	Rule        string `json:"rule"`
	Severity    string `json:"severity"`
	Kind        string `json:"kind"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name"`
	Field       string `json:"field"`
	Value       string `json:"value"`
	Message     string `json:"message"`
	Remediation string `json:"remediation"`
	File        string `json:"file"`
	Line        int    `json:"line,omitempty"`
}

// object names the finding's object as kubectl would.
func (f *finding) object() string {
	if f.Namespace == "" {
		return f.Kind + "/" + f.Name
	}
	return f.Kind + " " + f.Namespace + "/" + f.Name
}

// scanRules describes each rule for SARIF and the text summary.
var scanRules = []struct{ id, severity, title, help string }{
	{"model-location-unverifiable", sevHigh, "Model location the load gate cannot verify",
		"Only hf:// repositories and oci:// repositories of approved publishers pass the load gate; s3://, gs://, pvc://, http(s)://, KServe's oci+fetch:// (and other oci+ schemes) and values taken from elsewhere load unverified. Publish the model to an approved publisher's repository and reference it as hf://<org>/<name>@<commit> or oci://<host>/<repository>@sha256:<digest>."},
	{"model-location-malformed", sevHigh, "Malformed model location",
		"A model location must be exactly hf://<org>/<name>[@<revision>] (no '..', no empty or extra path segments) or oci://<host>/<repository>[:<tag>][@sha256:<digest>] (lower-case repository components, a valid tag, a sha256 digest of 64 lower-case hex)."},
	{"model-registry-unapproved", sevHigh, "Model from an unapproved registry",
		"An oci:// model must be on a registry the modelverify policy lists (registries), in a repository that registry lists. Use a model in an approved registry, or have the registry or repository added to the policy."},
	{"model-publisher-unapproved", sevHigh, "Model from an unapproved publisher",
		"The repository's namespace (hf://) or repository (oci://) is claimed by no publisher of the modelverify policy. Use an approved publisher's model or add the publisher to the policy."},
	{"model-revision-unpinned", sevHigh, "Model revision not pinned",
		"The publisher requires a pinned revision: reference the model by its 40-hex commit (hf://<org>/<name>@<commit>) or its manifest digest (oci://<host>/<repository>@sha256:<digest>), so the revision cannot move."},
	{"runtime-arguments", sevHigh, "Arguments on the modelverify runtime",
		"The modelverify-service runtime takes its model from MODELVERIFY_MODEL; an argument could name another model. Remove args and command from the predictor's model."},
	{"storage-container-override", sevHigh, "Storage initializer chosen by name",
		"storageContainerName selects a storage initializer by name, which can bypass the one that claims hf:// and verifies it. Remove it."},
	{"image-registry-unapproved", sevHigh, "Image from an unapproved registry",
		"Model-serving containers (including init, ephemeral and modelcar containers) must come from an approved registry. Push the image to an approved registry, or approve the registry."},
	{"image-unpinned", sevLow, "Image not pinned by digest",
		"A tag can be moved to another image. Reference the image by digest (image@sha256:...)."},
}

func runScanWorkloads(_ context.Context, e *env, args []string) error {
	const synopsis = "verifier scan-workloads --policy P --image-registry PREFIX... [--namespace NS]... [--format text|json|sarif] FILE|DIR|-...\n" +
		"  reports every model location and image the admission policies of P would refuse; exit 1 when any\n" +
		"  e.g. kubectl get pods,deploy,sts,ds,jobs,cronjobs,isvc,servingruntimes -A -o yaml | verifier scan-workloads --policy P ... -"
	fs := newFlagSet(e, "scan-workloads", synopsis)
	policyPath := fs.String("policy", "", "the modelverify policy (required)")
	var registries, namespaces stringList
	fs.Var(&registries, "image-registry", "an approved image registry prefix, ending with '/' (repeatable)")
	fs.Var(&namespaces, "namespace", "a namespace whose pods are model-serving whatever their labels (repeatable)")
	format := fs.String("format", "text", "text, json or sarif (SARIF 2.1.0)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if e.json && *format == "text" {
		*format = "json"
	}
	if !slices.Contains([]string{"text", "json", "sarif"}, *format) {
		return usagef("scan-workloads: --format %q; want text, json or sarif", *format)
	}
	if *policyPath == "" {
		return usagef("scan-workloads: give --policy P")
	}
	if len(pos) == 0 {
		return usagef("scan-workloads: give files, directories or - for stdin")
	}
	p, err := modelverify.LoadPolicy(*policyPath)
	if err != nil {
		return err
	}
	rules, err := newAdmissionRules(p, registries, namespaces)
	if err != nil {
		return err
	}
	s := &workloadScanner{rules: rules, policy: p}
	for _, arg := range pos {
		if err := s.scanPath(arg, os.Stdin); err != nil {
			return err
		}
	}
	switch *format {
	case "json":
		if err := writeJSON(e, map[string]any{"objects": s.objects, "findings": nonNil(s.findings)}); err != nil {
			return err
		}
	case "sarif":
		if err := writeJSON(e, sarifLog(s.findings)); err != nil {
			return err
		}
	default:
		s.writeText(e.stdout)
	}
	if len(s.findings) > 0 {
		return silentExit{exitRefused}
	}
	return nil
}

func nonNil(f []finding) []finding {
	if f == nil {
		return []finding{}
	}
	return f
}

// workloadScanner collects findings over every input.
type workloadScanner struct {
	rules    *admissionRules
	policy   *modelverify.Policy
	findings []finding
	objects  int
}

func (s *workloadScanner) scanPath(arg string, stdin io.Reader) error {
	if arg == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return err
		}
		return s.scanDocuments("stdin", data)
	}
	info, err := os.Stat(arg)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		data, err := os.ReadFile(arg)
		if err != nil {
			return err
		}
		return s.scanDocuments(arg, data)
	}
	return filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return s.scanDocuments(path, data)
	})
}

// scanDocuments reads every YAML (or JSON) document of data. A document that is not a mapping
// with a kind is skipped; one that does not parse is an error naming the file, since a scan
// that silently read less than it was given would report a false all-clear.
func (s *workloadScanner) scanDocuments(file string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", file, i+1, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		s.scanObject(file, node{doc.Content[0]}, 0)
	}
}

// node is a YAML node with the lookups a Kubernetes object needs.
type node struct{ n *yaml.Node }

// get is the value of key in a mapping, or a zero node. Aliases (*a) and merge keys (<<: *a)
// are followed as Kubernetes' YAML decoder follows them, so that a hand-written manifest
// cannot hide a container from the scan behind an anchor.
func (n node) get(keys ...string) node {
	cur := deref(n.n)
	for _, k := range keys {
		cur = deref(lookup(cur, k, 0))
	}
	return node{cur}
}

// lookup finds key in a mapping, then in the mappings merged into it; the last of duplicate
// keys wins, as in the YAML-to-JSON conversion Kubernetes uses.
func lookup(m *yaml.Node, key string, depth int) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode || depth > maxListDepth {
		return nil
	}
	var found, merged *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		switch k := m.Content[i]; {
		case k.Value == key && k.Tag != "!!merge":
			found = m.Content[i+1]
		case k.Tag == "!!merge":
			v := deref(m.Content[i+1])
			srcs := []*yaml.Node{v}
			if v != nil && v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, src := range srcs {
				if x := lookup(deref(src), key, depth+1); x != nil && merged == nil {
					merged = x
				}
			}
		}
	}
	if found != nil {
		return found
	}
	return merged
}

// deref follows alias nodes to what they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxListDepth; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func (n node) ok() bool { return n.n != nil && n.n.Tag != "!!null" }

// str is a scalar's value, "" for anything else.
func (n node) str() string {
	v := deref(n.n)
	if v == nil || v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return ""
	}
	return v.Value
}

func (n node) items() []node {
	seq := deref(n.n)
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]node, len(seq.Content))
	for i, c := range seq.Content {
		out[i] = node{deref(c)}
	}
	return out
}

func (n node) line() int {
	if n.n == nil {
		return 0
	}
	return n.n.Line
}

// maxListDepth bounds nested Lists, so a hostile input cannot recurse without end.
const maxListDepth = 8

// objectRef is the object a finding is about.
type objectRef struct {
	file, kind, namespace, name string
}

func (s *workloadScanner) scanObject(file string, obj node, depth int) {
	kind := obj.get("kind").str()
	if items := obj.get("items"); strings.HasSuffix(kind, "List") && items.ok() {
		if depth < maxListDepth {
			for _, it := range items.items() {
				s.scanObject(file, it, depth+1)
			}
		}
		return
	}
	if kind == "" {
		return
	}
	s.objects++
	ref := objectRef{file: file, kind: kind, namespace: obj.get("metadata", "namespace").str(), name: obj.get("metadata", "name").str()}
	switch kind {
	case "Pod":
		s.scanPodSpec(ref, obj.get("metadata"), obj.get("spec"), "spec")
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController":
		t := obj.get("spec", "template")
		s.scanPodSpec(ref, t.get("metadata"), t.get("spec"), "spec.template.spec")
	case "CronJob":
		t := obj.get("spec", "jobTemplate", "spec", "template")
		s.scanPodSpec(ref, t.get("metadata"), t.get("spec"), "spec.jobTemplate.spec.template.spec")
	case "InferenceService":
		s.scanInferenceService(ref, obj)
	case "ServingRuntime", "ClusterServingRuntime":
		// Every InferenceService using the runtime runs these images.
		s.scanContainers(ref, obj.get("spec"), "spec", true, false)
	case "ClusterStorageContainer":
		// Its container is the storage initializer of every InferenceService whose URI it claims.
		c := obj.get("spec", "container")
		if c.ok() {
			s.checkImage(ref, "spec.container.image", c.get("image"))
		}
	}
}

// scanPodSpec checks a pod's images when the pod is model-serving (in a model namespace or
// labelled by KServe), as the admission image rule does, and its model variables.
func (s *workloadScanner) scanPodSpec(ref objectRef, meta, spec node, at string) {
	if !spec.ok() {
		return
	}
	labelled := meta.get("labels", servingLabel).ok()
	serving := labelled || slices.Contains(s.rules.Namespaces, ref.namespace)
	s.scanContainers(ref, spec, at, serving, false)
}

// scanContainers checks the images of every container list of a pod spec (when images is
// set), and the model each container names in its environment: strictly in an
// InferenceService (strictEnv, as admission does), and in a pod spec only where the value is a
// URI, since there KServe has already rewritten STORAGE_URI to a local path (/mnt/models).
func (s *workloadScanner) scanContainers(ref objectRef, spec node, at string, images, strictEnv bool) {
	for _, list := range []string{"containers", "initContainers", "ephemeralContainers"} {
		for i, c := range spec.get(list).items() {
			path := fmt.Sprintf("%s.%s[%d]", at, list, i)
			if images {
				s.checkImage(ref, path+".image", c.get("image"))
			}
			s.checkEnv(ref, path, c, !strictEnv)
		}
	}
}

// checkEnv checks the model-naming variables of one container-like spec. localPathsOK skips
// values that are not URIs (pods, where KServe has already rewritten them).
func (s *workloadScanner) checkEnv(ref objectRef, path string, c node, localPathsOK bool) {
	for j, ev := range c.get("env").items() {
		name := ev.get("name").str()
		if !slices.Contains(modelEnvNames, name) {
			continue
		}
		v := ev.get("value")
		if localPathsOK && (!v.ok() || !strings.Contains(v.str(), "://")) {
			continue
		}
		s.checkModel(ref, fmt.Sprintf("%s.env[%d](%s)", path, j, name), v, ev)
	}
}

func (s *workloadScanner) scanInferenceService(ref objectRef, obj node) {
	spec := obj.get("spec")
	for _, c := range components {
		comp := spec.get(c)
		if !comp.ok() {
			continue
		}
		at := "spec." + c
		s.checkModelIf(ref, at+".storageUri", comp.get("storageUri"))
		s.checkModelIf(ref, at+".model.storageUri", comp.get("model", "storageUri"))
		for _, f := range frameworks[c] {
			s.checkModelIf(ref, at+"."+f+".storageUri", comp.get(f, "storageUri"))
		}
		for i, su := range comp.get("storageUris").items() {
			s.checkModel(ref, fmt.Sprintf("%s.storageUris[%d].uri", at, i), su.get("uri"), su)
		}
		// The component's pod is labelled by KServe: its images are model-serving images.
		s.scanContainers(ref, comp, at, true, true)
		if w := comp.get("workerSpec"); w.ok() {
			s.scanContainers(ref, w, at+".workerSpec", true, true)
		}
		for _, f := range append([]string{"model"}, frameworks[c]...) {
			m := comp.get(f)
			if !m.ok() {
				continue
			}
			s.checkEnv(ref, at+"."+f, m, false)
			if st := m.get("storage"); st.ok() {
				s.add(ref, "model-location-unverifiable", sevHigh, at+"."+f+".storage", "", st,
					"a model named by a storage spec (a key of KServe's storage-config secret) cannot be checked at admission or by the load gate",
					"give the model as an hf://<org>/<name>@<commit> storageUri")
			}
		}
		if n := comp.get("storageContainerName"); n.ok() {
			s.add(ref, "storage-container-override", sevHigh, at+".storageContainerName", n.str(), n,
				fmt.Sprintf("storageContainerName %q picks a storage initializer by name, bypassing the one that claims hf:// and verifies it", n.str()),
				"remove storageContainerName")
		}
	}
	m := spec.get("predictor", "model")
	if m.get("runtime").str() == modelverifyRuntime && (len(m.get("args").items()) > 0 || len(m.get("command").items()) > 0) {
		s.add(ref, "runtime-arguments", sevHigh, "spec.predictor.model.args", "", m,
			"the "+modelverifyRuntime+" runtime takes its model from MODELVERIFY_MODEL; an argument or command could name another model",
			"remove args and command from spec.predictor.model")
	}
}

// checkModelIf checks a model location that may be absent.
func (s *workloadScanner) checkModelIf(ref objectRef, path string, v node) {
	if v.ok() {
		s.checkModel(ref, path, v, v)
	}
}

// checkModel reports a model location the rules do not admit. at is where to point when the
// value itself is missing (a valueFrom variable, a storageUris entry without uri).
func (s *workloadScanner) checkModel(ref objectRef, path string, v, at node) {
	uri := v.str()
	if s.rules.admitsModel(uri) {
		return
	}
	if v.ok() {
		at = v
	}
	rule, msg, fix := s.rules.explainModel(s.policy, uri)
	s.add(ref, rule, sevHigh, path, uri, at, msg, fix)
}

func (s *workloadScanner) checkImage(ref objectRef, path string, v node) {
	image := v.str()
	if !s.rules.admitsImage(image) {
		s.add(ref, "image-registry-unapproved", sevHigh, path, image, v,
			fmt.Sprintf("image %q is not from an approved registry (%s)", image, strings.Join(s.rules.Registries, ", ")),
			"push the image to an approved registry and reference it there, by digest")
		return
	}
	if !strings.Contains(image, "@sha256:") {
		s.add(ref, "image-unpinned", sevLow, path, image, v,
			fmt.Sprintf("image %q is pinned by tag only; a tag can be moved to another image", image),
			"reference the image by digest: "+imageName(image)+"@sha256:<digest>")
	}
}

func (s *workloadScanner) add(ref objectRef, rule, severity, field, value string, at node, msg, fix string) {
	s.findings = append(s.findings, finding{Rule: rule, Severity: severity, Kind: ref.kind, Namespace: ref.namespace,
		Name: ref.name, Field: field, Value: value, Message: msg, Remediation: fix, File: ref.file, Line: at.line()})
}

func (s *workloadScanner) writeText(w io.Writer) {
	for _, f := range s.findings {
		loc := f.File
		if f.Line > 0 {
			loc = fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		fmt.Fprintf(w, "%s: %s %s: %s %s: %s\n    fix: %s\n", loc, strings.ToUpper(f.Severity), f.Rule, f.object(), f.Field, f.Message, f.Remediation)
	}
	if len(s.findings) == 0 {
		fmt.Fprintf(w, "%s scanned: every model location and image is admitted\n", plural(s.objects, "object"))
		return
	}
	fmt.Fprintf(w, "%s scanned: %s\n", plural(s.objects, "object"), plural(len(s.findings), "finding"))
}

// sarifLog renders the findings as SARIF 2.1.0, which code-scanning dashboards read.
func sarifLog(findings []finding) map[string]any {
	var rules []map[string]any
	index := map[string]int{}
	for i, r := range scanRules {
		index[r.id] = i
		rules = append(rules, map[string]any{
			"id":                   r.id,
			"name":                 r.id,
			"shortDescription":     map[string]any{"text": r.title},
			"fullDescription":      map[string]any{"text": r.help},
			"help":                 map[string]any{"text": r.help},
			"defaultConfiguration": map[string]any{"level": sarifLevel(r.severity)},
			"properties": map[string]any{"security-severity": map[string]string{sevHigh: "8.0", sevLow: "3.0"}[r.severity],
				"tags": []string{"security", "supply-chain", "iso-42001-8.4"}},
		})
	}
	results := []map[string]any{}
	for _, f := range findings {
		region := map[string]any{}
		if f.Line > 0 {
			region["startLine"] = f.Line
		}
		phys := map[string]any{"artifactLocation": map[string]any{"uri": filepath.ToSlash(f.File)}}
		if len(region) > 0 {
			phys["region"] = region
		}
		results = append(results, map[string]any{
			"ruleId":    f.Rule,
			"ruleIndex": index[f.Rule],
			"level":     sarifLevel(f.Severity),
			"message":   map[string]any{"text": fmt.Sprintf("%s %s: %s. Fix: %s", f.object(), f.Field, f.Message, f.Remediation)},
			"locations": []map[string]any{{
				"physicalLocation": phys,
				"logicalLocations": []map[string]any{{"fullyQualifiedName": f.object() + " " + f.Field, "kind": "member"}},
			}},
			"properties": map[string]any{"severity": f.Severity, "value": f.Value},
		})
	}
	return map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []map[string]any{{
			"tool": map[string]any{"driver": map[string]any{
				"name":           "verifier scan-workloads",
				"informationUri": "https://github.com/echelongraph/go-modelverify",
				"rules":          rules,
			}},
			"results": results,
		}},
	}
}

func sarifLevel(severity string) string {
	if severity == sevHigh {
		return "error"
	}
	return "note"
}

// imageName is an image reference without its tag (a ':' after the last '/'; one before it is a
// registry port).
func imageName(image string) string {
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		return image[:i]
	}
	return image
}
