package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The client's own transport layers sit under go-containerregistry's authentication, so they see
// every request as it leaves, credentials included, redirects included:
//
//	ggcr auth (bearer/basic) -> guardTransport -> retryTransport -> timeoutTransport -> base
//
// go-containerregistry adds credentials only for the registry's host, but it also chooses plain
// HTTP for private (RFC 1918) and .local hosts; guardTransport is where both rules are enforced
// whatever the layers above decide.

// guardTransport enforces two rules on every hop. A request that arrives by redirect to a host
// other than the registry's carries no credential (registries redirect blob downloads to
// storage hosts, which must never see the registry token). And plain HTTP goes to loopback
// hosts only: go-containerregistry's own http:// choice for a private or .local registry is
// upgraded to https://, and a redirect to http:// on any other host is refused before it is sent.
type guardTransport struct {
	next     http.RoundTripper
	registry string // host[:port] as in the reference
}

func (t *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.EqualFold(req.URL.Scheme, "http") && !isLoopback(req.URL.Hostname()) {
		if req.Response != nil {
			return nil, fmt.Errorf("registry: redirect to %s: %w", redactURL(req.URL.String()), ErrPlainHTTP)
		}
		r := req.Clone(req.Context())
		r.URL.Scheme = "https"
		req = r
	}
	if req.Response != nil && !sameHost(req.URL.Host, t.registry, req.URL.Scheme) {
		r := req.Clone(req.Context())
		r.Header.Del("Authorization")
		r.Header.Del("Cookie")
		req = r
	}
	return t.next.RoundTrip(req)
}

// isLoopback reports whether host (no port) is a loopback name or address. Names other than
// "localhost" are not resolved: what DNS says can change between the check and the dial.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// sameHost compares host[:port] values, filling in the scheme's default port.
func sameHost(a, b, scheme string) bool {
	return strings.EqualFold(canonicalHost(a, scheme), canonicalHost(b, scheme))
}

func canonicalHost(h, scheme string) string {
	if _, _, err := net.SplitHostPort(h); err == nil {
		return h
	}
	if strings.EqualFold(scheme, "http") {
		return net.JoinHostPort(strings.Trim(h, "[]"), "80")
	}
	return net.JoinHostPort(strings.Trim(h, "[]"), "443")
}

// redactURL drops the query (pre-signed storage URLs carry their signature there) and user info.
func redactURL(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.Index(s[i+3:], "@"); at >= 0 && !strings.Contains(s[i+3:i+3+at], "/") {
			s = s[:i+3] + s[i+3+at+1:]
		}
	}
	return s
}

// retryPolicy is the backoff shared by request retries and transfer retries.
type retryPolicy struct {
	retries int
	base    time.Duration
	max     time.Duration
	budget  time.Duration
	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// backoff is the wait before retry number attempt (0-based): base doubling, capped at max.
func (p *retryPolicy) backoff(attempt int) time.Duration {
	d := p.base
	for i := 0; i < attempt && d < p.max; i++ {
		d *= 2
	}
	return min(d, p.max)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// retryTransport retries one hop of a GET or HEAD on network errors and on 408, 429 and 5xx,
// within the retry budget, counted from the first failure. Transfers that fail mid-body are
// resumed by the layer download loop instead, which knows how many bytes it already has.
type retryTransport struct {
	next   http.RoundTripper
	policy *retryPolicy
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return t.next.RoundTrip(req)
	}
	var deadline time.Time
	for attempt := 0; ; attempt++ {
		resp, err := t.next.RoundTrip(req)
		if req.Context().Err() != nil {
			return resp, err
		}
		switch {
		case err != nil:
			if !retryableNetError(err) {
				return nil, err
			}
		case retryableStatus(resp.StatusCode):
		default:
			return resp, nil
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(t.policy.budget)
		}
		wait := t.policy.backoff(attempt)
		if attempt >= t.policy.retries || wait >= time.Until(deadline) {
			if resp != nil {
				return resp, nil // the registry's own error says more than "budget spent"
			}
			return nil, &budgetError{fmt.Errorf("registry: %w (%v, %d attempts): %w", ErrRetryBudget, t.policy.budget, attempt+1, err)}
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := t.policy.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// retryableNetError reports whether a failed request may pass if sent again: the connection
// was refused, reset or cut, or stalled. A TLS or certificate failure, a refused redirect or a
// plain-HTTP refusal will fail the same way again (and go-containerregistry's https-then-http
// probe of a loopback registry must see its https failure at once).
func retryableNetError(err error) bool {
	if errors.Is(err, ErrPlainHTTP) || errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	switch {
	case errors.Is(err, ErrStalled), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return true
	}
	return false
}

// timeoutTransport bounds the wait for response headers and, for the body, every single read:
// a read that delivers nothing for the idle timeout cancels the request and fails with a
// *StallError. The body as a whole is not bounded: a large layer may take hours.
type timeoutTransport struct {
	next   http.RoundTripper
	header time.Duration
	idle   time.Duration
}

func (t *timeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.header <= 0 && t.idle <= 0 {
		return t.next.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	var timer *time.Timer
	if t.header > 0 {
		timer = time.AfterFunc(t.header, func() {
			cancel(&StallError{Host: req.URL.Host, Wait: t.header, Headers: true})
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
	body := &idleBody{ReadCloser: resp.Body, ctx: ctx, cancel: cancel, idle: t.idle, host: req.URL.Host}
	if t.idle > 0 {
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
