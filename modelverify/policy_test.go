package modelverify_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/modelverify"
	"sigs.k8s.io/yaml"
)

// Real key material from Python model_signing's test suite (testdata/interop): the EC key's PEM
// has certtool's text before the block, as real-world key files often do.
var (
	interopKeys        = filepath.Join("..", "testdata", "interop", "model-transparency", "signed", "keys", "certificate")
	interopPublicKey   = filepath.Join(interopKeys, "signing-key-pub.pem")
	interopCACert      = filepath.Join(interopKeys, "ca-cert.pem")
	interopPrivKey     = filepath.Join(interopKeys, "signing-key.pem")
	interopTrustedRoot = filepath.Join("..", "testdata", "interop", "sigstore", "public-good-trusted_root.json")
	interopClientTrust = filepath.Join("..", "testdata", "interop", "model-transparency", "golden-payloads", "custom_trust_config.json")
)

// basePolicy is the smallest valid policy; the table tests below break one thing in it at a time.
const basePolicy = `apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints:
  - name: hf
    url: https://huggingface.co
    cdnHosts: [cdn-lfs.hf.co]
publishers:
  - name: acme
    namespaces: [acme]
    identities:
      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}
`

// examplePolicyDir copies examples/policy.yaml into a temporary directory together with the key
// and CA files it names (real ones from the interop data), as a deployment would ship them.
func examplePolicyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyTestFile(t, filepath.Join("..", "examples", "policy.yaml"), filepath.Join(dir, "policy.yaml"))
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyTestFile(t, interopPublicKey, filepath.Join(dir, "keys", "platform-signing.pub"))
	copyTestFile(t, interopCACert, filepath.Join(dir, "keys", "platform-ca.pem"))
	return dir
}

func copyTestFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestExamplePolicyLoadsWithEveryFieldAsDocumented(t *testing.T) {
	dir := examplePolicyDir(t)
	p, err := modelverify.LoadPolicy(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatalf("LoadPolicy(example): %v", err)
	}
	if p.Mode != modelverify.ModeEnforce || !p.Enforcing() {
		t.Errorf("mode = %q, want enforce", p.Mode)
	}
	hf, ok := p.Endpoint("hf")
	if !ok || hf.URL != "https://huggingface.co" {
		t.Fatalf("endpoint hf = %+v, %v", hf, ok)
	}
	if want := []string{"cas-bridge.xethub.hf.co", "us.aws.cdn.hf.co", "cdn-lfs.hf.co", "cdn-lfs-us-1.hf.co"}; !reflect.DeepEqual(hf.CDNHosts, want) {
		t.Errorf("hf cdnHosts = %v, want %v", hf.CDNHosts, want)
	}
	if len(p.Publishers) != 3 {
		t.Fatalf("publishers = %d, want 3", len(p.Publishers))
	}
	acme := p.Publishers[0]
	if !acme.SignatureRequired() || !acme.RequirePinnedRevision || !acme.RequireVerifiedOrg || acme.SignaturePath() != "model.sig" {
		t.Errorf("acme-ml = %+v", acme)
	}
	if len(acme.Identities) != 2 || acme.Identities[1].Sigstore.IdentityRegexp != `^[a-z.]+@acme-ml\.example$` {
		t.Errorf("acme-ml identities = %+v", acme.Identities)
	}
	platform := p.Publishers[1]
	if got, want := platform.Identities[0].PublicKey.Path, filepath.Join(dir, "keys", "platform-signing.pub"); got != want {
		t.Errorf("public key path = %q, want %q (resolved against the policy's directory)", got, want)
	}
	if got, want := platform.Identities[1].Certificate.Roots[0].Path, filepath.Join(dir, "keys", "platform-ca.pem"); got != want {
		t.Errorf("certificate root path = %q, want %q", got, want)
	}
	if internal, _ := p.Endpoint("internal"); !platform.AllowsEndpoint(internal) || platform.AllowsEndpoint(hf) {
		t.Errorf("platform-team should be limited to the internal endpoint")
	}
	bert := p.Publishers[2]
	if bert.SignatureRequired() {
		t.Errorf("google-bert: requireSignature false was not kept")
	}
	ghcr, ok := p.Registry("ghcr.io")
	if !ok || !ghcr.AllowsRepository("acme-ml/models/llm") || ghcr.AllowsRepository("acme-ml/other") || ghcr.PlainHTTP {
		t.Errorf("registry ghcr.io = %+v, %v", ghcr, ok)
	}
	if pub, err := p.OCIPublisher("ghcr.io/acme-ml/models/llm"); err != nil || pub.Name != "acme-ml" || !pub.RequireDigest {
		t.Errorf("ghcr.io/acme-ml/models/llm claimed by %+v, %v; want acme-ml, requiring a digest", pub, err)
	}
	if pub, err := p.OCIPublisher("registry.internal.example.com/mirror/google-bert/bert-base-uncased"); err != nil || pub.Name != "google-bert" || pub.RequireDigest {
		t.Errorf("the internal mirror claimed by %+v, %v; want google-bert, by tag or digest", pub, err)
	}
	c := p.Content
	if c.PickleRule() != modelverify.PickleDeny || c.MaxFiles != 2000 || c.MaxFileSize != 50_000_000_000 || c.MaxTotalSize != 2<<40 {
		t.Errorf("content = %+v", c)
	}
	if !c.FormatAllowed("safetensors") || c.FormatAllowed("pickle") {
		t.Errorf("allowFormats = %v", c.AllowFormats)
	}
	if p.Audit.Path != filepath.Join(dir, "audit.jsonl") || !p.Audit.Slog {
		t.Errorf("audit = %+v", p.Audit)
	}
}

