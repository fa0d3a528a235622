package httpretry

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts bounds the wait for response headers and, for the body, every single read: a read
// that delivers nothing for the idle timeout cancels the request and fails with the error Stall
// makes. The body as a whole is not bounded, as it may legitimately take hours. CapTimeouts may
// shorten both for one request (a retry with little budget left).
type Timeouts struct {
	Next http.RoundTripper
	// Header and Idle are the bounds; 0 turns one off.
	Header, Idle time.Duration
	// Stall makes the error of a request to host that delivered nothing for wait: no headers
	// when headers is true, no byte of the body otherwise.
	Stall func(host string, wait time.Duration, headers bool) error
}

// capKey carries per-request caps of the header and idle timeouts.
type capKey struct{}

// CapTimeouts makes requests under ctx wait at most d for headers and for each read, for
// retries whose budget has only d left.
func CapTimeouts(ctx context.Context, d time.Duration) context.Context {
	d = max(d, time.Millisecond) // a spent budget still bounds, it does not lift the bound
	return context.WithValue(ctx, capKey{}, d)
}

func (t *Timeouts) limits(ctx context.Context) (header, idle time.Duration) {
	header, idle = t.Header, t.Idle
	if c, ok := ctx.Value(capKey{}).(time.Duration); ok {
		header, idle = capDuration(header, c), capDuration(idle, c)
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

func (t *Timeouts) RoundTrip(req *http.Request) (*http.Response, error) {
	header, idle := t.limits(req.Context())
	if header <= 0 && idle <= 0 {
		return t.Next.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	var timer *time.Timer
	if header > 0 {
		timer = time.AfterFunc(header, func() { cancel(t.Stall(req.URL.Host, header, true)) })
	}
	resp, err := t.Next.RoundTrip(req.WithContext(ctx))
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
	body := &idleBody{ReadCloser: resp.Body, ctx: ctx, cancel: cancel, idle: idle}
	if idle > 0 {
		host := req.URL.Host
		body.timer = time.AfterFunc(time.Hour, func() {
			body.stalled.Store(true)
			cancel(t.Stall(host, idle, false))
		})
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
	timer   *time.Timer
	stalled atomic.Bool
	once    sync.Once
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
