package hub_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
		hub.WithTransport(counterFor(ts)),
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

// sentCounter is a transport that counts the requests a client got an answer to: each of them
// reached the server's handler, which logs it. (A request cancelled on its way may never reach
// it, so those are not counted.)
type sentCounter struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *sentCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err == nil {
		c.n.Add(1)
	}
	return resp, err
}

// sentTo holds, for each test server, the count of requests its clients sent.
var sentTo sync.Map // *hubtest.TestServer -> *sentCounter

// counterFor is the transport that counts the requests sent to ts.
func counterFor(ts *hubtest.TestServer) *sentCounter {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 16
	c, _ := sentTo.LoadOrStore(ts, &sentCounter{next: base})
	return c.(*sentCounter)
}

// settled returns the requests ts has received, once it has logged every request the clients
// of newClient (and counterFor) got an answer to. hubtest logs a request when its handler returns, which
// can be after the client has read the whole answer and moved on: read at once, the log may
// lack the last request of an operation, and a ResetRequests may run before it is logged, so
// that it shows up as if made later.
func settled(t *testing.T, ts *hubtest.TestServer) []hubtest.Request {
	t.Helper()
	sent := counterFor(ts)
	deadline := time.Now().Add(30 * time.Second)
	for {
		reqs := ts.Requests()
		if int64(len(reqs)) >= sent.n.Load() {
			return reqs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server logged %d requests, but %d were answered", len(reqs), sent.n.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// resetRequests forgets the requests ts has received, once every request sent is logged, and
// starts counting again.
func resetRequests(t *testing.T, ts *hubtest.TestServer) {
	t.Helper()
	settled(t, ts)
	ts.ResetRequests()
	counterFor(ts).n.Store(0)
}
