package main

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// FuzzScanWorkloads feeds scan-workloads' parser arbitrary YAML: it must not panic or recurse
// without end, and every finding must name a known rule, an object and a field, and render as
// JSON and SARIF.
func FuzzScanWorkloads(f *testing.F) {
	for _, dir := range workloadInputs {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if data, err := os.ReadFile(dir + "/" + e.Name()); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("kind: List\nitems:\n- kind: List\n  items:\n  - kind: Pod\n    spec: {containers: [{image: x}]}\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("kind: InferenceService\nspec: {predictor: {storageUris: [{}, 1, {uri: [x]}]}}\n"))
	rules, p := exampleRules(f)
	known := map[string]bool{}
	for _, r := range scanRules {
		known[r.id] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &workloadScanner{rules: rules, policy: p}
		_ = s.scanDocuments("fuzz.yaml", data)
		for _, fi := range s.findings {
			if !known[fi.Rule] || fi.Kind == "" || fi.Field == "" || fi.Message == "" {
				t.Fatalf("finding %+v", fi)
			}
		}
		if _, err := json.Marshal(sarifLog(s.findings)); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzAdmissionRulesNeverAdmitWhatTheGateRefuses: a location the generated expressions admit
// is one the load gate's own parser and publisher rules accept too.
func FuzzAdmissionRulesNeverAdmitWhatTheGateRefuses(f *testing.F) {
	for _, s := range []string{"hf://acme-ml/llm@0123456789abcdef0123456789abcdef01234567", "hf://platform-team/x@v1.2",
		"hf://acme-labs/Acme-x:0123456789abcdef0123456789abcdef01234567", "hf://acme-ml/../x", "hf://platform-team/x@refs/pr/1"} {
		f.Add(s)
	}
	rules, p := exampleRules(f)
	f.Fuzz(func(t *testing.T, uri string) {
		if rules.admitsModel(uri) && !gateAdmits(p, uri) && !strings.HasSuffix(uri, ".lock") {
			t.Fatalf("admission admits %q, the load gate refuses it", uri)
		}
		if img := uri; rules.admitsImage(img) && !slices.ContainsFunc(rules.Registries, func(r string) bool { return strings.HasPrefix(img, r) }) {
			t.Fatalf("image %q admitted outside the approved registries", img)
		}
	})
}

// BenchmarkScanWorkloads scans what `kubectl get -A -o yaml` prints for a large cluster: a List
// of 1000 pods and 1000 InferenceServices, one in ten of each refused.
func BenchmarkScanWorkloads(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("apiVersion: v1\nkind: List\nitems:\n")
	const commit = "0123456789abcdef0123456789abcdef01234567"
	for i := range 1000 {
		img, uri := "ghcr.io/echelongraph/server@sha256:"+strings.Repeat("a", 64), "hf://acme-ml/llm-"+string(rune('a'+i%26))+"@"+commit
		if i%10 == 0 {
			img, uri = "quay.io/evil/server:1", "s3://bucket/model"
		}
		sb.WriteString("- apiVersion: v1\n  kind: Pod\n  metadata: {name: p, namespace: models, labels: {app: x}}\n  spec:\n    initContainers: [{name: init, image: " + img + "}]\n    containers: [{name: c, image: " + img + ", env: [{name: A, value: b}]}]\n")
		sb.WriteString("- apiVersion: serving.kserve.io/v1beta1\n  kind: InferenceService\n  metadata: {name: i, namespace: models}\n  spec:\n    predictor: {model: {modelFormat: {name: huggingface}, storageUri: \"" + uri + "\"}}\n    transformer: {storageUris: [{uri: \"" + uri + "\", mountPath: /mnt/t}]}\n")
	}
	data := []byte(sb.String())
	rules, p := exampleRules(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		s := &workloadScanner{rules: rules, policy: p}
		if err := s.scanDocuments("bench.yaml", data); err != nil || s.objects != 2000 || len(s.findings) != 400 {
			b.Fatalf("%v: %d objects, %d findings", err, s.objects, len(s.findings))
		}
	}
}
