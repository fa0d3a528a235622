package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandServesAReposDirectory builds the command, serves DIR/<org>/<name>/, and checks the
// URL on its first line answers as the Hub, with LFS files redirected to the second listener.
func TestCommandServesAReposDirectory(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the command")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "hubtest")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	repo := filepath.Join(dir, "repos", "acme", "m")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(repo, "config.json"), []byte(`{}`), 0o644)
	_ = os.WriteFile(filepath.Join(repo, "model.safetensors"), []byte("weights"), 0o644)

	cmd := exec.Command(bin, "-repos", filepath.Join(dir, "repos"), "-addr", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatal("no URL on stdout")
	}
	hubURL := strings.TrimSpace(lines.Text())
	lines.Scan()
	cdnURL := strings.TrimSpace(lines.Text())

	resp, err := http.Get(hubURL + "/api/models/acme/m?blobs=true")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		SHA      string
		Siblings []struct{ RFilename string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if len(info.SHA) != 40 || len(info.Siblings) != 2 {
		t.Fatalf("model info %+v", info)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Head(hubURL + "/acme/m/resolve/main/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), cdnURL+"/") {
		t.Errorf("LFS resolve: %d to %s, want a 302 to %s", resp.StatusCode, resp.Header.Get("Location"), cdnURL)
	}
}
