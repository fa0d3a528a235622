package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
)

var update = flag.Bool("update", false, "rewrite the shipped admission policies from examples/policy.yaml")

// generateArgs are the export arguments of export.go's go:generate line, so that the test
// checks the shipped files against exactly the command that made them.
func generateArgs(t testing.TB) []string {
	t.Helper()
	src, err := os.ReadFile("export.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^//go:generate go run \. (policy export .*)$`).FindSubmatch(src)
	if m == nil {
		t.Fatal("export.go has no go:generate line for policy export")
	}
	return strings.Fields(string(m[1]))
}

// flagValues is every value of a repeated flag in args.
func flagValues(args []string, name string) []string {
	var out []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			out = append(out, args[i+1])
		}
	}
	return out
}

// exampleRules are the rules of the shipped policies.
func exampleRules(t testing.TB) (*admissionRules, *modelverify.Policy) {
	t.Helper()
	args := generateArgs(t)
	p, err := modelverify.LoadPolicy("../policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := newAdmissionRules(p, flagValues(args, "--image-registry"), flagValues(args, "--namespace"))
	if err != nil {
		t.Fatal(err)
	}
	return r, p
}

// kserveManifest is the copy of the ValidatingPolicies shipped with the KServe example.
const kserveManifest = "../kserve/manifests/kyverno-policy.yaml"

func TestExportedPoliciesAreUpToDate(t *testing.T) {
	args := generateArgs(t)
	out := t.TempDir()
	for i, a := range args {
		if a == "../policy.yaml" {
			args[i], _ = filepath.Abs(a)
		}
		if a == "--out" {
			args[i+1] = out
		}
	}
	wantExit(t, 0, ".", args...)
	shipped := map[string]string{}
	for _, f := range exportFormats {
		for _, file := range strings.Fields(f.file) {
			shipped[filepath.Join("../admission", file)] = filepath.Join(out, file)
		}
	}
	shipped[kserveManifest] = filepath.Join(out, "kyverno-validatingpolicy.yaml")
	for dst, src := range shipped {
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			writeFile(t, dst, want)
			continue
		}
		got, err := os.ReadFile(dst)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from `verifier %s`: run go generate ./examples/verifier (err %v)", dst, strings.Join(generateArgs(t), " "), err)
		}
	}
}

func TestExportWritesOneFormatToStdout(t *testing.T) {
	args := generateArgs(t)
	policy, _ := filepath.Abs("../policy.yaml")
	regs := []string{}
	for _, r := range flagValues(args, "--image-registry") {
		regs = append(regs, "--image-registry", r)
	}
	for _, ns := range flagValues(args, "--namespace") {
		regs = append(regs, "--namespace", ns)
	}
	for _, f := range exportFormats {
		out, _ := wantExit(t, 0, ".", append([]string{"policy", "export", f.name, policy}, regs...)...)
		var want []byte
		for _, file := range strings.Fields(f.file) {
			b, err := os.ReadFile(filepath.Join("../admission", file))
			if err != nil {
				t.Fatal(err)
			}
			if len(want) > 0 {
				want = append(want, "---\n"...)
			}
			want = append(want, b...)
		}
		if strings.TrimSpace(out) != strings.TrimSpace(string(want)) {
			t.Errorf("policy export %s to stdout differs from the shipped %s", f.name, f.file)
		}
	}
}

func TestExportRefusesWhatWouldWeakenThePolicy(t *testing.T) {
	policy, _ := filepath.Abs("../policy.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"policy", "export", "kyverno", policy}, "--image-registry"},
		{[]string{"policy", "export", "kyverno", policy, "--image-registry", "ghcr.io/acme"}, "must end with '/'"},
		{[]string{"policy", "export", "kyverno", policy, "--image-registry", "*/"}, "not a registry host"},
		{[]string{"policy", "export", "kyverno", policy, "--image-registry", "ghcr.io/acme/", "--namespace", "Models"}, "not a Kubernetes namespace"},
		{[]string{"policy", "export", "opa", policy, "--image-registry", "ghcr.io/acme/"}, "unknown format"},
		{[]string{"policy", "export", "all", policy, "--image-registry", "ghcr.io/acme/"}, "--out"},
		{[]string{"policy", "export", "kyverno"}, "want FORMAT and P"},
	} {
		_, errOut := wantExit(t, 2, ".", tc.args...)
		if !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: stderr %q, want %q", tc.args[2:], errOut, tc.want)
		}
	}
}

