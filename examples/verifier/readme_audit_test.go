package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's audit questions 3 and 4 are answered, as written, on the demo's kept policy and
// audit log: the approved registries, every decision on a registry's model with its registry,
// repository, digest and signer, and the last model blocked.
func TestREADMEAuditQuestionsRunAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the verifier and runs the demo")
	}
	script := readmeBlock(t, "Questions 3 and 4 on the demo's own policy")
	tmp := t.TempDir()
	cmd := exec.Command("bash", "-e", "-c", script)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(filteredEnv("HF_", "TMPDIR", "MODELVERIFY_", "DOCKER_CONFIG"), "TMPDIR="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	if err != nil {
		t.Fatalf("the audit questions' commands failed: %v\n%s", err, text)
	}
	for _, want := range []*regexp.Regexp{
		// 3: policy show lists the approved registry and who claims what on it.
		regexp.MustCompile(`approved registries \(oci://\):\n  -\s+127\.0\.0\.1:\d+ \(plain HTTP, loopback\): every repository`),
		regexp.MustCompile(`oci:\s+127\.0\.0\.1:\d+/acme/\*`),
		// 3: the audit records of registry models: registry, repository, digest, signer.
		regexp.MustCompile(`"decision":"allowed","ref":"oci://127\.0\.0\.1:\d+/acme/tiny-llm:v1","repo":"acme/tiny-llm","revision":"v1","commit":"sha256:[0-9a-f]{64}","endpoint":"oci://127\.0\.0\.1:\d+","publisher":"acme","verification":"signature","signer":"key sha256:[0-9a-f]{64}"`),
		regexp.MustCompile(`"decision":"refused","ref":"oci://registry\.example\.com/acme/tiny-llm:v1".*"endpoint":"oci://registry\.example\.com".*"reasons":\["endpoint-not-allowed"\]`),
		// The refusals of acme/tiny-llm, and question 4.
		regexp.MustCompile(`refused +oci://127\.0\.0\.1:\d+/acme/tiny-llm:v1 commit sha256:[0-9a-f]{64} publisher acme verified none reasons bad-signature`),
		regexp.MustCompile(`last blocked: \S+\n\S+ refused +oci://registry\.example\.com/acme/tiny-llm:v1`),
	} {
		if !want.MatchString(text) {
			t.Errorf("output lacks %s:\n%s", want, text)
		}
	}
	if kept, _ := filepath.Glob(filepath.Join(tmp, "modelverify-demo-*")); len(kept) != 0 || strings.Contains(text, "command not found") {
		t.Errorf("the commands did not run cleanly (left %v):\n%s", kept, text)
	}
}
