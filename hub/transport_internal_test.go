package hub

import (
	"net/url"
	"testing"
)

func TestHostAllowedMatchesNamesPatternsAndPortsStrictly(t *testing.T) {
	patterns := []string{"cdn-lfs.hf.co", "*.xethub.hf.co", "127.0.0.1:8081"}
	for raw, want := range map[string]bool{
		"https://cdn-lfs.hf.co/x":              true,
		"https://cdn-lfs.hf.co:443/x":          true,
		"https://cdn-lfs.hf.co:8443/x":         false, // a bare name means the default port
		"https://CDN-LFS.hf.co./x":             true,
		"https://evil-cdn-lfs.hf.co/x":         false,
		"https://cas-bridge.xethub.hf.co/x":    true,
		"https://xethub.hf.co/x":               false, // *.suffix matches subdomains only
		"https://cas-bridge.xethub.hf.co:80/x": false,
		"http://127.0.0.1:8081/x":              true,
		"http://127.0.0.1:8082/x":              false,
		"http://127.0.0.1/x":                   false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostAllowed(u, patterns); got != want {
			t.Errorf("%s: allowed=%v, want %v", raw, got, want)
		}
	}
}