// TestAdmissionRulesAgreeWithThePolicy holds the generated expressions to the load gate's own
// decision (hub.ParseReference, Policy.Publisher, RequirePinnedRevision) over many locations,
// including publishers whose namespaces overlap, where the most specific one decides.
func TestAdmissionRulesAgreeWithThePolicy(t *testing.T) {
	const commit = "0123456789abcdef0123456789abcdef01234567"
	overlapping := `apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints: [{name: hf, url: "https://huggingface.co"}]
publishers:
  - name: acme-open
    namespaces: [acme]
    requireSignature: false
  - name: acme-secret
    namespaces: [acme/secret, "acme/prod-*"]
    requireSignature: false
    requirePinnedRevision: true
  - name: acme-research
    namespaces: ["acme/prod-research-[0-9]*", "acme/r?"]
    requireSignature: false
  - name: tied-a
    namespaces: ["tie/x-*"]
    requireSignature: false
  - name: tied-b
    namespaces: ["tie/*-y"]
    requireSignature: false
  - name: bert
    namespaces: [google-bert/bert-base-uncased]
    requireSignature: false
    requirePinnedRevision: true
`
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.yaml"), []byte(overlapping))
	over, err := modelverify.LoadPolicy(filepath.Join(dir, "p.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	example, _ := exampleRules(t)
	examplePolicy, _ := modelverify.LoadPolicy("../policy.yaml")
	overRules, err := newAdmissionRules(over, []string{"ghcr.io/acme/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	repos := []string{"acme/x", "acme/secret", "acme/prod-1", "acme/prod-research-1", "acme/prod-research-x", "acme/r1",
		"acme/rr1", "tie/x-y", "tie/x-z", "tie/a-y", "google-bert/bert-base-uncased", "google-bert/other",
		"acme-ml/llm", "acme-ml/a.b", "acme-ml/a-b_c", "acme-labs/Acme-chat", "acme-labs/acme-chat", "acme-labs/Acme-",
		"platform-team/x", "evil-org/x", "acme-ml/a..b", "acme-ml/a--b", "acme-ml/.x", "acme-ml/x.", "acme-ml/-x"}
	revs := []string{"", "@" + commit, ":" + commit, "@main", "@v1.2", "@refs/pr/1", "@" + strings.ToUpper(commit),
		"@a..b", "@", "@x/", "@.x", "@x.lock"}
	var uris []string
	for _, repo := range repos {
		for _, rev := range revs {
			uris = append(uris, "hf://"+repo+rev)
		}
	}
	uris = append(uris, "hf://acme-ml/../evil-org/x", "hf://acme-ml//x", "hf://acme-ml/x/", "hf://acme-ml/x/y",
		"HF://acme-ml/x", "s3://acme-ml/x", "hf:/acme-ml/x", " hf://acme-ml/x", "hf://acme-ml/x\n", "")
	for _, tc := range []struct {
		name  string
		rules *admissionRules
		p     *modelverify.Policy
	}{{"example", example, examplePolicy}, {"overlapping", overRules, over}} {
		for _, uri := range uris {
			got := tc.rules.admitsModel(uri)
			want := gateAdmits(tc.p, uri)
			// The admission grammar is stricter than the Hub's in one respect, by design:
			// two separators never follow each other, and a revision ends in a name
			// character. Those are refused at admission even where the gate would resolve them.
			if want && !got && strictGrammarRefuses(uri) {
				continue
			}
			// A revision ending in ".lock" (git refuses such ref names) is left to the gate:
			// RE2 has no negative lookahead to refuse it in one expression.
			if got && !want && strings.HasSuffix(uri, ".lock") {
				continue
			}
			if got != want {
				t.Errorf("%s: %q: admission %v, load gate %v", tc.name, uri, got, want)
			}
		}
	}
}

// gateAdmits is the load gate's decision on a location, before it contacts the Hub.
func gateAdmits(p *modelverify.Policy, uri string) bool {
	rest, ok := strings.CutPrefix(uri, "hf://")
	if !ok || strings.ContainsAny(rest, " \n") {
		return false
	}
	ref, err := hub.ParseReference(uri)
	if err != nil {
		return false
	}
	pub, err := p.Publisher(ref.RepoID())
	if err != nil {
		return false
	}
	return !pub.RequirePinnedRevision || hub.IsCommit(ref.Revision)
}

func strictGrammarRefuses(uri string) bool {
	return !modelGrammar.MatchString(uri) && regexp.MustCompile(`[.-][.-]|[.-]$|[.-][@:]`).MatchString(uri)
}

func TestNamespaceRegexpFollowsPathMatch(t *testing.T) {
	for _, tc := range []struct {
		ns, name string
		want     bool
	}{
		{"acme/Acme-*", "Acme-chat", true},
		{"acme/Acme-*", "Acme-", true},
		{"acme/Acme-*", "acme-chat", false},
		{"acme/m?", "m1", true},
		{"acme/m?", "m12", false},
		{"acme/v[0-9]", "v7", true},
		{"acme/v[^0-9]", "v7", false},
		{"acme/v[^0-9]", "vx", true},
		{"acme/a.b", "a.b", true},
		{"acme/a.b", "axb", false},
	} {
		org, re, _, err := namespaceRegexp(tc.ns)
		if err != nil {
			t.Fatal(err)
		}
		got := regexp.MustCompile("^" + re + "$").MatchString(tc.name)
		if got != tc.want || org != "acme" {
			t.Errorf("%s ~ %s: %v, want %v", tc.ns, tc.name, got, tc.want)
		}
	}
}

func TestImageRuleAdmitsOnlyApprovedRegistries(t *testing.T) {
	r, _ := exampleRules(t)
	digest := "@sha256:" + strings.Repeat("0", 64)
	for img, want := range map[string]bool{
		"ghcr.io/echelongraph/modelverify-storage-initializer:v0.1.0":    true,
		"ghcr.io/echelongraph/x" + digest:                                true,
		"kserve/huggingfaceserver:v0.15.0":                               true,
		"docker.io/kserve/huggingfaceserver:v0.15.0":                     true,
		"gcr.io/knative-releases/knative.dev/serving/cmd/queue" + digest: true,
		"ghcr.io/echelongraph-evil/x":                                    false,
		"ghcr.io/echelongraph.evil.io/x":                                 false,
		"ghcr.io/echelongraph/../evil/x":                                 false,
		"ghcr.io/echelongraph//x":                                        false,
		"ghcr.io/echelongraph/":                                          false,
		"evil.example.com/ghcr.io/echelongraph/x":                        false,
		"docker.io/library/python:3":                                     false,
		"GHCR.IO/echelongraph/x":                                         false,
		"ghcr.io/echelongraph/x:v1 ":                                     false,
		"":                                                               false,
	} {
		if got := r.admitsImage(img); got != want {
			t.Errorf("%q: admitted %v, want %v", img, got, want)
		}
	}
}

// TestExportedPoliciesParseAndCarryTheRules checks the structure the engines rely on, so a
// template slip shows here even where no engine is installed.
func TestExportedPoliciesParseAndCarryTheRules(t *testing.T) {
	r, _ := exampleRules(t)
	for _, f := range []string{"kyverno-validatingpolicy.yaml", "kyverno-clusterpolicy.yaml", "gatekeeper-template.yaml", "gatekeeper-constraint.yaml"} {
		data, err := os.ReadFile(filepath.Join("../admission", f))
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			var o map[string]any
			if err := yaml.UnmarshalStrict(doc, &o); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if o["kind"] == "ClusterPolicy" {
				spec := o["spec"].(map[string]any)
				if _, ok := spec["validationFailureAction"]; ok {
					t.Errorf("%s: top-level validationFailureAction is deprecated; use validate.failureAction", f)
				}
				for _, rule := range spec["rules"].([]any) {
					v := rule.(map[string]any)["validate"].(map[string]any)
					if v["failureAction"] != "Enforce" {
						t.Errorf("%s: rule %v has failureAction %v", f, rule.(map[string]any)["name"], v["failureAction"])
					}
				}
			}
		}
		for _, nr := range r.Patterns {
			want := nr.Admit
			if strings.HasPrefix(f, "gatekeeper-constraint") {
				want = strings.ReplaceAll(want, `\`, `\\`)
			}
			if !strings.HasPrefix(f, "gatekeeper-template") && !bytes.Contains(data, []byte(want)) {
				t.Errorf("%s lacks publisher %s's expression %s", f, nr.Publisher, nr.Admit)
			}
		}
	}
	tf, err := os.ReadFile("../admission/terraform/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(tf, []byte(`resource "kubernetes_manifest"`)); n != 2 {
		t.Errorf("terraform module has %d kubernetes_manifest resources, want 2", n)
	}
	if bytes.Contains(bytes.ReplaceAll(tf, []byte("$${"), nil), []byte("${")) {
		t.Error("terraform module has an unescaped interpolation in the embedded policy")
	}
	// The embedded JSON is the ValidatingPolicy, object for object.
	vp, _ := os.ReadFile("../admission/kyverno-validatingpolicy.yaml")
	for i, doc := range bytes.Split(vp, []byte("\n---\n")) {
		var want map[string]any
		if err := yaml.Unmarshal(doc, &want); err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(string(tf), "jsondecode(<<-EOT\n")
		if len(parts) != 3 {
			t.Fatalf("terraform module: %d heredocs", len(parts)-1)
		}
		body, _, _ := strings.Cut(parts[i+1], "\n  EOT\n")
		body = strings.NewReplacer("$${", "${", "%%{", "%{").Replace(body)
		var got map[string]any
		if err := yaml.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("terraform heredoc %d: %v", i, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("terraform heredoc %d is not the ValidatingPolicy %d", i, i)
		}
	}
}

// gateAdmitsOCI is the load gate's decision on an oci:// location before it contacts the
// registry: its parser, the registry and its repositories, the publisher's claim, the digest.
func gateAdmitsOCI(p *modelverify.Policy, uri string) bool {
	if !strings.HasPrefix(uri, registry.Scheme) || strings.ContainsAny(uri, " \t\r\n") {
		return false
	}
	ref, err := registry.ParseReference(uri)
	if err != nil {
		return false
	}
	reg, ok := p.Registry(ref.Registry)
	if !ok || !reg.AllowsRepository(ref.Repository) {
		return false
	}
	pub, err := p.OCIPublisher(ref.Name())
	if err != nil {
		return false
	}
	return !pub.RequireDigest || ref.Pinned()
}

// ociOverlapping has OCI publishers whose claims overlap, a registry narrowed to some
// repositories, another approving all, requireDigest on some, and a tie the gate refuses.
const ociOverlapping = `apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints: [{name: hf, url: "https://huggingface.co"}]
registries:
  - host: ghcr.io
    repositories: ["acme/*", "acme/team/*", "shared/m[0-9]", "lit\\*eral"]
  - host: registry.example.com:5000
  - host: 127.0.0.1:5000
    plainHTTP: true
publishers:
  - name: acme-all
    oci: ["ghcr.io/acme/*"]
    requireSignature: false
  - name: acme-secret
    oci: ["ghcr.io/acme/secret", "ghcr.io/acme/prod-*"]
    requireSignature: false
    requireDigest: true
  - name: acme-research
    oci: ["ghcr.io/acme/prod-research-[0-9]*", "ghcr.io/acme/r?"]
    requireSignature: false
  - name: team
    oci: ["ghcr.io/acme/team/*", "ghcr.io/shared/m[^5]", "ghcr.io/lit\\*eral"]
    requireSignature: false
  - name: tied-a
    oci: ["registry.example.com:5000/tie/x-*"]
    requireSignature: false
  - name: tied-b
    oci: ["registry.example.com:5000/tie/*-y"]
    requireSignature: false
  - name: classy
    oci: ["registry.example.com:5000/c/a[/x]b", "127.0.0.1:5000/*/*"]
    requireSignature: false
    requireDigest: true
`

// TestOCIAdmissionAgreesWithTheGate holds the generated oci:// expressions to the load gate's
// own decision (registry.ParseReference, Policy.Registry, AllowsRepository, OCIPublisher,
// requireDigest) over many locations, on the example policy and on overlapping claims.
func TestOCIAdmissionAgreesWithTheGate(t *testing.T) {
	digest := "@sha256:" + strings.Repeat("ab", 32)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.yaml"), []byte(ociOverlapping))
	over, err := modelverify.LoadPolicy(filepath.Join(dir, "p.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	overRules, err := newAdmissionRules(over, []string{"ghcr.io/acme/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	example, examplePolicy := exampleRules(t)
	hosts := []string{"ghcr.io", "registry.example.com:5000", "127.0.0.1:5000", "registry.internal.example.com", "quay.io",
		"GHCR.IO", "ghcr.io.evil.example", "ghcr.io:443", "docker.io", "localhost:5000"}
	repos := []string{"acme/x", "acme/secret", "acme/prod-1", "acme/prod-research-1", "acme/prod-research-x", "acme/r1",
		"acme/rr1", "acme/team/x", "acme/team/x/y", "shared/m1", "shared/m5", "shared/mx", "lit*eral", "literal",
		"tie/x-y", "tie/x-z", "tie/a-y", "c/a/b", "c/axb", "c/ab", "a/b", "a/b/c", "acme-ml/models/llm", "acme-ml/models/a/b",
		"acme-ml/research/llm", "research/llm", "research/a/b", "platform/llm", "acme/X", "acme/../x", "acme//x", "acme/x/",
		"/acme/x", "acme/.x", "acme/x.", "acme/a..b", "acme/a__b", "acme/a___b", "acme/a--b", "acme/-x", "acme", ""}
	refs := []string{"", ":v1", digest, ":v1" + digest, ":latest", ":.v1", ":" + strings.Repeat("v", 129), "@sha256:" + strings.Repeat("A", 64),
		"@sha256:" + strings.Repeat("a", 63), "@sha512:" + strings.Repeat("a", 128), ":v1:v2", "@sha256:" + strings.Repeat("a", 64) + ":v1"}
	var uris []string
	for _, h := range hosts {
		for _, repo := range repos {
			for _, ref := range refs {
				uris = append(uris, "oci://"+h+"/"+repo+ref)
			}
		}
	}
	uris = append(uris, "oci://ghcr.io/acme/x:v1 ", "oci://ghcr.io/acme/x\n", "OCI://ghcr.io/acme/x", "oci+fetch://ghcr.io/acme/x"+digest,
		"oci+modelcar://ghcr.io/acme/x"+digest, "ghcr.io/acme/x"+digest, "oci:/ghcr.io/acme/x", "oci://ghcr.io", "oci://")
	admitted := 0
	for _, tc := range []struct {
		name  string
		rules *admissionRules
		p     *modelverify.Policy
	}{{"example", example, examplePolicy}, {"overlapping", overRules, over}} {
		for _, uri := range uris {
			got := tc.rules.admitsModel(uri)
			want := gateAdmitsOCI(tc.p, uri)
			// Stricter than the gate by design: the host exactly as the policy writes it
			// (lower case; the gate lower-cases), and no repository beyond the grammar.
			if want && !got && strings.Contains(uri, "GHCR.IO") {
				continue
			}
			if got != want {
				t.Errorf("%s: %q: admission %v, load gate %v", tc.name, uri, got, want)
			}
			if got {
				admitted++
			}
		}
	}
	if admitted < 40 {
		t.Errorf("only %d locations admitted: the test no longer exercises admission", admitted)
	}
}

// TestOCIGlobRegexpFollowsPathMatch compares the expressions with path.Match over every
// repository name of up to three characters from an alphabet that holds each kind of character.
func TestOCIGlobRegexpFollowsPathMatch(t *testing.T) {
	globs := []string{"*", "a*", "*b", "a?", "?", "[a-c]", "[^a]", "[^a-c]b", "a[/]b", "a[^x]b", "[.]", `\*`, `a\?`,
		"*/*", "a/*", "[a-b_]", "*.", "[_]*", "a\\b"}
	alphabet := []string{"a", "b", "x", "/", ".", "-", "_", "*", "?", "A", ":", "@"}
	var names []string
	var grow func(string, int)
	grow = func(s string, n int) {
		names = append(names, s)
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			grow(s+c, n-1)
		}
	}
	grow("", 3)
	repo := regexp.MustCompile(`^` + ociRepoRE + `$`)
	for _, g := range globs {
		re, _, err := ociGlobRegexp(g)
		if err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		rx := regexp.MustCompile(`^(?:` + re + `)$`)
		for _, name := range names {
			pm, _ := path.Match(g, name)
			// The expression is path.Match limited to valid repository names: outside
			// them the grammar refuses first, and the expression never matches more.
			want := pm && repo.MatchString(name)
			got := rx.MatchString(name)
			if got && !pm {
				t.Errorf("glob %q ~ %q: expression matches, path.Match does not", g, name)
			}
			if want && !got {
				t.Errorf("glob %q ~ %q: path.Match matches a valid repository, the expression does not", g, name)
			}
		}
	}
	for _, bad := range []string{"[", "a[b", "[]", "[-a]"} {
		if _, _, err := ociGlobRegexp(bad); err == nil {
			t.Errorf("glob %q accepted", bad)
		}
	}
}

func TestExportRefusesARegistryTheGateCannotName(t *testing.T) {
	dir := t.TempDir()
	pol := strings.Replace(ociOverlapping, "  - host: 127.0.0.1:5000\n    plainHTTP: true\n", "  - host: docker.io\n", 1) +
		"  - name: hub\n    oci: [\"docker.io/acme/*\"]\n    requireSignature: false\n"
	writeFile(t, filepath.Join(dir, "p.yaml"), []byte(strings.ReplaceAll(pol, `"127.0.0.1:5000/*/*"`, `"ghcr.io/acme/c"`)))
	p, err := modelverify.LoadPolicy(filepath.Join(dir, "p.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = newAdmissionRules(p, []string{"ghcr.io/acme/"}, nil)
	if err == nil || !strings.Contains(err.Error(), "the load gate refuses every reference to docker.io") {
		t.Errorf("err %v, want the docker.io refusal", err)
	}
}