func TestExamplePolicyResolvesKeyPathsAgainstItsOwnDirectory(t *testing.T) {
	// In place, the example loads with the public keys shipped beside it in examples/keys/.
	p, err := modelverify.LoadPolicy(filepath.Join("..", "examples", "policy.yaml"))
	if err != nil {
		t.Fatalf("the shipped example policy does not load: %v", err)
	}
	wantDir, _ := filepath.Abs(filepath.Join("..", "examples", "keys"))
	if got := p.Publishers[1].Identities[0].PublicKey.Path; filepath.Dir(got) != wantDir {
		t.Errorf("public key path %q, want it under %s", got, wantDir)
	}

	// Copied elsewhere without its keys, the loader looks beside the copy (not in the working
	// directory) and says which fields name the missing files.
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "examples", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = modelverify.LoadPolicy(filepath.Join(dir, "policy.yaml"))
	var pe *modelverify.PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("LoadPolicy = %v, want a *PolicyError", err)
	}
	fields := map[string]string{}
	for _, p := range pe.Problems {
		fields[p.Field] = p.Message
	}
	missing := []string{"publishers[1].identities[0].publicKey.path", "publishers[1].identities[1].certificate.roots[0].path"}
	for _, f := range missing {
		if !strings.Contains(fields[f], filepath.Join(dir, "keys")) {
			t.Errorf("problem for %s = %q, want it to name a file under %s", f, fields[f], filepath.Join(dir, "keys"))
		}
	}
	if len(pe.Problems) != len(missing) {
		t.Errorf("problems = %v, want exactly the %d missing key files", pe.Problems, len(missing))
	}
}

