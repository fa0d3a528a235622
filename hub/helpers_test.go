package hub_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

const repoID = "acme/tiny-model"

// modelFiles is a small repo with plain git files (one nested) and LFS files.
func modelFiles() map[string][]byte {
	weights := bytes.Repeat([]byte("weights!"), 40_000) // 320 KB
	return map[string][]byte{
		"config.json":             []byte(`{"architectures":["BertModel"],"model_type":"bert"}`),
		"README.md":               []byte("# tiny model\n"),
		"model.safetensors":       weights,
		"tokenizer/vocab.txt":     []byte("[PAD]\n[UNK]\nhello\n"),
		"onnx/deep/model.onnx":    bytes.Repeat([]byte{1, 2, 3, 4}, 10_000),
		"copy-of-config.json.bak": []byte(`{"architectures":["BertModel"],"model_type":"bert"}`),
	}
}

// newClient returns a client for ts with a private cache, no environment, quick retries and
// the test CDN approved.
func newClient(t *testing.T, ts *hubtest.TestServer, opts ...hub.Option) *hub.Client {
	t.Helper()
	base := []hub.Option{
		hub.WithEnv(func(string) string { return "" }),
		hub.WithEndpoint(ts.URL),
		hub.WithCacheDir(filepath.Join(t.TempDir(), "hub")),
		hub.WithAllowedRedirectHosts(ts.CDNHost()),
		hub.WithRetry(4, time.Millisecond, 10*time.Millisecond, 5*time.Second),
	}
	c, err := hub.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// assertNoStaging fails if any staging or temporary file is left in the cache.
func assertNoStaging(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && (strings.HasSuffix(p, ".incomplete") || strings.HasSuffix(p, ".prefix") ||
			strings.HasSuffix(p, ".tmp") || strings.HasPrefix(d.Name(), ".modelverify-")) {
			t.Errorf("leftover staging file %s", p)
		}
		return nil
	})
}

// assertOnlyResumable fails if the cache holds a staging or temporary file other than an
// interrupted transfer kept for resuming ({blob}.incomplete and its prefix marker in blobs/).
func assertOnlyResumable(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		resumable := filepath.Base(filepath.Dir(p)) == "blobs" && d.Type().IsRegular() &&
			(strings.HasSuffix(p, ".incomplete") || strings.HasSuffix(p, ".incomplete.prefix"))
		if !resumable && (strings.Contains(d.Name(), ".incomplete") || strings.HasSuffix(p, ".tmp") ||
			strings.HasPrefix(d.Name(), ".modelverify-")) {
			t.Errorf("leftover staging file %s", p)
		}
		return nil
	})
}

// listDir returns the names in dir, or nil if it does not exist.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
