package hub

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
)

const (
	// maxTreePage bounds one page of a tree listing (1000 entries of a few hundred bytes each).
	maxTreePage = 16 << 20
	// maxTreeEntries bounds a whole listing (files and directories), so a server cannot make the
	// client loop forever; with no empty pages allowed, it bounds the number of pages too.
	maxTreeEntries = 1_000_000
)

// TreeEntry is one file of a repository at a commit.
type TreeEntry struct {
	// Path is the file's path in the repository, with '/' separators.
	Path string
	// Size is the file's real size (for LFS files, not the pointer's).
	Size int64
	// OID is the git blob id (sha1). For an LFS file it is the pointer's blob id.
	OID string
	// LFS is set for files stored in LFS, with the content's sha256.
	LFS *LFSInfo
	// XetHash is the Xet content hash when the Hub gives one; informational only.
	XetHash string
}

// BlobName is the file's name under blobs/ in the cache: the LFS sha256, or the git blob id.
func (e TreeEntry) BlobName() string {
	if e.LFS != nil {
		return e.LFS.SHA256
	}
	return e.OID
}

// Digest is the content's sha256 as published by the Hub, or "" for a plain git file, whose
// published digest is its git blob id (OID).
func (e TreeEntry) Digest() digest.Digest {
	if e.LFS != nil {
		return e.LFS.Digest()
	}
	return ""
}

type apiTreeEntry struct {
	Type string `json:"type"`
	Path string `json:"path"`
	OID  string `json:"oid"`
	Size int64  `json:"size"`
	LFS  *struct {
		OID         string `json:"oid"`
		Size        int64  `json:"size"`
		PointerSize int64  `json:"pointerSize"`
	} `json:"lfs"`
	XetHash string `json:"xetHash"`
}

