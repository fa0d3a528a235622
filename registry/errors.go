package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Sentinel errors. Every error the client returns for one of these conditions wraps the sentinel,
// so callers match with errors.Is and read the details with errors.As on the typed errors below.
var (
	// ErrInvalidReference: the reference is not oci://host/repository[:tag][@sha256:...].
	ErrInvalidReference = errors.New("invalid OCI reference")
	// ErrNotFound: the repository, tag, manifest or blob does not exist (or is hidden from us).
	ErrNotFound = errors.New("not found in the registry")
	// ErrUnauthorized: the registry refused our credentials, or wants some and we have none.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDigestMismatch: bytes from the registry do not hash to the digest that names them.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch: a blob is longer or shorter than its descriptor says.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrUnsupportedFormat: the artefact is none of the model formats this package maps to files.
	ErrUnsupportedFormat = errors.New("unsupported model format")
	// ErrPlatformNotFound: an image index has no manifest for the wanted platform.
	ErrPlatformNotFound = errors.New("platform not in the image index")
	// ErrUnsafeArchive: a layer holds an entry that must not be extracted (a path out of the
	// model, a link, a device, a duplicate name).
	ErrUnsafeArchive = errors.New("unsafe layer entry")
	// ErrLimitExceeded: a layer holds more files or bytes than the limits allow.
	ErrLimitExceeded = errors.New("content limit exceeded")
	// ErrPlainHTTP: a request would have gone over plain HTTP to a host that is not loopback.
	ErrPlainHTTP = errors.New("plain HTTP is allowed only for loopback registries")
	// ErrStalled: the registry sent no headers, or no body bytes, for the timeouts set with
	// WithTimeouts, and retrying did not help within the retry budget.
	ErrStalled = errors.New("the registry stopped answering")
	// ErrRetryBudget: a request or transfer kept failing until the retry budget was spent.
	ErrRetryBudget = errors.New("retry budget spent")
	// ErrTemporary matches failures that say nothing about the model and may pass later: the
	// registry unreachable, 408, 429 or 5xx after every retry, a stall.
	ErrTemporary = errors.New("temporary failure")
	// ErrUnsigned: no cosign signature of the digest was found.
	ErrUnsigned = errors.New("no signature")
	// ErrSignature: a signature was found but does not verify, or does not sign this digest.
	ErrSignature = errors.New("signature does not verify")
)

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
		return fmt.Sprintf("registry: no response headers from %s within %v", e.Host, e.Wait)
	}
	return fmt.Sprintf("registry: no data from %s for %v (idle timeout)", e.Host, e.Wait)
}

// Is matches ErrStalled, ErrTemporary and context.DeadlineExceeded (a timeout, as net/http's are).
func (e *StallError) Is(target error) bool {
	return target == ErrStalled || target == ErrTemporary || target == context.DeadlineExceeded
}

// RegistryError is an error answer from the registry: the request, its status and the OCI
// error codes the registry sent.
type RegistryError struct {
	// Method and URL of the request that failed. The URL never carries a credential.
	Method, URL string
	// StatusCode is the HTTP status.
	StatusCode int
	// Codes are the OCI distribution error codes ("MANIFEST_UNKNOWN", "DENIED", ...).
	Codes []string
	// Message is the registry's first error message.
	Message string
}

func (e *RegistryError) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
	for _, c := range e.Codes {
		msg += " " + c
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Is maps the status to the sentinels: 404 is ErrNotFound, 401 and 403 are ErrUnauthorized,
// 408, 429 and 5xx are ErrTemporary.
func (e *RegistryError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrTemporary:
		return retryableStatus(e.StatusCode)
	}
	return false
}

// DigestError is content whose digest or size is not the one that names it.
type DigestError struct {
	// What names the content: "layer 2 of oci://...", "manifest", "config".
	What string
	// Expected is the digest (and size) the descriptor gives; Found what the bytes hash to.
	Expected, Found string
	// Size is true when the length, not the hash, differs.
	Size bool
}

func (e *DigestError) Error() string {
	if e.Size {
		return fmt.Sprintf("registry: %s: size mismatch: expected %s, found %s: the registry served other bytes than the manifest names; do not use this artefact", e.What, e.Expected, e.Found)
	}
	return fmt.Sprintf("registry: %s: digest mismatch: expected %s, found %s: the registry served other bytes than the manifest names; do not use this artefact", e.What, e.Expected, e.Found)
}

func (e *DigestError) Unwrap() error {
	if e.Size {
		return ErrSizeMismatch
	}
	return ErrDigestMismatch
}

// EntryError is a layer entry that extraction refused.
type EntryError struct {
	// Layer is the layer's digest; Entry the entry's name as the tar header gives it.
	Layer, Entry string
	// Reason says what is wrong with it.
	Reason string
	// Err is ErrUnsafeArchive or ErrLimitExceeded.
	Err error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("layer %s: entry %q: %s", e.Layer, e.Entry, e.Reason)
}

func (e *EntryError) Unwrap() error { return e.Err }

// SignatureError says why a signature of a manifest digest was refused.
type SignatureError struct {
	// Digest is the manifest digest being verified.
	Digest string
	// Source says where the signature was found ("referrer sha256:...", "tag sha256-....sig").
	Source string
	// Reason says what is wrong, with what was expected and what was found.
	Reason string
	// Err is ErrSignature or ErrUnsigned, or the verifier's own error.
	Err error
}

func (e *SignatureError) Error() string {
	if e.Source == "" {
		return fmt.Sprintf("registry: signature of %s: %s", e.Digest, e.Reason)
	}
	return fmt.Sprintf("registry: signature of %s (%s): %s", e.Digest, e.Source, e.Reason)
}

func (e *SignatureError) Unwrap() error { return e.Err }

// Is lets every SignatureError match ErrSignature unless it is the "none found" kind.
func (e *SignatureError) Is(target error) bool {
	return target == ErrSignature && !errors.Is(e.Err, ErrUnsigned)
}

// budgetError is a transient failure that outlasted the retry budget: it matches ErrTemporary
// (it may pass later) besides ErrRetryBudget and the failure itself.
type budgetError struct{ err error }

func (e *budgetError) Error() string        { return e.err.Error() }
func (e *budgetError) Unwrap() error        { return e.err }
func (e *budgetError) Is(target error) bool { return target == ErrTemporary }

// retryableStatus are the codes worth retrying: timeouts, rate limits, server errors.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// registryError turns go-containerregistry's *transport.Error into a *RegistryError, so that
// callers match our sentinels; other errors pass through.
func registryError(method string, err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return err
	}
	re := &RegistryError{Method: method, StatusCode: te.StatusCode}
	if te.Request != nil {
		re.Method = te.Request.Method
		u := *te.Request.URL
		u.User = nil
		u.RawQuery = ""
		re.URL = u.String()
	}
	for _, d := range te.Errors {
		re.Codes = append(re.Codes, string(d.Code))
		if re.Message == "" {
			re.Message = d.Message
		}
	}
	return re
}
