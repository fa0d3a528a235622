package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
)

// ReadFile fetches a small file (a signature, a config) of a commit into memory, refusing one
// larger than maxBytes. When the Hub serves the file itself (a plain git file), its git blob id
// (ETag) is checked against the bytes. An absent file gives an error wrapping ErrEntryNotFound
// and is remembered in the cache's .no_exist. Offline, the file comes from the snapshot.
func (c *Client) ReadFile(ctx context.Context, repoID, commit, path string, maxBytes int64) ([]byte, error) {
	if err := ValidateRepoID(repoID); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if !IsCommit(commit) {
		return nil, fmt.Errorf("hub: ReadFile needs a 40-hex commit, got %q", commit)
	}
	if err := ValidatePath(path); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if maxBytes < 0 {
		return nil, fmt.Errorf("hub: negative maxBytes %d", maxBytes)
	}
	if c.offline {
		return c.readCachedFile(repoID, commit, path, maxBytes)
	}
	u := c.resolveURL(repoID, commit, path)
	var b []byte
	var resp *http.Response
	// A body that stalls (the transport's idle timeout) or drops is fetched again, within the
	// retry budget.
	err := c.retryTransfer(ctx, repoID, TreeEntry{Path: path}, func(ctx context.Context) error {
		var err error
		resp, err = c.do(withFile(ctx, repoID, path), http.MethodGet, u, nil)
		if err != nil {
			var he *HubError
			if errors.As(err, &he) && errors.Is(err, ErrEntryNotFound) {
				// The Hub names the commit even when the entry is missing; remember it for offline use.
				_ = c.cache.MarkMissing(repoID, commit, path)
			}
			return err
		}
		defer resp.Body.Close()
		if resp.ContentLength > maxBytes {
			return &FileError{Path: path, Err: &SizeError{Want: maxBytes, Got: resp.ContentLength, Overrun: true}}
		}
		b, err = io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return transient(&FileError{Path: path, Err: fmt.Errorf("reading %s: %w", redactURL(resp.Request.URL), err)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > maxBytes {
		return nil, &FileError{Path: path, Err: &SizeError{Want: maxBytes, Got: int64(len(b)), Overrun: true}}
	}
	if sameOrigin(resp.Request.URL, c.endpoint) {
		if etag := normalizeETag(resp.Header.Get("ETag")); len(etag) == 40 && isLowerHex(etag) {
			if got := gitBlobID(b); got != etag {
				return nil, &FileError{Path: path, Err: &DigestError{Algorithm: "git-sha1", Want: etag, Got: got}}
			}
		}
	}
	return b, nil
}

func (c *Client) readCachedFile(repoID, commit, path string, maxBytes int64) ([]byte, error) {
	p, err := c.cache.Lookup(repoID, commit, path)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if int64(len(b)) > maxBytes {
		return nil, &FileError{Path: path, Err: &SizeError{Want: maxBytes, Got: int64(len(b)), Overrun: true}}
	}
	return b, nil
}
