package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/echelongraph/go-modelverify/internal/httpretry"
)

// Sentinel errors. Every error the client returns for one of these conditions wraps the sentinel,
// so callers match with errors.Is and read the details with errors.As on the typed errors below.
var (
	// ErrRepoNotFound: the repository does not exist, or is private and the token cannot see it.
	ErrRepoNotFound = errors.New("repository not found")
	// ErrRevisionNotFound: the branch, tag or commit does not exist in the repository.
	ErrRevisionNotFound = errors.New("revision not found")
	// ErrEntryNotFound: the file does not exist at that revision.
	ErrEntryNotFound = errors.New("entry not found")
	// ErrGatedRepo: the repository is gated and the token has not been granted access.
	ErrGatedRepo = errors.New("gated repository")
	// ErrRepoDisabled: the Hub has disabled access to the repository.
	ErrRepoDisabled = errors.New("repository disabled")
	// ErrUnauthorized: the token was refused.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrRateLimited: the Hub kept answering 429 after every retry.
	ErrRateLimited = errors.New("rate limited")
	// ErrRedirectNotAllowed: a redirect went to a host the caller did not approve.
	ErrRedirectNotAllowed = errors.New("redirect to a host that is not allowed")
	// ErrSizeExceeded: a response was larger than the size the Hub announced or the caller allowed.
	ErrSizeExceeded = errors.New("response larger than expected")
	// ErrSizeMismatch: a download ended with fewer bytes than expected.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrDigestMismatch: downloaded bytes do not hash to the digest the Hub published.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrRangeNotHonoured: the server answered a byte-range request with other bytes.
	ErrRangeNotHonoured = errors.New("range request not honoured")
	// ErrOffline: offline mode is on and the answer is not in the cache.
	ErrOffline = errors.New("offline mode: not in the cache")
	// ErrInvalidResponse: the Hub's answer lacks what the protocol requires (a header, valid JSON).
	ErrInvalidResponse = errors.New("invalid response from the Hub")
	// ErrStagedCheck: the caller's staged-file check refused a file.
	ErrStagedCheck = errors.New("staged file refused")
	// ErrStalled: the Hub sent no response headers, or no body bytes, for the timeouts set with
	// WithTimeouts, and retrying did not help within the retry budget.
	ErrStalled = errors.New("the Hub stopped answering")
	// ErrRetryBudget: a request or transfer kept failing until the retry budget (WithRetry) was
	// spent, or the Hub asked to be retried later than the budget allows.
	ErrRetryBudget = errors.New("retry budget spent")
	// ErrTemporary matches every failure that says nothing about the model and may pass if tried
	// again later: the Hub or the network unreachable, a 408, 429 or 5xx answer after every
	// retry, a stall, a full disk or another I/O error. Refusals of the content (a digest
	// mismatch, a refused redirect) and answers that will not change (not found, gated,
	// unauthorized) do not match it.
	ErrTemporary = errors.New("temporary failure")
)

// temporaryError marks err as ErrTemporary without changing its message.
type temporaryError struct{ err error }

func (e *temporaryError) Error() string        { return e.err.Error() }
func (e *temporaryError) Unwrap() error        { return e.err }
func (e *temporaryError) Is(target error) bool { return target == ErrTemporary }

// markTemporary wraps err so that it matches ErrTemporary when it is a failure of the network,
// of the Hub's service or of the local disk, rather than an answer about the model.
func markTemporary(err error) error {
	if err == nil || errors.Is(err, ErrTemporary) || !isTemporary(err) {
		return err
	}
	return &temporaryError{err: err}
}

func isTemporary(err error) bool {
	if errors.Is(err, ErrDigestMismatch) || errors.Is(err, ErrRedirectNotAllowed) || errors.Is(err, ErrStagedCheck) ||
		errors.Is(err, ErrSizeExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM,
			syscall.ENOBUFS, syscall.EAGAIN, syscall.EBUSY, syscall.ETIMEDOUT, syscall.ECONNREFUSED,
			syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN, syscall.EPIPE:
			return true
		}
		// Errno satisfies net.Error too; any other (a permission, a missing folder) is a fault
		// of the setup, which waiting does not mend.
		return false
	}
	var ne net.Error
	var te *transientError
	return errors.As(err, &ne) || errors.As(err, &te) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrStalled) || errors.Is(err, ErrRetryBudget)
}

// StallError is a response that delivered nothing for a timeout: no headers, or no byte of the body.
type StallError struct {
	// Host is the server that stalled.
	Host string
	// Wait is how long the client waited.
	Wait time.Duration
	// Headers is true when the headers never came; false when the body stopped.
	Headers bool
}

