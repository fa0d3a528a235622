package hubtest_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

// TestOfficialJavaScriptClientWorksUnchanged runs @huggingface/hub's listFiles, modelInfo and
// downloadFile against the server, given its URL as their hubUrl. It needs node and
// testdata/hub/js/node_modules (npm ci there).
func TestOfficialJavaScriptClientWorksUnchanged(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; the @huggingface/hub check needs it")
	}
	dir, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "hub", "js"))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@huggingface", "hub")); err != nil {
		t.Skip("testdata/hub/js/node_modules is missing; run `npm ci` in testdata/hub/js")
	}
	big := bytes.Repeat([]byte("0123456789"), 200_000) // 2 MB, an LFS file behind the CDN redirect
	repo := map[string][]byte{
		"config.json":            []byte(`{"model_type":"llama"}`),
		"model.safetensors":      big,
		"tokenizer/special.json": []byte(`{"bos":"<s>"}`),
	}
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/js-model", repo), hubtest.WithTreePageSize(2))
	commit, _ := ts.Resolve("acme/js-model", "main")
	cmd := exec.Command(node, "check.mjs", ts.URL, "acme/js-model", "config.json", "model.safetensors")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var got struct {
		Files []struct {
			Type, Path, Oid string
			Size            int64
			LfsOid          *string
		}
		Info struct {
			Name, Sha, Author string
			Private           bool
			Gated             any
		}
		Downloads map[string]struct {
			Size   int64
			Sha256 string
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	files := 0
	for _, f := range got.Files {
		if f.Type != "file" {
			continue
		}
		files++
		if f.Size != int64(len(repo[f.Path])) {
			t.Errorf("listFiles: %s size %d", f.Path, f.Size)
		}
		if f.Path == "model.safetensors" && (f.LfsOid == nil || *f.LfsOid != sha256Hex(big)) {
			t.Errorf("listFiles: LFS oid %v", f.LfsOid)
		}
	}
	if files != len(repo) {
		t.Errorf("listFiles saw %d files over the paginated listing, want %d", files, len(repo))
	}
	if got.Info.Name != "acme/js-model" || got.Info.Sha != commit || got.Info.Author != "acme" || got.Info.Private || got.Info.Gated != false {
		t.Errorf("modelInfo %+v", got.Info)
	}
	for _, p := range []string{"config.json", "model.safetensors"} {
		d := got.Downloads[p]
		if d.Size != int64(len(repo[p])) || d.Sha256 != sha256Hex(repo[p]) {
			t.Errorf("downloadFile %s: %+v", p, d)
		}
	}
	for _, r := range ts.Requests() {
		if r.CDN && r.Authorization != "" {
			t.Errorf("the JS client sent a token to the CDN")
		}
	}
}
