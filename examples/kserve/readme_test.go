package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestReadmeTryItWithoutAClusterRunsAsWritten runs the shell block of README.md's "Try it
// without a cluster" from the repository root, as a reader would paste it, and checks what its
// comments promise.
func TestReadmeTryItWithoutAClusterRunsAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four programs")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("the walkthrough needs openssl")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Try it without a cluster\n")
	if !ok {
		t.Fatal(`README.md has no "Try it without a cluster" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, script, ok := strings.Cut(section, "```sh\n")
	script, _, ok2 := strings.Cut(script, "```\n")
	if !ok || !ok2 {
		t.Fatal("no sh block in the section")
	}

	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = "../.."
	home := t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + t.TempDir(),
		"GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false", "GOCACHE=" + goEnv(t, "GOCACHE"), "GOMODCACHE=" + goEnv(t, "GOMODCACHE"),
		"GOPROXY=" + goEnv(t, "GOPROXY")}
	// Its own process group, so that a hubtest the script leaves running is stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	if err == nil {
		defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = cmd.Wait()
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"exit 0\n.modelverify-evidence.json\nconfig.json\nmodel.safetensors\n",
		`"msg":"model verified and ready"`, `"decision":"allowed"`,
		"exit 1\n",
		`"msg":"model refused; nothing was written"`, `"reasons":["digest-mismatch"]`,
		`"reasons":["unsigned"]`, `"ref":"oci://127.0.0.1:`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the walkthrough's output lacks %q:\n%s", want, got)
		}
	}
	for _, tool := range []string{"hubtest", "modelcar-registry"} {
		if strings.Contains(got, tool+" did not start") {
			t.Errorf("%s did not start:\n%s", tool, got)
		}
	}
	// Both pulls, hf:// and oci://, put exactly the model and its evidence into the destination.
	if n := strings.Count(got, "exit 0\n.modelverify-evidence.json\nconfig.json\nmodel.safetensors\n{"); n != 2 {
		t.Errorf("%d verified pulls listed the model and then logged, want 2:\n%s", n, got)
	}
	// After each "exit 1", ls of the refused destination prints nothing: the refusal line follows.
	if n := strings.Count(got, "exit 1\n{"); n != 2 || strings.Count(got, "exit 1\n") != 2 {
		t.Errorf("%d refusals left their destination empty, want 2:\n%s", n, got)
	}
}

func goEnv(t *testing.T, name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