// ListTree lists every file of a repository at a commit, recursively, following the Hub's
// pagination to the end. Directories are not returned. Entries are sorted by path. Offline, or
// when asked again for the same commit, the listing comes from the cache's trees/{commit}.json.
func (c *Client) ListTree(ctx context.Context, repoID, commit string) ([]TreeEntry, error) {
	if err := ValidateRepoID(repoID); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if !IsCommit(commit) {
		return nil, fmt.Errorf("hub: ListTree needs a 40-hex commit, got %q (use ResolveRevision)", commit)
	}
	if c.offline {
		entries, err := c.cache.ReadTree(repoID, commit)
		if err != nil {
			return nil, fmt.Errorf("hub: listing %s@%s offline: %w", repoID, commit, err)
		}
		return entries, nil
	}
	next := c.apiURL(repoID, "tree", commit) + "?recursive=true&expand=false"
	seen := map[string]bool{}
	cursors := map[string]bool{}
	paths := map[string]bool{}
	var entries []TreeEntry
	items := 0
	for next != "" {
		cursor := ""
		if u, err := url.Parse(next); err == nil {
			cursor = u.Query().Get("cursor")
		}
		if seen[next] || (cursor != "" && cursors[cursor]) {
			return nil, fmt.Errorf("hub: listing %s@%s: %w: pagination loops back to %s", repoID, commit, ErrInvalidResponse, redactURLString(next))
		}
		seen[next], cursors[cursor] = true, true
		var page []apiTreeEntry
		resp, err := c.getJSON(ctx, next, maxTreePage, &page)
		if err != nil {
			return nil, err
		}
		for _, a := range page {
			if a.Type == "directory" {
				continue
			}
			e, err := treeEntryFromAPI(a)
			if err != nil {
				return nil, fmt.Errorf("hub: listing %s@%s: %w", repoID, commit, err)
			}
			if paths[e.Path] {
				return nil, fmt.Errorf("hub: listing %s@%s: %w: %q listed twice", repoID, commit, ErrInvalidResponse, e.Path)
			}
			paths[e.Path] = true
			entries = append(entries, e)
		}
		items += len(page)
		if items > maxTreeEntries {
			return nil, fmt.Errorf("hub: listing %s@%s: %w: more than %d entries", repoID, commit, ErrInvalidResponse, maxTreeEntries)
		}
		next, err = c.nextPage(resp.Request.URL, resp.Header.Values("Link"))
		if err != nil {
			return nil, fmt.Errorf("hub: listing %s@%s: %w", repoID, commit, err)
		}
		if next != "" && len(page) == 0 {
			// The Hub never sends an empty page before the last; a server that does, each time
			// with a fresh cursor, would keep the client listing forever.
			return nil, fmt.Errorf("hub: listing %s@%s: %w: an empty page links to another", repoID, commit, ErrInvalidResponse)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	// A commit's tree never changes, so the listing is cached for offline use, as huggingface_hub does.
	if err := c.cache.WriteTree(repoID, commit, entries); err != nil {
		return nil, markTemporary(err)
	}
	return entries, nil
}

// nextPage finds rel="next" in Link headers and checks it stays on the endpoint.
func (c *Client) nextPage(base *url.URL, links []string) (string, error) {
	for _, h := range links {
		for link := range strings.SplitSeq(h, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
			if !ok {
				continue
			}
			isNext := false
			for p := range strings.SplitSeq(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") && strings.Trim(v, `"`) == "next" {
					isNext = true
				}
			}
			if !isNext {
				continue
			}
			target = strings.TrimSpace(target)
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				return "", fmt.Errorf("%w: malformed Link header %q", ErrInvalidResponse, h)
			}
			u, err := base.Parse(target[1 : len(target)-1])
			if err != nil {
				return "", fmt.Errorf("%w: Link next %q: %v", ErrInvalidResponse, target, err)
			}
			if !sameOrigin(u, c.endpoint) {
				return "", fmt.Errorf("%w: Link next %s leaves the endpoint %s", ErrInvalidResponse, redactURL(u), c.endpoint)
			}
			return u.String(), nil
		}
	}
	return "", nil
}

func treeEntryFromAPI(a apiTreeEntry) (TreeEntry, error) {
	if a.Type != "file" {
		return TreeEntry{}, fmt.Errorf("%w: entry %q has type %q", ErrInvalidResponse, a.Path, a.Type)
	}
	if err := ValidatePath(a.Path); err != nil {
		return TreeEntry{}, fmt.Errorf("%w: %v", ErrInvalidResponse, err)
	}
	if len(a.OID) != 40 || !isLowerHex(a.OID) {
		return TreeEntry{}, fmt.Errorf("%w: %s has oid %q, not a git sha1", ErrInvalidResponse, a.Path, a.OID)
	}
	if a.Size < 0 {
		return TreeEntry{}, fmt.Errorf("%w: %s has negative size %d", ErrInvalidResponse, a.Path, a.Size)
	}
	e := TreeEntry{Path: a.Path, Size: a.Size, OID: a.OID}
	if a.LFS != nil {
		if !isSHA256Hex(a.LFS.OID) {
			return TreeEntry{}, fmt.Errorf("%w: %s has lfs.oid %q, not a sha256", ErrInvalidResponse, a.Path, a.LFS.OID)
		}
		if a.LFS.Size != a.Size {
			return TreeEntry{}, fmt.Errorf("%w: %s has size %d but lfs.size %d", ErrInvalidResponse, a.Path, a.Size, a.LFS.Size)
		}
		e.LFS = &LFSInfo{SHA256: a.LFS.OID, Size: a.LFS.Size, PointerSize: a.LFS.PointerSize}
	}
	// Xet hashes can be redacted; keep only well-formed ones (huggingface_hub PR #4595).
	if isSHA256Hex(a.XetHash) {
		e.XetHash = a.XetHash
	}
	return e, nil
}

// ValidatePath checks that a repository file path is safe to use below a directory: relative,
// '/'-separated, no empty, "." or ".." segments, no backslash, NUL or invalid UTF-8.
func ValidatePath(p string) error {
	if p == "" {
		return fmt.Errorf("empty file path")
	}
	if len(p) > 4096 || !utf8.ValidString(p) || strings.ContainsAny(p, "\\\x00") || strings.HasPrefix(p, "/") {
		return fmt.Errorf("file path %q is not a safe relative path", p)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("file path %q is not a safe relative path", p)
		}
	}
	return nil
}
