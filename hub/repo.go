package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
)

// maxInfoBody bounds a repo info answer; siblings of a 10,000-file repo fit well within it.
const maxInfoBody = 64 << 20

// RepoInfo is a model repository at one revision, from /api/models/{repo}/revision/{rev}.
type RepoInfo struct {
	// ID is "namespace/name" as the Hub spells it (a renamed repo reports its new id).
	ID string
	// SHA is the commit the requested revision resolved to.
	SHA string
	// Author is the namespace that owns the repo.
	Author string
	// Private is true for a private repo; Gated is "", "auto" or "manual"; Disabled as the Hub says.
	Private  bool
	Gated    string
	Disabled bool
	// LastModified and CreatedAt are the Hub's timestamps (zero when absent).
	LastModified, CreatedAt time.Time
	// Tags, LibraryName and PipelineTag classify the model.
	Tags        []string
	LibraryName string
	PipelineTag string
	// Siblings are the repo's files, with their blob ids, sizes and LFS sha256.
	Siblings []Sibling
}

// Sibling is one file of RepoInfo.
type Sibling struct {
	// Path is the file's path in the repo (the Hub's "rfilename").
	Path string
	// Size is the real size (for LFS files, not the pointer's).
	Size int64
	// BlobID is the git blob id.
	BlobID string
	// LFS is set for LFS files.
	LFS *LFSInfo
}

// LFSInfo describes a file stored in Git LFS (or Xet, which keeps LFS pointers).
type LFSInfo struct {
	// SHA256 is the hex sha256 of the file's content.
	SHA256 string
	// Size is the content's size; PointerSize the size of the pointer file in git.
	Size, PointerSize int64
}

// Digest is the content digest as "sha256:<hex>".
func (l LFSInfo) Digest() digest.Digest { return digest.NewDigestFromEncoded(digest.SHA256, l.SHA256) }

type apiModelInfo struct {
	ID           string          `json:"id"`
	SHA          string          `json:"sha"`
	Author       string          `json:"author"`
	Private      bool            `json:"private"`
	Gated        json.RawMessage `json:"gated"`
	Disabled     bool            `json:"disabled"`
	LastModified time.Time       `json:"lastModified"`
	CreatedAt    time.Time       `json:"createdAt"`
	Tags         []string        `json:"tags"`
	LibraryName  string          `json:"library_name"`
	PipelineTag  string          `json:"pipeline_tag"`
	Siblings     []struct {
		RFilename string `json:"rfilename"`
		Size      *int64 `json:"size"`
		BlobID    string `json:"blobId"`
		LFS       *struct {
			Size        int64  `json:"size"`
			SHA256      string `json:"sha256"`
			PointerSize int64  `json:"pointerSize"`
		} `json:"lfs"`
	} `json:"siblings"`
}

// RepoInfo fetches a repository's info at ref's revision, with per-file blob metadata.
func (c *Client) RepoInfo(ctx context.Context, ref Reference) (*RepoInfo, error) {
	if err := ValidateRepoID(ref.RepoID()); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	u := c.apiURL(ref.RepoID(), "revision", ref.Rev()) + "?blobs=true"
	var raw apiModelInfo
	if _, err := c.getJSON(ctx, u, maxInfoBody, &raw); err != nil {
		return nil, err
	}
	if !IsCommit(raw.SHA) {
		return nil, fmt.Errorf("hub: repo info for %s: %w: sha %q is not a 40-hex commit", ref, ErrInvalidResponse, raw.SHA)
	}
	info := &RepoInfo{
		ID: raw.ID, SHA: raw.SHA, Author: raw.Author, Private: raw.Private, Disabled: raw.Disabled,
		LastModified: raw.LastModified, CreatedAt: raw.CreatedAt, Tags: raw.Tags,
		LibraryName: raw.LibraryName, PipelineTag: raw.PipelineTag,
	}
	// "gated" is false, "auto" or "manual".
	var gated string
	if json.Unmarshal(raw.Gated, &gated) == nil {
		info.Gated = gated
	}
	for _, s := range raw.Siblings {
		sib := Sibling{Path: s.RFilename, BlobID: s.BlobID}
		if s.Size != nil {
			sib.Size = *s.Size
		}
		if s.LFS != nil {
			if !isSHA256Hex(s.LFS.SHA256) {
				return nil, fmt.Errorf("hub: repo info for %s: %w: %s has lfs.sha256 %q", ref, ErrInvalidResponse, s.RFilename, s.LFS.SHA256)
			}
			sib.LFS = &LFSInfo{SHA256: s.LFS.SHA256, Size: s.LFS.Size, PointerSize: s.LFS.PointerSize}
		}
		info.Siblings = append(info.Siblings, sib)
	}
	return info, nil
}

// ResolveRevision turns ref's revision into a commit id. A 40-hex revision is a commit already
// and costs no request. Offline, the answer comes from the cache's refs/.
func (c *Client) ResolveRevision(ctx context.Context, ref Reference) (string, error) {
	rev := ref.Rev()
	if err := ValidateRepoID(ref.RepoID()); err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	if err := ValidateRevision(rev); err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	if IsCommit(rev) {
		return rev, nil
	}
	if c.offline {
		commit, err := c.cache.ReadRef(ref.RepoID(), rev)
		if err != nil {
			return "", fmt.Errorf("hub: resolving %s offline: %w", ref, err)
		}
		return commit, nil
	}
	var raw struct {
		SHA string `json:"sha"`
	}
	if _, err := c.getJSON(ctx, c.apiURL(ref.RepoID(), "revision", rev)+"?expand=sha", maxInfoBody, &raw); err != nil {
		return "", err
	}
	if !IsCommit(raw.SHA) {
		return "", fmt.Errorf("hub: resolving %s: %w: sha %q is not a 40-hex commit", ref, ErrInvalidResponse, raw.SHA)
	}
	return raw.SHA, nil
}

func isSHA256Hex(s string) bool { return len(s) == 64 && isLowerHex(s) }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
