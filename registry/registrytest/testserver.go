package registrytest

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestServer is a Server running on loopback, with its storage host (for WithBlobRedirects).
type TestServer struct {
	*Server
	// URL is the registry's base URL (http://127.0.0.1:PORT); Host is its "127.0.0.1:PORT",
	// the host part of an oci:// reference.
	URL, Host string
	// StorageURL is the storage host's base URL.
	StorageURL string
	// Registry and StorageServer are the running servers.
	Registry, StorageServer *httptest.Server
}

// NewServer starts a Server configured by opts, and its storage host, on loopback, and stops
// them when the test ends. It fails the test if an option is invalid.
func NewServer(t testing.TB, opts ...Option) *TestServer {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	storage := httptest.NewServer(s.Storage())
	s.SetStorageURL(storage.URL)
	reg := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		reg.Close()
		storage.Close()
	})
	u, _ := url.Parse(reg.URL)
	return &TestServer{Server: s, URL: reg.URL, Host: u.Host, StorageURL: storage.URL, Registry: reg, StorageServer: storage}
}

// Ref is "oci://HOST/repo" followed by ":tag" or "@sha256:...", for a reference in a test.
func (ts *TestServer) Ref(repo, tagOrDigest string) string {
	sep := ":"
	if strings.HasPrefix(tagOrDigest, "sha256:") {
		sep = "@"
	}
	return "oci://" + ts.Host + "/" + repo + sep + tagOrDigest
}
