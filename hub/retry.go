package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryPolicy is the backoff shared by request retries and transfer retries.
type retryPolicy struct {
	retries int
	base    time.Duration
	max     time.Duration
	// budget is how long a request or transfer may go on failing, from its first failure:
	// waits, and the retries' own header and idle timeouts, must fit in what is left of it.
	budget   time.Duration
	onRetry  func(req *http.Request, attempt int, reason string)
	sleepCtx func(ctx context.Context, d time.Duration) error
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

// retryableStatus are the codes huggingface_hub retries: timeouts, rate limits, server errors.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// serverWait reads how long the server asked us to wait: RateLimit "…;r=0;t=N" means N+1
// seconds, as huggingface_hub does; else Retry-After in seconds (the HTTP-date form is ignored,
// as there). ok is false when the server said nothing.
func serverWait(h http.Header) (d time.Duration, ok bool) {
	if rl := h.Get("RateLimit"); rl != "" {
		var remaining, reset = -1, -1
		for part := range strings.SplitSeq(rl, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				continue
			}
			switch strings.TrimSpace(k) {
			case "r":
				remaining = n
			case "t":
				reset = n
			}
		}
		if remaining == 0 && reset >= 0 {
			return time.Duration(reset+1) * time.Second, true
		}
	}
	if ra := strings.TrimSpace(h.Get("Retry-After")); ra != "" {
		if n, err := strconv.Atoi(ra); err == nil && n >= 0 {
			return time.Duration(n) * time.Second, true
		}
	}
	return 0, false
}

// budgetKey carries the deadline of a retry budget already running, so that a request made by
// a transfer that is itself retrying (fetch.go) spends the same budget rather than a new one.
type budgetKey struct{}

func withBudgetDeadline(ctx context.Context, deadline time.Time) context.Context {
	return withTimeoutCap(context.WithValue(ctx, budgetKey{}, deadline), time.Until(deadline))
}

func budgetDeadline(ctx context.Context) time.Time {
	d, _ := ctx.Value(budgetKey{}).(time.Time)
	return d
}

// budgetBody marks an error answer that was not retried because the server asked for a wait
// beyond the retry budget; hubError reports it.
type budgetBody struct {
	io.ReadCloser
	asked, left time.Duration
}

// retryTransport retries one hop of a GET or HEAD on network errors and on 408, 429 and 5xx,
// honouring Retry-After and RateLimit, within the retry budget: from the first failure, every
// wait and every retry's header and idle timeouts must fit in the budget; a server asking for a
// longer wait is answered at once with its own error, which says so. Transfers that fail
// mid-body are resumed by the download loop instead, which knows how many bytes it already has.
type retryTransport struct {
	next   http.RoundTripper
	policy *retryPolicy
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return t.next.RoundTrip(req)
	}
	deadline := budgetDeadline(req.Context())
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 {
			r = req.WithContext(withTimeoutCap(req.Context(), time.Until(deadline)))
		}
		resp, err := t.next.RoundTrip(r)
		if req.Context().Err() != nil {
			return resp, err
		}
		var wait time.Duration
		var reason string
		asked := false
		switch {
		case err != nil:
			if errors.Is(err, context.Canceled) {
				return nil, err
			}
			wait, reason = t.policy.backoff(attempt), err.Error()
		case retryableStatus(resp.StatusCode):
			reason = resp.Status
			if d, ok := serverWait(resp.Header); ok {
				wait, asked = d, true
			} else {
				wait = t.policy.backoff(attempt)
			}
		default:
			return resp, nil
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(t.policy.budget)
		}
		if attempt >= t.policy.retries {
			return resp, err
		}
		if left := time.Until(deadline); wait >= left {
			if asked {
				resp.Body = &budgetBody{ReadCloser: resp.Body, asked: wait, left: max(left, 0)}
				return resp, nil
			}
			if resp != nil {
				return resp, nil // the Hub's own error says more than "budget spent"
			}
			return nil, fmt.Errorf("%w (%v) after %d attempts: %w", ErrRetryBudget, t.policy.budget, attempt+1, err)
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if t.policy.onRetry != nil {
			t.policy.onRetry(req, attempt+1, reason)
		}
		if err := t.policy.sleepCtx(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}
