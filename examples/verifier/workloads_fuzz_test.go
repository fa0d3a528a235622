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
