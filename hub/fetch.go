package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/echelongraph/go-modelverify/internal/httpretry"
	"golang.org/x/sync/errgroup"
)

// copyBufferSize is the read size for bodies and files: large reads keep syscalls and hashing
// calls few (huggingface_hub reads 10 MiB; 1 MiB already saturates loopback).
const copyBufferSize = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// stagedBlob is a downloaded file waiting in blobs/ under a process-unique .incomplete name.
type stagedBlob struct {
	path string
	sums blobSums
}

// transientError marks a transfer failure worth resuming: a dropped connection, a stall, a short
// body, a range answered with other bytes.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(err error) error { return &transientError{err: err} }

// hashers accumulates the sha256 (always) and the git blob id (plain git files) of a stream.
type hashers struct {
	sha256 hash.Hash
	git    hash.Hash
}

func newHashers(e TreeEntry) *hashers {
	h := &hashers{sha256: sha256.New()}
	if e.LFS == nil {
		h.git = newGitBlobHash(e.Size)
	}
	return h
}

func (h *hashers) Write(p []byte) (int, error) {
	h.sha256.Write(p)
	if h.git != nil {
		h.git.Write(p)
	}
	return len(p), nil
}

func (h *hashers) sums(size int64) blobSums {
	s := blobSums{size: size, sha256: hex.EncodeToString(h.sha256.Sum(nil))}
	if h.git != nil {
		s.gitSHA1 = hex.EncodeToString(h.git.Sum(nil))
	}
	return s
}

// hashFile hashes a file on disk the way a download would have.
func hashFile(ctx context.Context, path string, e TreeEntry) (blobSums, error) {
	f, err := os.Open(path)
	if err != nil {
		return blobSums{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return blobSums{}, err
	}
	h := newHashers(TreeEntry{Size: fi.Size(), LFS: e.LFS})
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return blobSums{}, context.Cause(ctx)
		}
		k, err := f.Read(*bp)
		h.Write((*bp)[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return blobSums{}, err
		}
	}
	return h.sums(n), nil
}

