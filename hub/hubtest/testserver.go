package hubtest

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestServer is a Server running on two loopback listeners: the Hub and its CDN.
type TestServer struct {
	*Server
	// URL is the Hub's base URL: give it to a client as its endpoint (HF_ENDPOINT).
	URL string
	// CDNURL is the CDN's base URL, which LFS downloads redirect to.
	CDNURL string
	// Hub and CDNServer are the running servers.
	Hub, CDNServer *httptest.Server
}

// NewServer starts a Server configured by opts on two httptest servers, one for the Hub and one
// for its CDN, and stops them when the test ends. It fails the test if an option is invalid.
func NewServer(t testing.TB, opts ...Option) *TestServer {
	t.Helper()
	s, err := Open(opts...)
	if err != nil {
		t.Fatalf("hubtest: %v", err)
	}
	cdn := httptest.NewServer(s.CDN())
	s.SetCDNURL(cdn.URL)
	hub := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		hub.Close()
		cdn.Close()
	})
	return &TestServer{Server: s, URL: hub.URL, CDNURL: cdn.URL, Hub: hub, CDNServer: cdn}
}

// CDNHost is the CDN's "host:port", the entry a client's allowed-redirect-hosts list needs.
func (ts *TestServer) CDNHost() string {
	u, _ := url.Parse(ts.CDNURL)
	return u.Host
}
