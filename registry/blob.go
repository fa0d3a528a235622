package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// copyBufferSize is the read size of a blob transfer and of extraction.
const copyBufferSize = 1 << 20

// blobReader streams one blob and vouches for it: it hashes every byte it returns, refuses a
// byte past the descriptor's size, and returns io.EOF only once the size and the SHA-256 both
// match; otherwise the last read fails with a *DigestError. A transfer that breaks off (a
// dropped connection, a stall, a 5xx) is resumed from where it stopped with a Range request, or
// from a whole-blob answer with the bytes already read skipped, within the retry budget; the
// consumer sees one unbroken stream. So a layer is read from the network once, hashed once,
// and extracted as it arrives; what it produced counts only after io.EOF.
type blobReader struct {
	c    *Client
	ctx  context.Context
	hc   *http.Client
	url  string
	desc v1.Descriptor
	what string // "layer 2 of ghcr.io/acme/model", for errors

	body     io.ReadCloser
	skip     int64 // bytes of a whole-blob answer already delivered before a retry
	h        hash.Hash
	have     int64
	attempt  int
	deadline time.Time
	pendErr  error // a transient failure after a partial read, retried on the next Read
	err      error // sticky
}

// openBlob returns a reader of the blob desc names, in repo, through hc (from blobClient).
func (c *Client) openBlob(ctx context.Context, hc *http.Client, repo name.Repository, desc v1.Descriptor, what string) (*blobReader, error) {
	if desc.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("registry: %s %s: %w: digest algorithm %q (only sha256 is supported)", what, desc.Digest, ErrUnsupportedFormat, desc.Digest.Algorithm)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("registry: %s %s: negative size %d", what, desc.Digest, desc.Size)
	}
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), desc.Digest)
	return &blobReader{c: c, ctx: ctx, hc: hc, url: u, desc: desc, what: what, h: sha256.New()}, nil
}

func (r *blobReader) progress(state ProgressState, err error) {
	r.c.report(Progress{Digest: r.desc.Digest.String(), MediaType: string(r.desc.MediaType), State: state,
		Complete: r.have, Total: r.desc.Size, Attempt: r.attempt, Err: err})
}