func (e *StallError) Error() string {
	if e.Headers {
		return fmt.Sprintf("no response headers from %s within %v", e.Host, e.Wait)
	}
	return fmt.Sprintf("no data from %s for %v (idle timeout)", e.Host, e.Wait)
}

// Is matches ErrStalled, ErrTemporary and context.DeadlineExceeded (a timeout, as net/http's are).
func (e *StallError) Is(target error) bool {
	return target == ErrStalled || target == ErrTemporary || target == context.DeadlineExceeded
}

// HubError is an error answer from the Hub: its status, its X-Error-Code and its message.
type HubError struct {
	// Method and URL of the request that failed. The URL never carries a token.
	Method, URL string
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the X-Error-Code header ("RepoNotFound", "GatedRepo", ...), empty if absent.
	Code string
	// Message is X-Error-Message, or the "error" field of the JSON body.
	Message string
	// RequestID is X-Request-Id, for reports to the Hub's operators.
	RequestID string
	// Err is the sentinel this answer maps to, or nil for a generic HTTP failure.
	Err error
	// RetryAfter is the wait the Hub asked for (Retry-After or RateLimit) when it was more than
	// what was left of the retry budget, so the request was not retried; 0 otherwise.
	RetryAfter time.Duration
	// BudgetLeft is what was left of the retry budget then.
	BudgetLeft time.Duration
}

func (e *HubError) Error() string {
	msg := fmt.Sprintf("hub: %s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " (request id " + e.RequestID + ")"
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf("; the Hub asks to retry after %v, beyond the %v left of the retry budget: try again later",
			e.RetryAfter, e.BudgetLeft.Round(time.Millisecond))
	}
	return msg
}

func (e *HubError) Unwrap() error { return e.Err }

// Is matches ErrTemporary for the answers worth retrying later (408, 429 and 5xx).
// ErrRetryBudget when the Hub asked to wait longer than the retry budget allowed.
func (e *HubError) Is(target error) bool {
	return (target == ErrTemporary && httpretry.RetryableStatus(e.StatusCode)) || (target == ErrRetryBudget && e.RetryAfter > 0)
}

// RedirectError is a redirect the client refused to follow. Its URLs carry no query string:
// a CDN's signed URL holds credentials there, and would fill the message many times over.
type RedirectError struct {
	// From is the URL that answered with the redirect; To is where it pointed.
	From, To string
	// Host is the refused target's host:port ("127.0.0.1:18581", "cdn.example.com:443"): the
	// entry that, added to WithAllowedRedirectHosts, would allow it.
	Host string
	// Allowed are the hosts redirects were allowed to (WithAllowedRedirectHosts), besides the
	// endpoint's own.
	Allowed []string
	// Reason says why it was refused.
	Reason string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("hub: refused redirect from %s to %s: %s", e.From, e.To, e.Reason)
}

func (e *RedirectError) Unwrap() error { return ErrRedirectNotAllowed }

// FileError says which repository file a download or check failed on, and why.
type FileError struct {
	// Path is the file's path in the repository.
	Path string
	// Err is the reason: a *DigestError, a *SizeError, a *HubError, a *RangeError or the caller's error.
	Err error
}

func (e *FileError) Error() string { return fmt.Sprintf("hub: %s: %v", e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// DigestError is a computed digest that differs from the one the Hub published.
type DigestError struct {
	// Algorithm is "sha256" or "git-sha1".
	Algorithm string
	// Want is the published digest; Got the one computed over the bytes received.
	Want, Got string
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("%s mismatch: want %s, got %s", e.Algorithm, e.Want, e.Got)
}

func (e *DigestError) Unwrap() error { return ErrDigestMismatch }

// SizeError is a body whose length is not the expected one.
type SizeError struct {
	// Want is the expected size; Got is what arrived (for an overrun, at least Want+1).
	Want, Got int64
	// Overrun is true when more bytes arrived than announced.
	Overrun bool
}

func (e *SizeError) Error() string {
	if e.Overrun {
		return fmt.Sprintf("body larger than the expected %d bytes; cut off and refused", e.Want)
	}
	return fmt.Sprintf("size mismatch: want %d bytes, got %d", e.Want, e.Got)
}

func (e *SizeError) Unwrap() error {
	if e.Overrun {
		return ErrSizeExceeded
	}
	return ErrSizeMismatch
}

// RangeError is an answer to a byte-range request that does not carry the bytes asked for.
type RangeError struct {
	// Requested is the Range header sent.
	Requested string
	// StatusCode and ContentRange are what came back.
	StatusCode   int
	ContentRange string
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("asked for %q, got HTTP %d with Content-Range %q", e.Requested, e.StatusCode, e.ContentRange)
}

func (e *RangeError) Unwrap() error { return ErrRangeNotHonoured }
