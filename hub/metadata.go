package hub

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// FileMetadata is what a HEAD on a resolve URL says about a file.
type FileMetadata struct {
	// Commit is X-Repo-Commit: the commit the revision resolved to.
	Commit string
	// ETag is the file's blob name: its sha256 for an LFS file, its git blob id otherwise.
	ETag string
	// Size is X-Linked-Size (LFS) or Content-Length.
	Size int64
	// LFS is true when the Hub answered with X-Linked-Etag, i.e. the file lives in LFS/Xet.
	LFS bool
	// Location is where the content is served from: the redirect target for LFS files.
	Location string
	// XetHash is X-Xet-Hash when present.
	XetHash string
}

// FileMetadata sends HEAD {endpoint}/{repo}/resolve/{rev}/{path} without following cross-host
// redirects, because the redirect itself carries X-Linked-Etag and X-Linked-Size, and the CDN's
// own ETag is not the file's digest (reference §2.2).
func (c *Client) FileMetadata(ctx context.Context, repoID, revision, path string) (*FileMetadata, error) {
	if err := ValidateRepoID(repoID); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if err := ValidateRevision(revision); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if err := ValidatePath(path); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	u := c.resolveURL(repoID, revision, path)
	// identity: a gzip-encoded answer has no Content-Length to read the size from.
	resp, err := c.do(withoutCrossHostRedirects(ctx), http.MethodHead, u, http.Header{"Accept-Encoding": {"identity"}})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	h := resp.Header
	md := &FileMetadata{Commit: h.Get("X-Repo-Commit"), XetHash: h.Get("X-Xet-Hash")}
	if !IsCommit(md.Commit) {
		return nil, fmt.Errorf("hub: HEAD %s: %w: X-Repo-Commit %q is not a commit (is this a Hub?)", u, ErrInvalidResponse, md.Commit)
	}
	if linked := h.Get("X-Linked-Etag"); linked != "" {
		md.ETag, md.LFS = normalizeETag(linked), true
	} else {
		md.ETag = normalizeETag(h.Get("ETag"))
	}
	if md.ETag == "" {
		return nil, fmt.Errorf("hub: HEAD %s: %w: no ETag", u, ErrInvalidResponse)
	}
	sizeHeader := h.Get("X-Linked-Size")
	isRedirect := resp.StatusCode >= 300 && resp.StatusCode < 400
	if sizeHeader == "" && !isRedirect {
		// A redirect's Content-Length is its own body's (huggingface_hub PR #4699).
		sizeHeader = h.Get("Content-Length")
	}
	md.Size, err = strconv.ParseInt(sizeHeader, 10, 64)
	if err != nil || md.Size < 0 {
		return nil, fmt.Errorf("hub: HEAD %s: %w: no usable size (X-Linked-Size %q)", u, ErrInvalidResponse, sizeHeader)
	}
	if loc := h.Get("Location"); loc != "" && isRedirect {
		l, err := resp.Request.URL.Parse(loc)
		if err != nil {
			return nil, fmt.Errorf("hub: HEAD %s: %w: Location %q: %v", u, ErrInvalidResponse, loc, err)
		}
		md.Location = l.String()
	} else {
		md.Location = resp.Request.URL.String()
	}
	return md, nil
}

// normalizeETag strips a weak "W/" prefix and the quotes (huggingface_hub _normalize_etag).
func normalizeETag(e string) string {
	e = strings.TrimSpace(e)
	e = strings.TrimPrefix(e, "W/")
	return strings.Trim(e, `"`)
}
