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

	"github.com/echelongraph/go-modelverify/internal/httpretry"
)

// retryPolicy is the backoff shared by request retries and transfer retries, with the hook
// that reports a request's retries.
type retryPolicy struct {
	httpretry.Policy
	onRetry func(req *http.Request, attempt int, reason string)
}

// stallError is httpretry.Timeouts' Stall for the Hub client: a stall is a *StallError.
func stallError(host string, wait time.Duration, headers bool) error {
	return &StallError{Host: host, Wait: wait, Headers: headers}
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
	return httpretry.CapTimeouts(context.WithValue(ctx, budgetKey{}, deadline), time.Until(deadline))
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
			r = req.WithContext(httpretry.CapTimeouts(req.Context(), time.Until(deadline)))
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
			wait, reason = t.policy.Backoff(attempt), err.Error()
		case httpretry.RetryableStatus(resp.StatusCode):
			reason = resp.Status
			if d, ok := serverWait(resp.Header); ok {
				wait, asked = d, true
			} else {
				wait = t.policy.Backoff(attempt)
			}
		default:
			return resp, nil
		}
		deadline = t.policy.Deadline(deadline)
		switch t.policy.Judge(attempt, wait, deadline) {
		case httpretry.OutOfRetries:
			return resp, err
		case httpretry.OutOfBudget:
			left := time.Until(deadline)
			if asked {
				resp.Body = &budgetBody{ReadCloser: resp.Body, asked: wait, left: max(left, 0)}
				return resp, nil
			}
			if resp != nil {
				return resp, nil // the Hub's own error says more than "budget spent"
			}
			return nil, fmt.Errorf("%w (%v) after %d attempts: %w", ErrRetryBudget, t.policy.Budget, attempt+1, err)
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if t.policy.onRetry != nil {
			t.policy.onRetry(req, attempt+1, reason)
		}
		if err := t.policy.Wait(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}