// Close releases the connection.
func (r *blobReader) Close() error {
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for {
		if e := r.pendErr; e != nil {
			r.pendErr = nil
			if !r.retry(e) {
				return 0, r.fail(e)
			}
		}
		if r.have == r.desc.Size && r.body == nil {
			return 0, r.finish()
		}
		if r.body == nil {
			if err := r.open(); err != nil {
				if r.retry(err) {
					continue
				}
				return 0, r.fail(err)
			}
		}
		if r.skip > 0 {
			n, err := io.CopyN(io.Discard, r.body, r.skip)
			r.skip -= n
			if err != nil {
				r.Close()
				if r.retry(markTransient(err)) {
					continue
				}
				return 0, r.fail(err)
			}
		}
		// Read one byte more than is left, so that a body longer than the blob is caught here.
		want := min(int64(len(p)), r.desc.Size-r.have+1)
		n, err := r.body.Read(p[:want])
		if r.have+int64(n) > r.desc.Size {
			r.Close()
			return 0, r.fail(&DigestError{What: r.what, Expected: strconv.FormatInt(r.desc.Size, 10) + " bytes", Found: "more", Size: true})
		}
		r.h.Write(p[:n])
		r.have += int64(n)
		if n > 0 {
			r.progress(ProgressBytes, nil)
		}
		switch {
		case err == io.EOF && r.have == r.desc.Size:
			r.Close()
			if n > 0 {
				return n, nil
			}
			return 0, r.finish()
		case err == io.EOF:
			r.Close() // ended early: resumed like a dropped connection
			if n > 0 {
				return n, nil
			}
			if r.retry(markTransient(fmt.Errorf("the body ended after %d of %d bytes", r.have, r.desc.Size))) {
				continue
			}
			return 0, r.fail(&DigestError{What: r.what, Expected: strconv.FormatInt(r.desc.Size, 10) + " bytes", Found: strconv.FormatInt(r.have, 10) + " bytes", Size: true})
		case err != nil:
			r.Close()
			if n > 0 {
				r.pending(markTransient(err))
				return n, nil
			}
			if r.retry(markTransient(err)) {
				continue
			}
			return 0, r.fail(err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// pending notes a transient error to handle on the next Read (after delivering n bytes now).
func (r *blobReader) pending(err error) { r.pendErr = err }

// fail makes err (or the error retry already settled on) the reader's final error.
func (r *blobReader) fail(err error) error {
	if r.err != nil {
		return r.err
	}
	if !errors.As(err, new(*DigestError)) {
		err = fmt.Errorf("registry: %s (%s): %w", r.what, r.desc.Digest, err)
	}
	r.err = err
	return err
}

// finish checks the digest once every byte arrived.
func (r *blobReader) finish() error {
	if got := "sha256:" + hex.EncodeToString(r.h.Sum(nil)); got != r.desc.Digest.String() {
		return r.fail(&DigestError{What: r.what, Expected: r.desc.Digest.String(), Found: got})
	}
	r.progress(ProgressDone, nil)
	r.err = io.EOF
	return io.EOF
}

// open starts (or resumes) the transfer.
func (r *blobReader) open() error {
	if r.attempt == 0 && r.have == 0 {
		r.progress(ProgressStarted, nil)
	}
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	if r.have > 0 {
		// Closed ranges: go-containerregistry's registry understands no other form.
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r.have, r.desc.Size-1))
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	switch {
	case r.have > 0 && resp.StatusCode == http.StatusPartialContent && strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", r.have)):
		if resp.ContentLength > r.desc.Size-r.have {
			resp.Body.Close()
			return &DigestError{What: r.what, Expected: strconv.FormatInt(r.desc.Size, 10) + " bytes", Found: strconv.FormatInt(r.have+resp.ContentLength, 10) + " bytes (Content-Length)", Size: true}
		}
	case resp.StatusCode == http.StatusOK:
		if resp.ContentLength > r.desc.Size {
			resp.Body.Close()
			return &DigestError{What: r.what, Expected: strconv.FormatInt(r.desc.Size, 10) + " bytes", Found: strconv.FormatInt(resp.ContentLength, 10) + " bytes (Content-Length)", Size: true}
		}
		r.skip = r.have // the registry ignored the Range: skip what we already have
	default:
		err := httpStatusError(resp)
		resp.Body.Close()
		return err
	}
	r.body = resp.Body
	return nil
}

// retry decides whether err is worth another try, waits, and says so.
func (r *blobReader) retry(err error) bool {
	if !transient(err) || r.ctx.Err() != nil {
		return false
	}
	p := r.c.policy
	if r.deadline.IsZero() {
		r.deadline = time.Now().Add(p.budget)
	}
	wait := p.backoff(r.attempt)
	if r.attempt >= p.retries || wait >= time.Until(r.deadline) {
		r.err = &budgetError{fmt.Errorf("registry: %s (%s): %w (%v, %d attempts): %w", r.what, r.desc.Digest, ErrRetryBudget, p.budget, r.attempt+1, err)}
		return false
	}
	r.attempt++
	r.progress(ProgressRetry, err)
	if serr := p.sleep(r.ctx, wait); serr != nil {
		r.err = serr
		return false
	}
	return true
}

// httpStatusError is a *RegistryError from a blob answer.
func httpStatusError(resp *http.Response) error {
	re := &RegistryError{Method: resp.Request.Method, URL: redactURL(resp.Request.URL.String()), StatusCode: resp.StatusCode}
	var body struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if decodeJSONLimited(resp.Body, 64<<10, &body) == nil {
		for _, e := range body.Errors {
			re.Codes = append(re.Codes, e.Code)
			if re.Message == "" {
				re.Message = e.Message
			}
		}
	}
	return re
}

// transientError marks a failure of the connection, not of the content.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func markTransient(err error) error { return &transientError{err} }

// transient reports whether a transfer failure is worth retrying: the connection broke or
// stalled, or the registry answered 408, 429 or 5xx. A wrong digest or size is not: the
// registry served those bytes on purpose, or something between us changes them.
func transient(err error) bool {
	var te *transientError
	var re *RegistryError
	var de *DigestError
	switch {
	case errors.As(err, &de), errors.Is(err, ErrPlainHTTP):
		return false
	case errors.As(err, &te), errors.Is(err, ErrStalled):
		return true
	case errors.As(err, &re):
		return retryableStatus(re.StatusCode)
	}
	// Errors from Do: a refused or reset connection is worth another try; the retry layer
	// giving up, or a TLS failure, is not.
	return !errors.Is(err, ErrRetryBudget) && retryableNetError(err)
}
