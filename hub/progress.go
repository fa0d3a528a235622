package hub

import (
	"context"
	"net/http"
)

// ProgressState is what a Progress report is about.
type ProgressState int

const (
	// ProgressStarted: a file's transfer began.
	ProgressStarted ProgressState = iota + 1
	// ProgressBytes: more bytes of a file arrived.
	ProgressBytes
	// ProgressRetrying: a request or transfer failed transiently and will be retried; Err says why.
	ProgressRetrying
	// ProgressVerified: a downloaded file matched the Hub's digest and size.
	ProgressVerified
	// ProgressCached: a file was already in the cache and its blob re-hashed to the right digest.
	ProgressCached
	// ProgressCacheCorrupt: a cached blob did not match its digest and will be downloaded again.
	ProgressCacheCorrupt
)

func (s ProgressState) String() string {
	switch s {
	case ProgressStarted:
		return "started"
	case ProgressBytes:
		return "bytes"
	case ProgressRetrying:
		return "retrying"
	case ProgressVerified:
		return "verified"
	case ProgressCached:
		return "cached"
	case ProgressCacheCorrupt:
		return "cache-corrupt"
	}
	return "unknown"
}

// Progress is one progress report. The library prints nothing; callers draw what they like.
type Progress struct {
	// Repo and Path name the file; Path is empty for a retry of a non-file request (URL is set).
	Repo, Path string
	// URL is the request being retried, without its query, for ProgressRetrying.
	URL   string
	State ProgressState
	// Bytes of the file received so far, and its Size.
	Bytes, Size int64
	// Attempt is the retry number, for ProgressRetrying.
	Attempt int
	// Err is the transient failure, for ProgressRetrying and ProgressCacheCorrupt.
	Err error
}

type fileCtxKey struct{}

type fileCtx struct{ repo, path string }

func withFile(ctx context.Context, repo, path string) context.Context {
	return context.WithValue(ctx, fileCtxKey{}, fileCtx{repo, path})
}

func (c *Client) report(p Progress) {
	if c.progress == nil {
		return
	}
	c.progressMu.Lock()
	defer c.progressMu.Unlock()
	c.progress(p)
}

func (c *Client) reportRequestRetry(req *http.Request, attempt int, reason string) {
	p := Progress{State: ProgressRetrying, URL: redactURL(req.URL), Attempt: attempt, Err: errString(reason)}
	if f, ok := req.Context().Value(fileCtxKey{}).(fileCtx); ok {
		p.Repo, p.Path = f.repo, f.path
	}
	c.report(p)
}

type errString string

func (e errString) Error() string { return string(e) }
