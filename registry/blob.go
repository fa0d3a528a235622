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

// blobSink receives a blob's bytes; Reset starts it over when a retry cannot resume.
type blobSink interface {
	io.Writer
	Reset() error
}

// copyBufferSize is the read size of a blob transfer.
const copyBufferSize = 1 << 20

// fetchBlob streams the blob desc names into sink, hashing it as it arrives: no byte past the
// descriptor's size is accepted, and the sink holds the blob only when fetchBlob returns nil,
// after the digest matched. A transfer that breaks off (a dropped connection, a stall, a 5xx)
// is resumed from where it stopped with a Range request, or started over if the registry answers
// the whole blob, within the retry budget.
// hc is blobClient's client for ref's repository, made once per Pull.
func (c *Client) fetchBlob(ctx context.Context, hc *http.Client, repo name.Repository, ref Reference, desc v1.Descriptor, sink blobSink, what string) error {
	if desc.Digest.Algorithm != "sha256" {
		return fmt.Errorf("registry: %s %s: %w: digest algorithm %q (only sha256 is supported)", what, desc.Digest, ErrUnsupportedFormat, desc.Digest.Algorithm)
	}
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), desc.Digest)
	h := sha256.New()
	var have int64
	var deadline time.Time
	buf := make([]byte, copyBufferSize)
	for attempt := 0; ; attempt++ {
		c.report(Progress{Digest: desc.Digest.String(), MediaType: string(desc.MediaType), State: ProgressStarted, Complete: have, Total: desc.Size, Attempt: attempt})
		n, err := c.transfer(ctx, hc, u, desc, have, h, sink, buf)
		have = n
		if err == nil {
			break
		}
		if !transient(err) || ctx.Err() != nil {
			return fmt.Errorf("registry: %s %s of %s: %w", what, desc.Digest, ref.Name(), err)
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(c.policy.budget)
		}
		wait := c.policy.backoff(attempt)
		if attempt >= c.policy.retries || wait >= time.Until(deadline) {
			return fmt.Errorf("registry: %s %s of %s: %w (%v, %d attempts): %w", what, desc.Digest, ref.Name(), ErrRetryBudget, c.policy.budget, attempt+1, err)
		}
		c.report(Progress{Digest: desc.Digest.String(), MediaType: string(desc.MediaType), State: ProgressRetry, Complete: have, Total: desc.Size, Attempt: attempt + 1, Err: err})
		if err := c.policy.sleep(ctx, wait); err != nil {
			return err
		}
	}
	if have != desc.Size {
		return &DigestError{What: what + " of " + ref.Name(), Expected: strconv.FormatInt(desc.Size, 10) + " bytes", Found: strconv.FormatInt(have, 10) + " bytes", Size: true}
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != desc.Digest.String() {
		return &DigestError{What: what + " of " + ref.Name(), Expected: desc.Digest.String(), Found: got}
	}
	c.report(Progress{Digest: desc.Digest.String(), MediaType: string(desc.MediaType), State: ProgressDone, Complete: have, Total: desc.Size})
	return nil
}

// transfer makes one GET of the blob from offset have, feeding h and sink, and returns how many
// bytes of the blob h and sink now hold. A too-long body is cut at the descriptor's size and
// refused, so a hostile registry cannot fill the disk.
func (c *Client) transfer(ctx context.Context, hc *http.Client, u string, desc v1.Descriptor, have int64, h hash.Hash, sink blobSink, buf []byte) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return have, err
	}
	if have > 0 {
		// Closed ranges: go-containerregistry's registry understands no other form.
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", have, desc.Size-1))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return have, err
	}
	defer resp.Body.Close()
	switch {
	case have > 0 && resp.StatusCode == http.StatusPartialContent && strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", have)):
	case resp.StatusCode == http.StatusOK:
		if have > 0 { // the registry ignored the Range: start over
			h.Reset()
			if err := sink.Reset(); err != nil {
				return 0, err
			}
			have = 0
		}
	default:
		return have, httpStatusError(resp)
	}
	if resp.ContentLength > desc.Size-have {
		return have, &DigestError{What: "blob " + desc.Digest.String(), Expected: strconv.FormatInt(desc.Size, 10) + " bytes", Found: strconv.FormatInt(have+resp.ContentLength, 10) + " bytes (Content-Length)", Size: true}
	}
	body := io.LimitReader(resp.Body, desc.Size-have+1)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if have+int64(n) > desc.Size {
				return have, &DigestError{What: "blob " + desc.Digest.String(), Expected: strconv.FormatInt(desc.Size, 10) + " bytes", Found: "more", Size: true}
			}
			h.Write(buf[:n])
			if _, err := sink.Write(buf[:n]); err != nil {
				return have, fmt.Errorf("writing: %w", err)
			}
			have += int64(n)
			c.report(Progress{Digest: desc.Digest.String(), MediaType: string(desc.MediaType), State: ProgressBytes, Complete: have, Total: desc.Size})
		}
		if rerr == io.EOF {
			return have, nil
		}
		if rerr != nil {
			return have, markTransient(rerr)
		}
	}
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
	// Errors from Do: a refused or reset connection, a retry layer giving up.
	return !errors.Is(err, ErrRetryBudget) && !errors.Is(err, context.Canceled)
}
