// Package httpretry holds the HTTP mechanics that hub and registry share, so that both clients
// fail and retry in the same way: a transport that bounds the wait for response headers and for
// every read of a body (a stalled server becomes an error the caller can retry, while a slow but
// moving transfer goes on for as long as it takes), and the exponential backoff, counted in
// retries and bounded by a retry budget, that both clients' retry loops wait by.
//
// The errors are the caller's: Timeouts asks its Stall function for the error of a stall, so
// that each client reports its own *StallError and sentinels. The retry loops themselves stay in
// hub and registry, as they decide differently which failures are worth another try.
package httpretry

import (
	"context"
	"net/http"
	"time"
)

// Policy is the backoff shared by a client's request retries and transfer retries.
type Policy struct {
	// Retries is how many times a failure is retried at most.
	Retries int
	// Base is the first wait; each retry doubles it, up to Max.
	Base, Max time.Duration
	// Budget is how long a request or transfer may go on failing, from its first failure: the
	// waits, and the retries' own timeouts where the caller caps them, must fit in it.
	Budget time.Duration
	// Sleep waits d or until ctx ends; nil means the package's Sleep. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock the budget is counted on; nil means time.Now. Tests replace it.
	Now func() time.Time
}

// Verdict is what a Policy says of one more try after a failure.
type Verdict int

const (
	// Retry: wait, then try again.
	Retry Verdict = iota
	// OutOfRetries: every retry has been made.
	OutOfRetries
	// OutOfBudget: the wait would not end within the retry budget, so it is not begun.
	OutOfBudget
)

func (p *Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Deadline is the end of the retry budget: deadline itself once set, else Budget from now. Call
// it at the first failure, as the budget counts from there.
func (p *Policy) Deadline(deadline time.Time) time.Time {
	if deadline.IsZero() {
		return p.now().Add(p.Budget)
	}
	return deadline
}

// Judge says whether failure number attempt (0-based) may be retried after waiting wait (the
// backoff, or what the server asked for), when the budget ends at deadline. A wait that would
// reach the deadline is refused at once rather than slept and then refused.
func (p *Policy) Judge(attempt int, wait time.Duration, deadline time.Time) Verdict {
	if attempt >= p.Retries {
		return OutOfRetries
	}
	if wait >= deadline.Sub(p.now()) {
		return OutOfBudget
	}
	return Retry
}

// Backoff is the wait before retry number attempt (0-based): Base doubling, capped at Max.
func (p *Policy) Backoff(attempt int) time.Duration {
	d := p.Base
	for i := 0; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Wait sleeps d with the policy's Sleep, or until ctx ends.
func (p *Policy) Wait(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	return Sleep(ctx, d)
}

// Sleep waits d or until ctx ends, and then returns the context's cause. A wait of 0 or less
// returns at once, with ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
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

// RetryableStatus reports the codes worth retrying, as huggingface_hub and the OCI clients do:
// timeouts, rate limits, server errors.
func RetryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
