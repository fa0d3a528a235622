package hub

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// authTransport adds the token and user agent. The token goes only to the endpoint's own scheme
// and host, whatever the redirect chain: Go's own rule forwards it to subdomains, which would hand
// it to *.hf.co when the endpoint is hf.co (reference §2.4), so the decision is made here, per hop.
type authTransport struct {
	next     http.RoundTripper
	endpoint *url.URL
	token    string
	ua       string
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Del("Authorization")
	if t.token != "" && sameOrigin(r.URL, t.endpoint) {
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	if t.ua != "" {
		r.Header.Set("User-Agent", t.ua)
	}
	return t.next.RoundTrip(r)
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// redirectPolicy decides which redirects the client follows.
type redirectPolicy struct {
	endpoint *url.URL
	hosts    []string
}

type noCrossHostKey struct{}

// withoutCrossHostRedirects makes requests under ctx stop at a cross-host redirect and return it,
// as huggingface_hub's metadata HEAD does: the redirect itself carries X-Linked-Etag/Size.
func withoutCrossHostRedirects(ctx context.Context) context.Context {
	return context.WithValue(ctx, noCrossHostKey{}, true)
}

func (p *redirectPolicy) check(req *http.Request, via []*http.Request) error {
	prev := via[len(via)-1]
	if len(via) >= 10 {
		return &RedirectError{From: redactURL(prev.URL), To: redactURL(req.URL), Reason: "more than 10 redirects"}
	}
	if sameOrigin(req.URL, prev.URL) {
		return nil
	}
	if req.Context().Value(noCrossHostKey{}) != nil {
		return http.ErrUseLastResponse
	}
	if strings.EqualFold(prev.URL.Scheme, "https") && !strings.EqualFold(req.URL.Scheme, "https") {
		return &RedirectError{From: redactURL(prev.URL), To: redactURL(req.URL), Reason: "downgrade from https"}
	}
	if !p.allowed(req.URL) {
		return &RedirectError{From: redactURL(prev.URL), To: redactURL(req.URL), Host: hostPort(req.URL),
			Allowed: slices.Clone(p.hosts), Reason: notAllowedReason(req.URL, p.hosts)}
	}
	return nil
}

// hostPort is u's host with its port, the scheme's default port when the URL names none, which
// is the spelling an allowed-host entry needs to match it.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
		if strings.EqualFold(u.Scheme, "http") {
			port = "80"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// notAllowedReason says which host:port was refused and, when an allowed entry names the same
// host without its port (the usual mistake with a CDN on a loopback port), that the port is why.
func notAllowedReason(u *url.URL, allowed []string) string {
	hp := hostPort(u)
	if len(allowed) == 0 {
		return fmt.Sprintf("%s is not an allowed redirect host (none are allowed besides the endpoint's own)", hp)
	}
	msg := fmt.Sprintf("%s is not an allowed redirect host (allowed: %s)", hp, strings.Join(allowed, ", "))
	host := strings.ToLower(u.Hostname())
	for _, a := range allowed {
		if strings.EqualFold(strings.TrimSpace(a), host) {
			msg += fmt.Sprintf("; %q without a port allows only ports 80 and 443", a)
			break
		}
	}
	return msg
}

func (p *redirectPolicy) allowed(u *url.URL) bool {
	if sameOrigin(u, p.endpoint) {
		return true
	}
	return hostAllowed(u, p.hosts)
}

// hostAllowed matches a URL's host against exact names, "*.suffix" patterns, and "host:port"
// entries (which must match host and port, for servers on loopback ports). A name or pattern
// without a port allows only the scheme's default port, as a policy's CDN host list means it.
func hostAllowed(u *url.URL, patterns []string) bool {
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	defaultPort := u.Port() == "" || (u.Scheme == "https" && u.Port() == "443") || (u.Scheme == "http" && u.Port() == "80")
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		if strings.Contains(p, ":") {
			if strings.EqualFold(u.Host, p) {
				return true
			}
		} else if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if defaultPort && strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if defaultPort && host == p {
			return true
		}
	}
	return false
}

// redactURL drops the query (signed CDN URLs carry credentials there) for error messages.
func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.User, c.Fragment = "", nil, ""
	return c.String()
}