// fetchBlob downloads e into the file at path (the blob's .incomplete file; the caller holds
// the blob's lock): in parallel byte ranges when it is larger than the chunk size, else in one
// resumable stream. With resume, the bytes already in the file that were written in order (all
// of them, or as many as its prefix marker says) are kept and re-hashed, and only the rest is
// fetched, as huggingface_hub resumes; the digest check then covers the kept bytes too.
// Without resume the file starts empty. On failure the file stays, for a later resume.
func (c *Client) fetchBlob(ctx context.Context, repoID, commit string, e TreeEntry, path string, resume bool, transfers chan struct{}) (blobSums, error) {
	ctx = withFile(ctx, repoID, e.Path)
	// Only a regular file is resumed: anything else under that name (a link planted to make the
	// transfer write elsewhere) is removed, and O_NOFOLLOW refuses one planted meanwhile.
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		if err := os.Remove(path); err != nil {
			return blobSums{}, fmt.Errorf("staging file: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return blobSums{}, fmt.Errorf("creating staging file: %w", err)
	}
	defer f.Close()
	var prefix int64
	if resume {
		if fi, err := f.Stat(); err == nil {
			prefix = fi.Size()
		}
		if m := readPrefixMarker(path); m >= 0 {
			prefix = min(prefix, m)
		}
		if prefix > e.Size {
			prefix = 0
		}
	}
	if err := f.Truncate(prefix); err != nil {
		return blobSums{}, fmt.Errorf("staging file: %w", err)
	}
	h := newHashers(e)
	if prefix > 0 {
		// The kept bytes are hashed like any others: a wrong prefix fails the digest check.
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, prefix)); err != nil {
			return blobSums{}, fmt.Errorf("re-hashing the partial download: %w", err)
		}
	}
	u := c.resolveURL(repoID, commit, e.Path)
	c.report(Progress{Repo: repoID, Path: e.Path, State: ProgressStarted, Bytes: prefix, Size: e.Size})
	var sums blobSums
	if c.chunkSize > 0 && e.Size-prefix > c.chunkSize {
		sums, err = c.fetchChunked(ctx, u, repoID, e, f, path, prefix, h, transfers)
	} else if err = acquire(ctx, transfers); err == nil {
		os.Remove(markerPath(path)) // written front to back from here: all of it will count
		sums, err = c.fetchStream(ctx, u, repoID, e, f, prefix, h)
		<-transfers
	}
	if err != nil {
		if fi, serr := f.Stat(); serr == nil && fi.Size() == 0 {
			os.Remove(path) // nothing to resume
			os.Remove(markerPath(path))
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return sums, err
}

func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// retryTransfer runs attempt until it succeeds, fails for good, or runs out of retries or of
// the retry budget; only transient failures are retried, after the usual backoff. From the first
// failure on, the attempts run under the budget's deadline, which also caps their header and
// idle timeouts: a server that stops sending fails the transfer after at most the idle timeout
// plus the budget.
func (c *Client) retryTransfer(ctx context.Context, repoID string, e TreeEntry, attempt func(ctx context.Context) error) error {
	var deadline time.Time
	for try := 0; ; try++ {
		actx := ctx
		if !deadline.IsZero() {
			actx = withBudgetDeadline(ctx, deadline)
		}
		err := attempt(actx)
		var te *transientError
		if err == nil || !errors.As(err, &te) || ctx.Err() != nil {
			if ctx.Err() != nil && err != nil {
				return context.Cause(ctx)
			}
			return err
		}
		deadline = c.retry.Deadline(deadline)
		wait := c.retry.Backoff(try)
		switch c.retry.Judge(try, wait, deadline) {
		case httpretry.OutOfRetries:
			return fmt.Errorf("giving up after %d attempts: %w", try+1, te)
		case httpretry.OutOfBudget:
			return fmt.Errorf("%w (%v) after %d attempts: %w", ErrRetryBudget, c.retry.Budget, try+1, te)
		}
		c.report(Progress{Repo: repoID, Path: e.Path, State: ProgressRetrying, Attempt: try + 1, Err: te.err, Size: e.Size})
		if err := c.retry.Wait(ctx, wait); err != nil {
			return err
		}
	}
}

// fetchStream downloads e in one stream, hashing as it writes. After a failure it resumes with
// Range from the bytes it has; if the server then answers 200 with the whole file, it starts over
// (CDNs ignore Range at times; huggingface_hub does the same).
func (c *Client) fetchStream(ctx context.Context, u, repoID string, e TreeEntry, f *os.File, prefix int64, h *hashers) (blobSums, error) {
	written := prefix
	if written == e.Size {
		return h.sums(written), nil // resumed with every byte already here
	}
	err := c.retryTransfer(ctx, repoID, e, func(ctx context.Context) error {
		var hdr http.Header
		if written > 0 {
			hdr = http.Header{"Range": {fmt.Sprintf("bytes=%d-", written)}}
		}
		actx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		resp, err := c.do(actx, http.MethodGet, u, hdr)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		switch {
		case written > 0 && resp.StatusCode == http.StatusPartialContent:
			want := fmt.Sprintf("bytes %d-%d/%d", written, e.Size-1, e.Size)
			if got := resp.Header.Get("Content-Range"); got != want {
				return transient(&RangeError{Requested: hdr.Get("Range"), StatusCode: resp.StatusCode, ContentRange: got})
			}
		case resp.StatusCode == http.StatusOK:
			if written > 0 {
				if err := f.Truncate(0); err != nil {
					return err
				}
				written, h = 0, newHashers(e)
			}
		default:
			return fmt.Errorf("%w: unexpected HTTP %d from %s", ErrInvalidResponse, resp.StatusCode, redactURL(resp.Request.URL))
		}
		remaining := e.Size - written
		if resp.ContentLength > remaining {
			return &SizeError{Want: e.Size, Got: written + resp.ContentLength, Overrun: true}
		}
		var progress atomic.Int64
		progress.Store(written)
		n, err := c.copyBody(actx, resp.Body, f, written, remaining, h, func(k int) {
			c.report(Progress{Repo: repoID, Path: e.Path, State: ProgressBytes, Bytes: progress.Add(int64(k)), Size: e.Size})
		})
		written += n
		return err
	})
	if err != nil {
		return blobSums{}, err
	}
	return h.sums(written), nil
}

// fetchChunked downloads e from prefix on as parallel byte ranges written in place, and hashes
// the ranges in order as they complete, so hashing overlaps the transfer and never holds more
// than one buffer. The file's prefix marker records how far the ranges are complete in order,
// so that a crash, which leaves holes, loses only what the marker does not cover.
func (c *Client) fetchChunked(ctx context.Context, u, repoID string, e TreeEntry, f *os.File, path string, prefix int64, h *hashers, transfers chan struct{}) (blobSums, error) {
	marker, err := os.OpenFile(markerPath(path), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return blobSums{}, fmt.Errorf("staging file: %w", err)
	}
	defer marker.Close()
	setMarker := func(n int64) error {
		// One fixed-width write: a kill cannot leave half of it.
		_, err := marker.WriteAt(fmt.Appendf(nil, "%020d\n", n), 0)
		return err
	}
	if err := setMarker(prefix); err != nil {
		return blobSums{}, fmt.Errorf("staging file: %w", err)
	}
	first := int(prefix / c.chunkSize)
	n := int((e.Size + c.chunkSize - 1) / c.chunkSize)
	done := make([]chan struct{}, n)
	for i := range done {
		done[i] = make(chan struct{})
	}
	var received atomic.Int64
	received.Store(prefix)
	onBytes := func(k int) {
		c.report(Progress{Repo: repoID, Path: e.Path, State: ProgressBytes, Bytes: received.Add(int64(k)), Size: e.Size})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// Dispatch in order so the hasher's next range is the one most likely to finish first.
		for i := first; i < n; i++ {
			if err := acquire(gctx, transfers); err != nil {
				return err
			}
			start := max(int64(i)*c.chunkSize, prefix)
			end := min(start+c.chunkSize, e.Size) - 1
			g.Go(func() error {
				defer func() { <-transfers }()
				if err := c.fetchRange(gctx, u, repoID, e, f, start, end, onBytes); err != nil {
					return err
				}
				close(done[i])
				return nil
			})
		}
		return nil
	})
	g.Go(func() error {
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		for i := first; i < n; i++ {
			select {
			case <-done[i]:
			case <-gctx.Done():
				return context.Cause(gctx)
			}
			start := max(int64(i)*c.chunkSize, prefix)
			end := min(int64(i+1)*c.chunkSize, e.Size)
			if _, err := io.CopyBuffer(h, io.NewSectionReader(f, start, end-start), *bp); err != nil {
				return fmt.Errorf("hashing staged range: %w", err)
			}
			if err := setMarker(end); err != nil {
				return fmt.Errorf("staging file: %w", err)
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return blobSums{}, err
	}
	return h.sums(e.Size), nil
}

// fetchRange fetches bytes [start, end] of e into f, resuming within the range after a failure.
// The answer must be a 206 for exactly the bytes asked: anything else is a *RangeError.
func (c *Client) fetchRange(ctx context.Context, u, repoID string, e TreeEntry, f *os.File, start, end int64, onBytes func(int)) error {
	var got int64
	return c.retryTransfer(ctx, repoID, e, func(ctx context.Context) error {
		from := start + got
		rng := fmt.Sprintf("bytes=%d-%d", from, end)
		actx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		resp, err := c.do(actx, http.MethodGet, u, http.Header{"Range": {rng}})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		want := fmt.Sprintf("bytes %d-%d/%d", from, end, e.Size)
		if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != want {
			return transient(&RangeError{Requested: rng, StatusCode: resp.StatusCode, ContentRange: resp.Header.Get("Content-Range")})
		}
		remaining := end - from + 1
		if resp.ContentLength > remaining {
			return &SizeError{Want: remaining, Got: resp.ContentLength, Overrun: true}
		}
		n, err := c.copyBody(actx, resp.Body, f, from, remaining, nil, onBytes)
		got += n
		return err
	})
}

// copyBody copies at most limit bytes of body into f at off, feeding h. More than limit bytes is
// a *SizeError (the body is cut off there); fewer, or a read that fails (a drop, or a stall the
// transport's idle timeout ended), is a transient error after which the caller resumes from off+n.
func (c *Client) copyBody(ctx context.Context, body io.Reader, f *os.File, off, limit int64, h io.Writer, onBytes func(int)) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		k, rerr := body.Read(buf)
		if k > 0 {
			if n+int64(k) > limit {
				return n, &SizeError{Want: limit, Got: n + int64(k), Overrun: true}
			}
			if _, err := f.WriteAt(buf[:k], off+n); err != nil {
				return n, fmt.Errorf("writing staging file: %w", err)
			}
			if h != nil {
				h.Write(buf[:k])
			}
			n += int64(k)
			onBytes(k)
		}
		if rerr == io.EOF {
			if n < limit {
				return n, transient(fmt.Errorf("connection closed after %d of %d bytes: %w", n, limit, io.ErrUnexpectedEOF))
			}
			return n, nil
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return n, context.Cause(ctx)
			}
			var se *StallError
			if errors.As(rerr, &se) {
				return n, transient(fmt.Errorf("transfer stalled after %d of %d bytes: %w", n, limit, rerr))
			}
			return n, transient(fmt.Errorf("after %d of %d bytes: %w", n, limit, rerr))
		}
	}
}
