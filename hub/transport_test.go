package hub

import (
	"net/http"
	"net/url"
	"testing"
)

type recordingTransport struct{ got []*http.Request }

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.got = append(r.got, req)
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

// Go's own redirect rule would forward the token from hf.co to cdn.hf.co; ours must not.
func TestAuthorizationGoesOnlyToTheEndpointOrigin(t *testing.T) {
	endpoint, _ := url.Parse("https://hf.co")
	rec := &recordingTransport{}
	at := &authTransport{next: rec, endpoint: endpoint, token: "hf_secret"}
	for _, u := range []string{"https://hf.co/api/models/a/b", "https://cdn.hf.co/x", "http://hf.co/x", "https://hf.co:8443/x"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer leaked-from-caller")
		if _, err := at.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"Bearer hf_secret", "", "", ""}
	for i, r := range rec.got {
		if got := r.Header.Get("Authorization"); got != want[i] {
			t.Errorf("%s: Authorization %q, want %q", r.URL, got, want[i])
		}
	}
}

func TestRedirectPolicy(t *testing.T) {
	endpoint, _ := url.Parse("https://huggingface.co")
	p := &redirectPolicy{endpoint: endpoint, hosts: []string{"*.hf.co", "cdn-lfs.huggingface.co", "127.0.0.1:9000"}}
	for u, ok := range map[string]bool{
		"https://huggingface.co/api/resolve-cache/x": true,
		"https://cas-bridge.xethub.hf.co/x":          true,
		"https://cdn-lfs.huggingface.co/x":           true,
		"https://hf.co/x":                            false, // *.hf.co matches subdomains only
		"https://evil.example/x":                     false,
		"https://hf.co.evil.example/x":               false,
		"http://cas-bridge.xethub.hf.co/x":           false, // downgrade
		"http://127.0.0.1:9000/x":                    false, // downgrade from https
		"https://other.huggingface.co/x":             false,
		"https://cas-bridge.xethub.hf.co.:443/x":     true,
	} {
		prev, _ := http.NewRequest(http.MethodGet, "https://huggingface.co/a/b/resolve/main/x", nil)
		next, _ := http.NewRequest(http.MethodGet, u, nil)
		err := p.check(next, []*http.Request{prev})
		if (err == nil) != ok {
			t.Errorf("%s: allowed=%v, want %v (%v)", u, err == nil, ok, err)
		}
	}
}
