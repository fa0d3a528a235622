package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestDemoShowsOneModelAllowedAndOneRefused(t *testing.T) {
	out, stderr := wantExit(t, 0, t.TempDir(), "demo")
	for _, want := range []string{
		"1. pull hf://acme/tiny-llm@main\n   ALLOWED: signature\n",
		"   signer:       key sha256:",
		"   digest:       sha256:",
		"     model.safetensors        safetensors  sha256:",
		"2. pull hf://acme/tiny-llm-tampered@main\n   REFUSED: digest-mismatch\n",
		"   - digest-mismatch: file model.safetensors, expected sha256:",
		"demo passed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// The OCI half: a registry on loopback, whose host the references name.
	m := regexp.MustCompile(`A local OCI registry at (127\.0\.0\.1:\d+) serves`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("demo output names no registry:\n%s", out)
	}
	reg := "oci://" + m[1]
	storeDir := filepath.Join("cache", "oci", strings.ReplaceAll(m[1], ":", "_"), "acme", "tiny-llm", "sha256-")
	for _, want := range []string{
		"3. pull " + reg + "/acme/tiny-llm:v1\n   ALLOWED: signature\n",
		"   endpoint:     " + reg + "\n",
		"   repository:   acme/tiny-llm at v1 (commit sha256:",
		storeDir,
		"4. pull " + reg + "/acme/tiny-llm:v1\n   (again: the tag resolved and the signature verified online, the layers not pulled)\n   ALLOWED: signature, from the store (",
		"5. pull " + reg + "/acme/tiny-llm-unsigned:v1\n   (the same model, pushed without a signature)\n   REFUSED: unsigned\n",
		"6. pull " + reg + "/acme/tiny-llm:v1\n   (the tag moved to other weights, the old image's signature copied beside them)\n   REFUSED: bad-signature\n",
		"every signature found was made for another image and copied here",
		"7. pull " + reg + "/acme/tiny-llm-pickle:v1\n   (signed, but a layer adds a pickle that runs os.system)\n   REFUSED: unsafe-content\n",
		"   - unsafe-content: file pytorch_model.bin, expected safe, found dangerous, pickle file is dangerous: dangerous: offset 2: GLOBAL: imports os.system",
		"8. pull oci://registry.example.com/acme/tiny-llm:v1\n   (a registry the policy does not approve: nothing is sent to it)\n   REFUSED: endpoint-not-allowed\n",
		"audit log: the last model blocked was oci://registry.example.com/acme/tiny-llm:v1",
		"audit log, the OCI decisions (decision, registry, repository, digest, signer or reasons):\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// The audit lines: registry, repository, digest and signer or reasons, one per decision.
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^   allowed  ` + regexp.QuoteMeta(reg) + ` +acme/tiny-llm +sha256:[0-9a-f]{12}\.\.\. key sha256:[0-9a-f]{64}$`),
		regexp.MustCompile(`(?m)^   allowed  ` + regexp.QuoteMeta(reg) + ` +acme/tiny-llm +sha256:[0-9a-f]{12}\.\.\. key sha256:[0-9a-f]{64} \(from the store\)$`),
		regexp.MustCompile(`(?m)^   refused  ` + regexp.QuoteMeta(reg) + ` +acme/tiny-llm-unsigned +sha256:[0-9a-f]{12}\.\.\. unsigned$`),
		regexp.MustCompile(`(?m)^   refused  ` + regexp.QuoteMeta(reg) + ` +acme/tiny-llm +sha256:[0-9a-f]{12}\.\.\. bad-signature$`),
		regexp.MustCompile(`(?m)^   refused  ` + regexp.QuoteMeta(reg) + ` +acme/tiny-llm-pickle +sha256:[0-9a-f]{12}\.\.\. unsafe-content$`),
		regexp.MustCompile(`(?m)^   refused  oci://registry\.example\.com acme/tiny-llm +- +endpoint-not-allowed$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("demo's OCI audit lines lack %s:\n%s", want, out)
		}
	}
	if stderr != "" {
		t.Errorf("demo wrote to stderr: %q", stderr)
	}
}

func TestDemoJSONAndKeep(t *testing.T) {
	out, stderr := wantExit(t, 0, t.TempDir(), "demo", "--json", "--keep")
	var res struct {
		OK      bool
		Allowed struct {
			Repo, Commit, Verification string
		}
		Refused struct {
			Reasons []string
		}
		OCI struct {
			Allowed struct {
				Repo, Commit, Endpoint, Verification string
			}
			Refused []struct {
				Ref     string
				Refused struct{ Reasons []string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !res.OK || res.Allowed.Repo != "acme/tiny-llm" || len(res.Allowed.Commit) != 40 || res.Allowed.Verification != "signature" ||
		len(res.Refused.Reasons) != 1 || res.Refused.Reasons[0] != "digest-mismatch" {
		t.Errorf("demo --json: %+v", res)
	}
	if a := res.OCI.Allowed; a.Repo != "acme/tiny-llm" || !strings.HasPrefix(a.Commit, "sha256:") || !strings.HasPrefix(a.Endpoint, "oci://127.0.0.1:") ||
		a.Verification != "signature" {
		t.Errorf("demo --json: oci allowed %+v", a)
	}
	var reasons []string
	for _, r := range res.OCI.Refused {
		reasons = append(reasons, strings.Join(r.Refused.Reasons, "+"))
	}
	if strings.Join(reasons, " ") != "unsigned bad-signature unsafe-content endpoint-not-allowed" {
		t.Errorf("demo --json: oci refusals %q", reasons)
	}
	kept, ok := strings.CutPrefix(strings.TrimSpace(stderr), "demo files kept in ")
	if !ok {
		t.Fatalf("--keep: stderr %q", stderr)
	}
	defer os.RemoveAll(kept)
	for _, name := range []string{"audit.jsonl", "policy.json", "cache", "record.key"} {
		if _, err := os.Stat(filepath.Join(kept, name)); err != nil {
			t.Errorf("--keep did not keep %s: %v", name, err)
		}
	}
	wantExit(t, 2, t.TempDir(), "demo", "extra-argument")
}