func TestLoadedPolicyPrintsAsYAMLThatLoadsAgain(t *testing.T) {
	// `verifier policy show` prints the effective policy; what it prints must be a valid policy
	// that means the same.
	p, err := modelverify.LoadPolicy(filepath.Join(examplePolicyDir(t), "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := modelverify.ParsePolicy(out)
	if err != nil {
		t.Fatalf("printed policy does not load: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(p, again) {
		t.Errorf("printed policy differs:\n%s", out)
	}
}

func TestParsePolicyAppliesDocumentedDefaults(t *testing.T) {
	p, err := modelverify.ParsePolicy([]byte(basePolicy))
	if err != nil {
		t.Fatal(err)
	}
	pub := p.Publishers[0]
	switch {
	case p.Mode != modelverify.ModeEnforce:
		t.Errorf("mode default = %q", p.Mode)
	case pub.RequireSignature == nil || !*pub.RequireSignature:
		t.Errorf("requireSignature default = %v", pub.RequireSignature)
	case pub.SignatureFile != "model.sig":
		t.Errorf("signatureFile default = %q", pub.SignatureFile)
	case pub.RequirePinnedRevision || pub.RequireVerifiedOrg:
		t.Errorf("pinning and verified-org must default to off")
	case !reflect.DeepEqual(p.Content.AllowFormats, modelverify.DefaultAllowFormats):
		t.Errorf("allowFormats default = %v", p.Content.AllowFormats)
	case p.Content.Pickle != modelverify.PickleDeny:
		t.Errorf("pickle default = %q", p.Content.Pickle)
	case p.Content.MaxFiles != 0 || p.Content.MaxFileSize != 0 || p.Content.MaxTotalSize != 0:
		t.Errorf("limits must default to none: %+v", p.Content)
	}
}

func TestParsePolicyReadsEmptyValuesAsUnset(t *testing.T) {
	doc := policyWith(t, "publishers:\n", "mode:\ncontent:\n  maxFileSize:\n  maxFiles:\naudit:\npublishers:\n")
	p, err := modelverify.ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != modelverify.ModeEnforce || p.Content.MaxFileSize != 0 || p.Content.MaxFiles != 0 {
		t.Errorf("empty values: mode %q, content %+v", p.Mode, p.Content)
	}
}

func TestParsePolicyAcceptsJSON(t *testing.T) {
	doc := `{"apiVersion":"modelverify.echelongraph.io/v1alpha1","kind":"ModelPolicy","mode":"audit",
	 "endpoints":[{"url":"https://HuggingFace.co:443/"}],
	 "publishers":[{"name":"bert","namespaces":["google-bert"],"requireSignature":false}],
	 "content":{"maxFileSize":1073741824,"maxTotalSize":"1.5GiB"}}`
	p, err := modelverify.ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p.Enforcing() || p.Endpoints[0].URL != "https://huggingface.co" {
		t.Errorf("mode %q, url %q", p.Mode, p.Endpoints[0].URL)
	}
	if p.Content.MaxFileSize != 1<<30 || p.Content.MaxTotalSize != 3<<29 {
		t.Errorf("sizes = %d, %d", p.Content.MaxFileSize, p.Content.MaxTotalSize)
	}
}

// policyWith returns basePolicy with old replaced by new, failing the test if old is absent, so
// that a case can never silently test the unchanged policy.
func policyWith(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(basePolicy, old) {
		t.Fatalf("basePolicy has no %q", old)
	}
	return strings.Replace(basePolicy, old, new, 1)
}

func TestPolicyErrorsNameTheFieldAtFault(t *testing.T) {
	pubKeyPEM := strings.ReplaceAll(generatedPublicKeyPEM(t), "\n", "\n            ")
	cases := []struct {
		name, old, new string
		field, message string
	}{
		{"missing apiVersion", "apiVersion: modelverify.echelongraph.io/v1alpha1\n", "", "apiVersion", "required"},
		{"wrong apiVersion", "v1alpha1", "v2", "apiVersion", "not supported"},
		{"wrong kind", "kind: ModelPolicy", "kind: ConfigMap", "kind", "not supported"},
		{"bad mode", "kind: ModelPolicy\n", "kind: ModelPolicy\nmode: permissive\n", "mode", `"permissive" is not a mode`},
		{"unknown top-level field", "kind: ModelPolicy\n", "kind: ModelPolicy\nmodes: audit\n", "modes", "unknown field"},
		{"field with wrong case", "    namespaces: [acme]", "    nameSpaces: [acme]", "publishers[0].nameSpaces", `did you mean "namespaces"`},
		{"misspelt nested field", "issuer: https", "issuers: https", "publishers[0].identities[0].sigstore.issuers", "unknown field"},
		{"string where a list belongs", "namespaces: [acme]", "namespaces: acme", "publishers[0].namespaces", "must be a list"},
		{"YAML boolean where a string belongs", "namespaces: [acme]", "namespaces: [acme, no]", "publishers[0].namespaces[1]", "must be a string"},
		{"bool field given a string", "    namespaces: [acme]", "    namespaces: [acme]\n    requireVerifiedOrg: \"yes\"", "publishers[0].requireVerifiedOrg", "true or false"},
		{"no endpoints", "endpoints:\n  - name: hf\n    url: https://huggingface.co\n    cdnHosts: [cdn-lfs.hf.co]\n", "endpoints: []\n", "endpoints", "at least one"},
		{"http endpoint", "url: https://huggingface.co", "url: http://huggingface.co", "endpoints[0].url", "must use https"},
		{"endpoint with credentials", "url: https://huggingface.co", "url: https://user:pw@huggingface.co", "endpoints[0].url", "user info"},
		{"endpoint with query", "url: https://huggingface.co", "url: https://huggingface.co/?x=1", "endpoints[0].url", "query"},
		{"relative endpoint", "url: https://huggingface.co", "url: huggingface.co", "endpoints[0].url", "absolute URL"},
		{"bad endpoint name", "name: hf", "name: Hugging Face", "endpoints[0].name", "lower-case"},
		{"cdn host is a URL", "[cdn-lfs.hf.co]", "[https://cdn-lfs.hf.co]", "endpoints[0].cdnHosts[0]", "not a URL"},
		{"cdn wildcard too broad", "[cdn-lfs.hf.co]", "[\"*.co\"]", "endpoints[0].cdnHosts[0]", "two labels"},
		{"cdn wildcard in the middle", "[cdn-lfs.hf.co]", "[\"cdn.*.hf.co\"]", "endpoints[0].cdnHosts[0]", "leading"},
		{"cdn bad port", "[cdn-lfs.hf.co]", "[\"cdn-lfs.hf.co:99999\"]", "endpoints[0].cdnHosts[0]", "invalid port"},
		{"cdn duplicate", "[cdn-lfs.hf.co]", "[cdn-lfs.hf.co, CDN-LFS.hf.co]", "endpoints[0].cdnHosts[1]", "listed twice"},
		{"no publishers", basePolicy[strings.Index(basePolicy, "publishers:"):], "publishers: []\n", "publishers", "at least one publisher"},
		{"publisher without name", "  - name: acme\n", "  - name: \"\"\n", "publishers[0].name", "required"},
		{"publisher without namespaces", "namespaces: [acme]", "namespaces: []", "publishers[0].namespaces", "at least one namespace"},
		{"match-everything namespace", "namespaces: [acme]", "namespaces: [\"*\"]", "publishers[0].namespaces[0]", "must be literal"},
		{"match-everything repo glob", "namespaces: [acme]", "namespaces: [\"*/*\"]", "publishers[0].namespaces[0]", "must be literal"},
		{"wildcard organisation", "namespaces: [acme]", "namespaces: [\"acme-*/models\"]", "publishers[0].namespaces[0]", "must be literal"},
		{"too many slashes", "namespaces: [acme]", "namespaces: [acme/a/b]", "publishers[0].namespaces[0]", "more than one '/'"},
		{"bad glob", "namespaces: [acme]", "namespaces: [\"acme/[a-\"]", "publishers[0].namespaces[0]", "syntax error"},
		{"invalid organisation name", "namespaces: [acme]", "namespaces: [\"-acme\"]", "publishers[0].namespaces[0]", "not a valid Hub organisation"},
		{"namespace listed twice", "namespaces: [acme]", "namespaces: [acme, \"acme/*\"]", "publishers[0].namespaces[1]", "listed twice"},
		{"unknown publisher endpoint", "    namespaces: [acme]", "    namespaces: [acme]\n    endpoints: [internal]", "publishers[0].endpoints[0]", "not the name or URL"},
		{"signature required without identities", "    identities:\n      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}\n", "", "publishers[0].identities", "at least one identity"},
		{"identities without requiring a signature", "    namespaces: [acme]", "    namespaces: [acme]\n    requireSignature: false", "publishers[0].identities", "requireSignature is false"},
		{"empty identity", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - {}", "publishers[0].identities[0]", "exactly one of"},
		{"two kinds in one identity", "issuer: https://accounts.google.com}", "issuer: https://accounts.google.com}\n        publicKey: {pem: x}", "publishers[0].identities[0]", "exactly one of sigstore, publicKey or certificate is required, found 2"},
		{"sigstore without issuer", ", issuer: https://accounts.google.com", "", "publishers[0].identities[0].sigstore", "issuer or issuerRegexp is required"},
		{"sigstore issuer not https", "issuer: https://accounts.google.com", "issuer: accounts.google.com", "publishers[0].identities[0].sigstore.issuer", "https://"},
		{"sigstore identity and regexp", "identity: alice@acme.example", "identity: alice@acme.example, identityRegexp: \"^a$\"", "publishers[0].identities[0].sigstore", "exclusive"},
		// Patterns are matched against the whole value; one that accepts an empty value would
		// accept a certificate without the field.
		{"identity regexp with an empty alternative", "identity: alice@acme.example", "identityRegexp: '^|alice@acme\\.example$'", "publishers[0].identities[0].sigstore.identityRegexp", "matches an empty value"},
		{"issuer regexp matching anything", "issuer: https://accounts.google.com", "issuerRegexp: '^.*$'", "publishers[0].identities[0].sigstore.issuerRegexp", "matches an empty value"},
		{"extension exact and regexp", "issuer: https://accounts.google.com}", "issuer: https://accounts.google.com, extensions: {sourceRepositoryRef: refs/tags/v1, sourceRepositoryRefRegexp: refs/tags/.+}}", "publishers[0].identities[0].sigstore.extensions.sourceRepositoryRef", "exclusive"},
		{"extension regexp invalid", "issuer: https://accounts.google.com}", "issuer: https://accounts.google.com, extensions: {buildTriggerRegexp: '(push'}}", "publishers[0].identities[0].sigstore.extensions.buildTriggerRegexp", "not a valid regular expression"},
		{"extension regexp accepting its absence", "issuer: https://accounts.google.com}", "issuer: https://accounts.google.com, extensions: {githubWorkflowRefRegexp: 'refs/tags/.+|'}}", "publishers[0].identities[0].sigstore.extensions.githubWorkflowRefRegexp", "matches an empty value"},
		{"unknown extension", "issuer: https://accounts.google.com}", "issuer: https://accounts.google.com, extensions: {sourceRepositoryUri: x}}", "publishers[0].identities[0].sigstore.extensions.sourceRepositoryUri", `did you mean "sourceRepositoryURI"`},
		{"unknown extended key usage", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - certificate: {roots: [{path: " + interopCACert + "}], extendedKeyUsages: [codesigning]}", "publishers[0].identities[0].certificate.extendedKeyUsages[0]", `"codesigning" is not an extended key usage`},
		{"empty extended key usages", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - certificate: {roots: [{path: " + interopCACert + "}], extendedKeyUsages: []}", "publishers[0].identities[0].certificate.extendedKeyUsages", "is empty"},
		{"certificate subject pair", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - certificate: {roots: [{path: " + interopCACert + "}], subject: {email: a@acme.example, emailRegexp: '.+@acme\\.example'}}", "publishers[0].identities[0].certificate.subject.email", "exclusive"},
		{"certificate subject regexp accepting its absence", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - certificate: {roots: [{path: " + interopCACert + "}], subject: {organizationRegexp: 'Acme.*|'}}", "publishers[0].identities[0].certificate.subject.organizationRegexp", "matches an empty value"},
		{"certificate subject unknown field", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - certificate: {roots: [{path: " + interopCACert + "}], subject: {CN: x}}", "publishers[0].identities[0].certificate.subject.CN", "unknown field"},
		{"invalid identity regexp", "identity: alice@acme.example", "identityRegexp: '^(alice$'", "publishers[0].identities[0].sigstore.identityRegexp", "not a valid regular expression"},
		{"public key file missing", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - publicKey: {path: /nonexistent/key.pub}", "publishers[0].identities[0].publicKey.path", "no such file"},
		{"public key both path and pem", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - publicKey: {path: a, pem: b}", "publishers[0].identities[0].publicKey", "exactly one of path or pem"},
		{"public key that is a private key", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - publicKey: {path: " + interopPrivKey + "}", "publishers[0].identities[0].publicKey.path", "openssl pkey -in PRIVATE_KEY.pem -pubout"},
		{"public key given a certificate", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - publicKey: {path: " + interopCACert + "}", "publishers[0].identities[0].publicKey.path", `"CERTIFICATE" is not a PUBLIC KEY`},
		{"public key not PEM", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - publicKey: {pem: hello}", "publishers[0].identities[0].publicKey.pem", "no PEM block"},
		{"two public keys in one", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - publicKey:\n          pem: |\n            " + pubKeyPEM + pubKeyPEM, "publishers[0].identities[0].publicKey.pem", "2 public keys"},
		{"certificate without roots", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - certificate: {roots: []}", "publishers[0].identities[0].certificate.roots", "at least one root"},
		{"certificate root is a key", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - certificate: {roots: [{path: " + interopPublicKey + "}]}", "publishers[0].identities[0].certificate.roots[0].path", "not a CERTIFICATE"},
		{"trust root without sigstore identity", "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - publicKey: {path: " + interopPublicKey + "}\n    trustRoot: " + interopTrustedRoot, "publishers[0].trustRoot", "no sigstore identity"},
		{"trust root of the wrong kind", "    namespaces: [acme]", "    namespaces: [acme]\n    trustRoot: " + filepath.Join("..", "testdata", "interop", "oms-spec", "test-vectors", "v1.0", "valid", "key.bundle.json"), "publishers[0].trustRoot", "want a Sigstore trusted root"},
		{"trust root is a directory", "    namespaces: [acme]", "    namespaces: [acme]\n    trustRoot: " + os.TempDir(), "publishers[0].trustRoot", "not a regular file"},
		{"signature file escaping the repo", "    namespaces: [acme]", "    namespaces: [acme]\n    signatureFile: ../model.sig", "publishers[0].signatureFile", "clean path inside the repository"},
		{"absolute ignore path", "    namespaces: [acme]", "    namespaces: [acme]\n    ignorePaths: [/etc]", "publishers[0].ignorePaths[0]", "relative"},
		{"unknown format", "publishers:\n", "content: {allowFormats: [safetensors, tensorrt]}\npublishers:\n", "content.allowFormats[1]", `"tensorrt" is not a format`},
		{"pickle format with pickle denied", "publishers:\n", "content: {allowFormats: [safetensors, pytorch-zip]}\npublishers:\n", "content.allowFormats[1]", "carries pickle"},
		{"empty format list", "publishers:\n", "content: {allowFormats: []}\npublishers:\n", "content.allowFormats", "nothing could load"},
		{"bad pickle rule", "publishers:\n", "content: {pickle: allow}\npublishers:\n", "content.pickle", "not a pickle rule"},
		{"negative file count", "publishers:\n", "content: {maxFiles: -1}\npublishers:\n", "content.maxFiles", "negative"},
		{"fractional file count", "publishers:\n", "content: {maxFiles: 1.5}\npublishers:\n", "content.maxFiles", "must be an integer"},
		{"bad size unit", "publishers:\n", "content: {maxFileSize: 10GB2}\npublishers:\n", "content.maxFileSize", "want a whole number"},
		{"unknown size unit", "publishers:\n", "content: {maxFileSize: 10Gb}\npublishers:\n", "content.maxFileSize", `unknown unit "Gb"`},
		{"negative size", "publishers:\n", "content: {maxTotalSize: -5}\npublishers:\n", "content.maxTotalSize", "negative"},
		{"file limit above total limit", "publishers:\n", "content: {maxFileSize: 2GiB, maxTotalSize: 1GiB}\npublishers:\n", "content.maxFileSize", "larger than content.maxTotalSize"},
		{"audit not a mapping", "publishers:\n", "audit: /var/log/x\npublishers:\n", "audit", "must be a mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := policyWith(t, tc.old, tc.new)
			_, err := modelverify.ParsePolicy([]byte(doc))
			if err == nil {
				t.Fatalf("ParsePolicy accepted:\n%s", doc)
			}
			if !errors.Is(err, modelverify.ErrInvalidPolicy) {
				t.Errorf("error does not match ErrInvalidPolicy: %v", err)
			}
			var pe *modelverify.PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, want *PolicyError", err)
			}
			for _, p := range pe.Problems {
				if p.Field == tc.field && strings.Contains(p.Message, tc.message) {
					if !strings.Contains(err.Error(), tc.field+": ") {
						t.Errorf("message %q does not name %s", err, tc.field)
					}
					return
				}
			}
			t.Errorf("no problem at %s containing %q; got:\n%v", tc.field, tc.message, err)
		})
	}
}

func generatedPublicKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestPolicyReportsEveryProblemAtOnce(t *testing.T) {
	doc := policyWith(t, "kind: ModelPolicy\n", "kind: ModelPolicy\nmode: loud\ncontent: {pickle: maybe}\n")
	doc = strings.Replace(doc, "url: https://huggingface.co", "url: ftp://huggingface.co", 1)
	_, err := modelverify.ParsePolicy([]byte(doc))
	var pe *modelverify.PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("ParsePolicy = %v", err)
	}
	var fields []string
	for _, p := range pe.Problems {
		fields = append(fields, p.Field)
	}
	if want := []string{"mode", "endpoints[0].url", "content.pickle"}; !reflect.DeepEqual(fields, want) {
		t.Errorf("fields = %v, want %v", fields, want)
	}
	if !strings.Contains(err.Error(), "3 problems") {
		t.Errorf("message = %q", err)
	}
}

func TestPolicyRefusesDuplicateKeys(t *testing.T) {
	// Without strict YAML, the second "mode" would silently win.
	doc := policyWith(t, "kind: ModelPolicy\n", "kind: ModelPolicy\nmode: enforce\nmode: audit\n")
	if _, err := modelverify.ParsePolicy([]byte(doc)); err == nil || !strings.Contains(err.Error(), "already set") {
		t.Fatalf("ParsePolicy = %v, want a duplicate-key error", err)
	}
}

func TestPolicyRefusesASecondYAMLDocument(t *testing.T) {
	if _, err := modelverify.ParsePolicy([]byte("---\n# leading marker and comments are fine\n" + basePolicy)); err != nil {
		t.Fatalf("leading document marker: %v", err)
	}
	for _, doc := range []string{
		basePolicy + "---\nmode: audit\n",
		basePolicy + "...\nmode: audit\n",
		"--- " + basePolicy[:20] + "\n---\n",
	} {
		_, err := modelverify.ParsePolicy([]byte(doc))
		if err == nil || !(strings.Contains(err.Error(), "second YAML document") || strings.Contains(err.Error(), "after the end")) {
			t.Errorf("ParsePolicy(%q) = %v, want the second document refused", doc[len(doc)-20:], err)
		}
	}
}

func TestPolicyRefusesNamespaceClaimedByTwoPublishers(t *testing.T) {
	doc := basePolicy + `  - name: other
    namespaces: ["acme/*"]
    requireSignature: false
`
	_, err := modelverify.ParsePolicy([]byte(doc))
	if err == nil || !strings.Contains(err.Error(), `publishers[1].namespaces[0]: "acme/*" is already claimed by publisher "acme"`) {
		t.Fatalf("ParsePolicy = %v", err)
	}
}

func TestPolicyAcceptsRealKeysCertificatesAndTrustRoots(t *testing.T) {
	inline := strings.ReplaceAll(generatedPublicKeyPEM(t), "\n", "\n            ")
	doc := policyWith(t, "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}\n",
		"      - sigstore: {identityRegexp: '^.*@acme\\.example$', issuerRegexp: '^https://accounts\\.google\\.com$'}\n"+
			"      - publicKey: {path: "+interopPublicKey+"}\n"+
			"      - publicKey:\n          pem: |\n            "+inline+"\n"+
			"      - certificate: {roots: [{path: "+interopCACert+"}, {path: "+filepath.Join(interopKeys, "int-ca-cert.pem")+"}]}\n"+
			"    trustRoot: "+interopTrustedRoot+"\n")
	p, err := modelverify.ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	key, err := p.Publishers[0].Identities[2].PublicKey.Bytes()
	if err != nil || !strings.Contains(string(key), "BEGIN PUBLIC KEY") {
		t.Errorf("inline PEM = %q, %v", key, err)
	}
	// A ClientTrustConfig is accepted too, as model_signing's --trust-config takes one.
	doc = strings.Replace(doc, interopTrustedRoot, interopClientTrust, 1)
	if _, err := modelverify.ParsePolicy([]byte(doc)); err != nil {
		t.Errorf("ClientTrustConfig: %v", err)
	}
}

// POLICY.md accepts what model_signing's key mode verifies, ECDSA on P-256, P-384 or P-521:
// an Ed25519 or RSA key is refused when the policy loads, by the key verifier NewVerifier
// builds, not first when a model is verified.
func TestPolicyRefusesKeysModelSigningCannotVerify(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edKey, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, pub := range map[string]any{"RSA key of 2048 bits": &rsaKey.PublicKey, "Ed25519 key": edKey} {
		der, _ := x509.MarshalPKIXPublicKey(pub)
		file := filepath.Join(t.TempDir(), "key.pub")
		if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		doc := policyWith(t, "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}", "      - publicKey: {path: "+file+"}")
		_, err := modelverify.ParsePolicy([]byte(doc))
		var pe *modelverify.PolicyError
		if !errors.As(err, &pe) || len(pe.Problems) != 1 || pe.Problems[0].Field != "publishers[0].identities[0].publicKey.path" ||
			!strings.Contains(pe.Problems[0].Message, name) || !strings.Contains(pe.Problems[0].Message, "ECDSA keys only") {
			t.Errorf("%s: ParsePolicy = %v", name, err)
		}
	}
}

func TestLoadPolicyRefusesHugeOrSpecialFiles(t *testing.T) {
	if _, err := modelverify.LoadPolicy(os.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := modelverify.LoadPolicy(big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("2 MiB policy: %v", err)
	}
}

// matchPolicy has overlapping namespaces at every level of precedence.
const matchPolicy = `apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints: [{url: "https://huggingface.co"}]
publishers:
  - name: whole-org
    namespaces: [meta-llama]
    requireSignature: false
  - name: llama-3
    namespaces: ["meta-llama/Llama-3*"]
    requireSignature: false
  - name: llama-3-1
    namespaces: ["meta-llama/Llama-3.1-*"]
    requireSignature: false
  - name: guard
    namespaces: [meta-llama/Llama-3.1-Guard, "other-org/*"]
    requireSignature: false
  - name: tie-a
    namespaces: ["tie/a-*"]
    requireSignature: false
  - name: tie-b
    namespaces: ["tie/*-b"]
    requireSignature: false
`

func TestPublisherPrefersTheMostSpecificNamespace(t *testing.T) {
	p, err := modelverify.ParsePolicy([]byte(matchPolicy))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ repo, want string }{
		{"meta-llama/Llama-3.1-Guard", "guard"},  // exact beats every glob
		{"meta-llama/Llama-3.1-8B", "llama-3-1"}, // longer literal prefix beats shorter
		{"meta-llama/Llama-3-70B", "llama-3"},    // glob beats the whole organisation
		{"meta-llama/CodeLlama-7b", "whole-org"}, // the organisation catches the rest
		{"other-org/anything", "guard"},          // "org/*" is the whole organisation
		{"tie/a-x", "tie-a"},                     // only one of the tied globs matches
		{"META-LLAMA/Llama-3-70B", ""},           // matching is case-sensitive
		{"meta-llama", ""},                       // not a repo id
		{"meta-llama/Llama-3/x", ""},             // not a repo id
		{"unknown/model", ""},                    // nobody claims it
		{"tie/a-b", ""},                          // two publishers, equally specific
		{"meta-llamaX/Llama-3-70B", ""},          // organisation must match exactly
		{"meta-llama/Llama-3.1-Guard-extra", "llama-3-1"},
	}
	for _, tc := range cases {
		pub, err := p.Publisher(tc.repo)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("Publisher(%q) = %q, want a refusal", tc.repo, pub.Name)
		case tc.want == "" && !errors.Is(err, modelverify.ErrPublisherNotAllowed):
			t.Errorf("Publisher(%q) error %v does not match ErrPublisherNotAllowed", tc.repo, err)
		case tc.want != "" && err != nil:
			t.Errorf("Publisher(%q): %v, want %q", tc.repo, err, tc.want)
		case tc.want != "" && pub.Name != tc.want:
			t.Errorf("Publisher(%q) = %q, want %q", tc.repo, pub.Name, tc.want)
		}
	}
	_, err = p.Publisher("tie/a-b")
	if err == nil || !strings.Contains(err.Error(), `"tie-a" and "tie-b"`) {
		t.Errorf("tie: %v, want both publishers named", err)
	}
}

func TestEndpointLookupNormalisesURLs(t *testing.T) {
	doc := policyWith(t, "  - name: hf\n", "  - name: local\n    url: http://127.0.0.1:8080/hub/\n  - name: hf\n")
	p, err := modelverify.ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"hf":                                  "https://huggingface.co",
		"https://huggingface.co":              "https://huggingface.co",
		"https://HuggingFace.co/":             "https://huggingface.co",
		"https://huggingface.co:443":          "https://huggingface.co",
		"local":                               "http://127.0.0.1:8080/hub",
		"http://127.0.0.1:8080/hub/":          "http://127.0.0.1:8080/hub",
		"https://huggingface.co.evil.example": "",
		"http://huggingface.co":               "",
		"https://huggingface.co/api":          "",
		"https://hf-mirror.com":               "",
	} {
		e, ok := p.Endpoint(in)
		switch {
		case want == "" && ok:
			t.Errorf("Endpoint(%q) = %q, want none", in, e.URL)
		case want != "" && (!ok || e.URL != want):
			t.Errorf("Endpoint(%q) = %v, %v, want %q", in, e, ok, want)
		}
	}
}

func TestEndpointAllowsRedirectsOnlyToApprovedHosts(t *testing.T) {
	e := &modelverify.Endpoint{URL: "https://huggingface.co", CDNHosts: []string{"cdn-lfs.hf.co", "*.xethub.hf.co", "mirror.example.com:8443"}}
	local := &modelverify.Endpoint{URL: "http://127.0.0.1:8080", CDNHosts: []string{"127.0.0.1:9090", "[::1]:9091"}}
	cases := []struct {
		e      *modelverify.Endpoint
		target string
		want   bool
	}{
		{e, "https://huggingface.co/api/models/x", true},               // same origin (a rename)
		{e, "https://cdn-lfs.hf.co/repos/ab/cd", true},                 // listed host
		{e, "https://CDN-LFS.hf.co./repos/ab/cd", true},                // case and trailing dot
		{e, "https://cas-bridge.xethub.hf.co/xet-bridge-us/1/2", true}, // wildcard subdomain
		{e, "https://a.b.xethub.hf.co/x", true},                        // wildcard, deeper
		{e, "https://xethub.hf.co/x", false},                           // wildcard excludes the bare suffix
		{e, "https://evilxethub.hf.co/x", false},                       // suffix must start at a label
		{e, "https://mirror.example.com:8443/x", true},                 // listed port
		{e, "https://mirror.example.com/x", false},                     // unlisted port (443)
		{e, "https://cdn-lfs.hf.co:8443/x", false},                     // port-less entry means 443
		{e, "http://cdn-lfs.hf.co/x", false},                           // downgrade to http
		{e, "https://user@cdn-lfs.hf.co/x", false},                     // user info
		{e, "https://cdn-lfs.hf.co.evil.example/x", false},             // look-alike
		{e, "https://us.aws.cdn.hf.co/x", false},                       // not listed
		{e, "ftp://cdn-lfs.hf.co/x", false},                            // scheme
		{local, "http://127.0.0.1:8080/resolve", true},                 // loopback test hub itself
		{local, "http://127.0.0.1:9090/blob", true},                    // loopback test CDN
		{local, "http://127.0.0.1:9999/blob", false},                   // another loopback port
		{local, "http://[::1]:9091/blob", true},                        // IPv6 entry
		{local, "http://localhost:9090/blob", false},                   // a name is not an IP
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if got := tc.e.AllowsRedirect(u); got != tc.want {
			t.Errorf("%s AllowsRedirect(%s) = %v, want %v", tc.e.URL, tc.target, got, tc.want)
		}
	}
	if e.AllowsRedirect(nil) {
		t.Error("AllowsRedirect(nil) = true")
	}
}

func TestParseByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want modelverify.ByteSize
		err  string
	}{
		{"0", 0, ""},
		{"1024", 1024, ""},
		{"10GiB", 10 << 30, ""},
		{"10 GiB", 10 << 30, ""},
		{"500MB", 500_000_000, ""},
		{"1kB", 1000, ""},
		{"1KB", 1000, ""},
		{"1.5GiB", 3 << 29, ""},
		{"0.5KiB", 512, ""},
		{"1.25MB", 1_250_000, ""},
		{"8EiB", 0, "unknown unit"},
		{"7PiB", 7 << 50, ""},
		{"8192PiB", 0, "too large"},
		{"9223372036854775807B", 1<<63 - 1, ""},
		{"9223372036854775808", 0, "too large"},
		{"0.1KiB", 0, "not a whole number of bytes"},
		{"1.5B", 0, "not a whole number of bytes"},
		{"10gib", 0, "unknown unit"},
		{"-1", 0, "want a whole number"},
		{"1e9", 0, "want a whole number"},
		{"", 0, "want a whole number"},
		{"GiB", 0, "want a whole number"},
		{"10  GiB", 0, "want a whole number"},
	}
	for _, tc := range cases {
		got, err := modelverify.ParseByteSize(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseByteSize(%q) = %d, %v; want error containing %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestByteSizeRoundTripsThroughJSON(t *testing.T) {
	for _, v := range []modelverify.ByteSize{0, 1, 999, 1000, 1024, 1536, 10 << 30, 50_000_000_000, 3 << 29, 1<<63 - 1} {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back modelverify.ByteSize
		if err := json.Unmarshal(data, &back); err != nil || back != v {
			t.Errorf("%d -> %s -> %d, %v", v, data, back, err)
		}
	}
	if got := modelverify.ByteSize(10 << 30).String(); got != "10GiB" {
		t.Errorf("String = %q", got)
	}
	if got := modelverify.ByteSize(50_000_000_000).String(); got != "50GB" {
		t.Errorf("String = %q", got)
	}
}

func TestValidateJudgesPoliciesBuiltInCode(t *testing.T) {
	p := &modelverify.Policy{
		Endpoints:  []modelverify.Endpoint{{URL: "https://huggingface.co"}},
		Publishers: []modelverify.Publisher{{Name: "bert", Namespaces: []string{"google-bert"}}},
	}
	err := p.Validate()
	if err == nil || !strings.Contains(err.Error(), "publishers[0].identities: at least one identity is required") {
		t.Fatalf("Validate = %v: a code-built publisher must default to requiring a signature", err)
	}
	no := false
	p.Publishers[0].RequireSignature = &no
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate = %v", err)
	}
	if !p.Enforcing() || p.Publishers[0].SignaturePath() != "model.sig" || p.Content.PickleRule() != modelverify.PickleDeny {
		t.Error("zero values must read as the documented defaults")
	}
}

func ExamplePolicy_Publisher() {
	policy, err := modelverify.ParsePolicy([]byte(`
apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints:
  - url: https://huggingface.co
    cdnHosts: [cas-bridge.xethub.hf.co]
publishers:
  - name: bert
    namespaces: [google-bert]
    requireSignature: false
  - name: bert-base
    namespaces: [google-bert/bert-base-uncased]
    identities:
      - sigstore:
          identity: release@google-bert.example
          issuer: https://accounts.google.com
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, repo := range []string{"google-bert/bert-base-uncased", "google-bert/bert-large-cased", "evil/bert"} {
		pub, err := policy.Publisher(repo)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s: publisher %s, signature required: %v\n", repo, pub.Name, pub.SignatureRequired())
	}
	// Output:
	// google-bert/bert-base-uncased: publisher bert-base, signature required: true
	// google-bert/bert-large-cased: publisher bert, signature required: false
	// publisher not allowed: no publisher in the policy claims "evil/bert"; the policy claims google-bert, google-bert/bert-base-uncased
}

func TestPolicyReferenceDocumentsEveryField(t *testing.T) {
	doc := string(readTestFile(t, "POLICY.md"))
	var walk func(reflect.Type, string)
	seen := map[reflect.Type]bool{}
	walk = func(typ reflect.Type, at string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !strings.Contains(doc, "`"+name+"`") {
				t.Errorf("POLICY.md does not document %s%s", at, name)
			}
			walk(f.Type, at+name+".")
		}
	}
	walk(reflect.TypeFor[modelverify.Policy](), "")
	walk(reflect.TypeFor[modelverify.Record](), "audit record ")
	for _, r := range modelverify.Reasons() {
		if !strings.Contains(doc, "`"+r.Name()+"`") {
			t.Errorf("POLICY.md does not document the reason %s", r.Name())
		}
	}
}

func readTestFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
