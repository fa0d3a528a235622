package hub

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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

// timeoutTransport bounds the wait for response headers and, for the body, every single read:
// a read that delivers nothing for the idle timeout cancels the request and fails with a
// *StallError. The body as a whole is not bounded, as it may legitimately take hours. The
// retry budget (see retryTransport) may shorten both for a request that is being retried.
type timeoutTransport struct {
	next   http.RoundTripper
	header time.Duration
	idle   time.Duration
}

// timeoutsKey carries per-request overrides of the header and idle timeouts.
type timeoutsKey struct{}

type timeouts struct{ header, idle time.Duration }

// withTimeoutCap makes requests under ctx wait at most d for headers and for each read, for
// retries whose budget has only d left.
func withTimeoutCap(ctx context.Context, d time.Duration) context.Context {
	d = max(d, time.Millisecond) // a spent budget still bounds, it does not lift the bound
	return context.WithValue(ctx, timeoutsKey{}, timeouts{header: d, idle: d})
}

func (t *timeoutTransport) limits(ctx context.Context) (header, idle time.Duration) {
	header, idle = t.header, t.idle
	if c, ok := ctx.Value(timeoutsKey{}).(timeouts); ok {
		header, idle = capDuration(header, c.header), capDuration(idle, c.idle)
	}
	return header, idle
}

// capDuration is the shorter of d and limit, where 0 means "no bound".
func capDuration(d, limit time.Duration) time.Duration {
	if d <= 0 || (limit > 0 && limit < d) {
		return limit
	}
	return d
}

func (t *timeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	header, idle := t.limits(req.Context())
	if header <= 0 && idle <= 0 {
		return t.next.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	var timer *time.Timer
	if header > 0 {
		timer = time.AfterFunc(header, func() {
			cancel(&StallError{Host: req.URL.Host, Wait: header, Headers: true})
		})
	}
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if timer != nil {
		timer.Stop()
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && req.Context().Err() == nil {
			err = cause
		}
		cancel(nil)
		return nil, err
	}
	body := &idleBody{ReadCloser: resp.Body, ctx: ctx, cancel: cancel, idle: idle, host: req.URL.Host}
	if idle > 0 {
		body.timer = time.AfterFunc(time.Hour, body.expire)
		body.timer.Stop()
	}
	resp.Body = body
	return resp, nil
}

// idleBody fails a read that waits longer than idle for a byte. The timer runs only while a
// Read is in progress, so a caller that pauses between reads (a slow disk) is not taken for a
// stalled server.
type idleBody struct {
	io.ReadCloser
	ctx     context.Context
	cancel  context.CancelCauseFunc
	idle    time.Duration
	host    string
	timer   *time.Timer
	stalled atomic.Bool
	once    sync.Once
}

func (b *idleBody) expire() {
	b.stalled.Store(true)
	b.cancel(&StallError{Host: b.host, Wait: b.idle})
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.timer != nil {
		b.timer.Reset(b.idle)
	}
	n, err := b.ReadCloser.Read(p)
	if b.timer != nil {
		b.timer.Stop()
	}
	if err != nil && err != io.EOF && b.stalled.Load() {
		err = context.Cause(b.ctx)
	}
	return n, err
}

func (b *idleBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		if b.timer != nil {
			b.timer.Stop()
		}
		b.cancel(nil)
	})
	return err
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
