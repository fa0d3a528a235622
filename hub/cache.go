package hub

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// cacheDirTag marks the cache for backup tools (https://bford.info/cachedir/), as huggingface_hub does.
const cacheDirTag = "Signature: 8a477f597d28d172789f06886806bc55\n" +
	"# This file is a cache directory tag created by huggingface_hub.\n" +
	"# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n"

// Cache is a Hugging Face cache directory in huggingface_hub's layout (reference §5):
//
//	{Dir}/models--{org}--{name}/blobs/{sha256 or git sha1}
//	{Dir}/models--{org}--{name}/snapshots/{commit}/{path} -> ../../blobs/{blob} (relative symlink)
//	{Dir}/models--{org}--{name}/refs/{revision}           (the 40-hex commit, no newline)
//	{Dir}/models--{org}--{name}/.no_exist/{commit}/{path} (file known absent at that commit)
//	{Dir}/models--{org}--{name}/trees/{commit}.json       (cached tree listing)
//	{Dir}/.locks/models--{org}--{name}/{blob}.lock
//	{Dir}/models--{org}--{name}/blobs/{blob}.incomplete   (a transfer in progress, or kept to resume)
//
// A Download also makes short-lived files of its own, which staging.go lists; what a killed one
// leaves of them is removed by the next.
//
// Python's transformers and huggingface_hub read a cache written by this type as their own.
type Cache struct {
	// Dir is the cache root (HF_HUB_CACHE).
	Dir string
}

// NewCache returns the cache rooted at dir.
func NewCache(dir string) *Cache { return &Cache{Dir: dir} }

// DefaultCacheDir resolves the cache directory from the environment: HF_HUB_CACHE, else
// $HF_HOME/hub, else ~/.cache/huggingface/hub.
func DefaultCacheDir() (string, error) { return envCacheDir(os.Getenv) }

// RepoFolderName is the cache folder of a model repo: "models--org--name".
func RepoFolderName(repoID string) string { return "models--" + strings.ReplaceAll(repoID, "/", "--") }

// RepoDir is the repository's folder in the cache. Path helpers do not validate their
// arguments: pass a repo id accepted by ValidateRepoID and 40-hex commits.
func (c *Cache) RepoDir(repoID string) string { return filepath.Join(c.Dir, RepoFolderName(repoID)) }

// BlobPath is where the blob named blob (a sha256 or git sha1) lives.
func (c *Cache) BlobPath(repoID, blob string) string {
	return filepath.Join(c.RepoDir(repoID), "blobs", blob)
}

// SnapshotDir is the snapshot folder of a commit: the directory a loader reads from.
func (c *Cache) SnapshotDir(repoID, commit string) string {
	return filepath.Join(c.RepoDir(repoID), "snapshots", commit)
}

// SnapshotPath is where a file of a commit appears in its snapshot.
func (c *Cache) SnapshotPath(repoID, commit, path string) string {
	return filepath.Join(c.SnapshotDir(repoID, commit), filepath.FromSlash(path))
}

// LockPath is the lock file that guards a blob, shared with huggingface_hub.
func (c *Cache) LockPath(repoID, blob string) string {
	return filepath.Join(c.Dir, ".locks", RepoFolderName(repoID), blob+".lock")
}

func (c *Cache) refPath(repoID, rev string) string {
	return filepath.Join(c.RepoDir(repoID), "refs", filepath.FromSlash(rev))
}

func (c *Cache) noExistPath(repoID, commit, path string) string {
	return filepath.Join(c.RepoDir(repoID), ".no_exist", commit, filepath.FromSlash(path))
}

func (c *Cache) treePath(repoID, commit string) string {
	return filepath.Join(c.RepoDir(repoID), "trees", commit+".json")
}

// ReadRef returns the commit a revision last resolved to. A 40-hex revision is its own commit.
// A missing ref wraps ErrOffline: the cache cannot answer without asking the Hub.
func (c *Cache) ReadRef(repoID, rev string) (string, error) {
	if err := ValidateRepoID(repoID); err != nil {
		return "", err
	}
	if err := ValidateRevision(rev); err != nil {
		return "", err
	}
	if IsCommit(rev) {
		return rev, nil
	}
	b, err := os.ReadFile(c.refPath(repoID, rev))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no cached ref %q for %s: %w", rev, repoID, ErrOffline)
	}
	if err != nil {
		return "", fmt.Errorf("hub: reading ref: %w", err)
	}
	commit := strings.TrimSpace(string(b))
	if !IsCommit(commit) {
		return "", fmt.Errorf("hub: cached ref %s of %s holds %q, not a commit", rev, repoID, commit)
	}
	return commit, nil
}

// WriteRef records that rev resolved to commit: exactly 40 characters, written atomically and
// only when it changes, as huggingface_hub does.
func (c *Cache) WriteRef(repoID, rev, commit string) error {
	if err := ValidateRepoID(repoID); err != nil {
		return err
	}
	if err := ValidateRevision(rev); err != nil {
		return err
	}
	if !IsCommit(commit) {
		return fmt.Errorf("hub: ref %s: %q is not a commit", rev, commit)
	}
	if rev == commit {
		return nil
	}
	sum := sha256.Sum256([]byte(rev))
	return c.writeGuarded(repoID, "ref-"+hex.EncodeToString(sum[:8]), c.refPath(repoID, rev), []byte(commit))
}

// Lookup finds a file of a revision in the cache without any request, as huggingface_hub's
// try_to_load_from_cache does. It returns the snapshot path; an error wrapping ErrEntryNotFound
// when the cache knows the file is absent at that commit; or one wrapping ErrOffline when the
// cache does not know.
func (c *Cache) Lookup(repoID, rev, path string) (string, error) {
	if err := ValidatePath(path); err != nil {
		return "", err
	}
	commit, err := c.ReadRef(repoID, rev)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(c.noExistPath(repoID, commit, path)); err == nil {
		return "", fmt.Errorf("%s@%s: %s: %w (cached)", repoID, commit, path, ErrEntryNotFound)
	}
	p := c.SnapshotPath(repoID, commit, path)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s@%s: %s not in the cache: %w", repoID, commit, path, ErrOffline)
	}
	return p, nil
}

// MarkMissing records that path does not exist at commit (.no_exist), so offline lookups can say so.
func (c *Cache) MarkMissing(repoID, commit, path string) error {
	if err := ValidateRepoID(repoID); err != nil {
		return err
	}
	if err := ValidatePath(path); err != nil {
		return err
	}
	if !IsCommit(commit) {
		return fmt.Errorf("hub: %q is not a commit", commit)
	}
	p := c.noExistPath(repoID, commit, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return f.Close()
}

type treeCacheFile struct {
	FormatVersion int                      `json:"format_version"`
	Files         map[string]treeCacheItem `json:"files"`
}

type treeCacheItem struct {
	Size      int64  `json:"size"`
	BlobID    string `json:"blob_id"`
	LFSSHA256 string `json:"lfs_sha256,omitempty"`
	LFSSize   *int64 `json:"lfs_size,omitempty"`
	XetHash   string `json:"xet_hash,omitempty"`
}

// WriteTree stores a commit's listing as trees/{commit}.json, in huggingface_hub's format 1.
func (c *Cache) WriteTree(repoID, commit string, entries []TreeEntry) error {
	if err := ValidateRepoID(repoID); err != nil {
		return err
	}
	if !IsCommit(commit) {
		return fmt.Errorf("hub: %q is not a commit", commit)
	}
	f := treeCacheFile{FormatVersion: 1, Files: make(map[string]treeCacheItem, len(entries))}
	for _, e := range entries {
		item := treeCacheItem{Size: e.Size, BlobID: e.OID, XetHash: e.XetHash}
		if e.LFS != nil {
			size := e.LFS.Size
			item.LFSSHA256, item.LFSSize = e.LFS.SHA256, &size
		}
		f.Files[e.Path] = item
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return c.writeGuarded(repoID, "tree-"+commit, c.treePath(repoID, commit), b)
}

// writeGuarded writes data to p atomically, unless p holds it already, under a lock of the
// repo's that every writer of p takes, after removing the temporary files a killed writer of p
// left ({base}.{hex}.tmp, writeFileAtomic's names). With nil data it only removes those.
func (c *Cache) writeGuarded(repoID, lockName, p string, data []byte) error {
	l, err := lockFile(context.Background(), filepath.Join(c.Dir, ".locks", RepoFolderName(repoID), lockName+".lock"))
	if err != nil {
		return err
	}
	defer l.unlock()
	leftover := regexp.MustCompile(`^` + regexp.QuoteMeta(filepath.Base(p)) + `\.[0-9a-f]{8}\.tmp$`)
	if entries, err := os.ReadDir(filepath.Dir(p)); err == nil {
		for _, e := range entries {
			if leftover.MatchString(e.Name()) && e.Type().IsRegular() {
				os.Remove(filepath.Join(filepath.Dir(p), e.Name()))
			}
		}
	}
	if data == nil {
		return nil
	}
	if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, data) {
		return nil
	}
	return writeFileAtomic(p, data)
}

// ReadTree reads a listing stored by WriteTree (or by huggingface_hub), sorted by path.
func (c *Cache) ReadTree(repoID, commit string) ([]TreeEntry, error) {
	if err := ValidateRepoID(repoID); err != nil {
		return nil, err
	}
	if !IsCommit(commit) {
		return nil, fmt.Errorf("hub: %q is not a commit", commit)
	}
	b, err := os.ReadFile(c.treePath(repoID, commit))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no cached tree for %s@%s: %w", repoID, commit, ErrOffline)
	}
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	var f treeCacheFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("hub: cached tree %s: %w", c.treePath(repoID, commit), err)
	}
	if f.FormatVersion != 1 {
		return nil, fmt.Errorf("hub: cached tree %s has format_version %d, want 1", c.treePath(repoID, commit), f.FormatVersion)
	}
	entries := make([]TreeEntry, 0, len(f.Files))
	for path, item := range f.Files {
		a := apiTreeEntry{Type: "file", Path: path, OID: item.BlobID, Size: item.Size, XetHash: item.XetHash}
		if item.LFSSHA256 != "" {
			a.LFS = &struct {
				OID         string `json:"oid"`
				Size        int64  `json:"size"`
				PointerSize int64  `json:"pointerSize"`
			}{OID: item.LFSSHA256, Size: item.Size}
			if item.LFSSize != nil {
				a.LFS.Size = *item.LFSSize
			}
		}
		e, err := treeEntryFromAPI(a)
		if err != nil {
			return nil, fmt.Errorf("hub: cached tree %s: %w", c.treePath(repoID, commit), err)
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries, nil
}

// ensureLayout creates the repo's folders and the cache's CACHEDIR.TAG.
func (c *Cache) ensureLayout(repoID string) error {
	for _, d := range []string{
		filepath.Join(c.RepoDir(repoID), "blobs"),
		filepath.Join(c.RepoDir(repoID), "snapshots"),
		filepath.Join(c.Dir, ".locks", RepoFolderName(repoID)),
	} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("hub: creating cache folder: %w", err)
		}
	}
	tag := filepath.Join(c.Dir, "CACHEDIR.TAG")
	if _, err := os.Stat(tag); errors.Is(err, fs.ErrNotExist) {
		if err := writeFileAtomic(tag, []byte(cacheDirTag)); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic writes to a unique temporary name beside p, then renames it over p.
func writeFileAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	tmp := p + "." + randomSuffix() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

// symlinkAtomic points link at target, replacing whatever was at link.
func symlinkAtomic(target, link string) error {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(link), linkPrefix+randomSuffix())
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

// blobLinkTarget is the relative symlink target from snapshots/{commit}/{path} to blobs/{blob}:
// "../../blobs/{blob}" plus one "../" per directory in path.
func blobLinkTarget(path, blob string) string {
	return strings.Repeat("../", 2+strings.Count(path, "/")) + "blobs/" + blob
}

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Snapshot finds a revision's snapshot without any request: the commit it resolves to through
// refs/ (or the revision itself, if it is a commit) and the snapshot directory, which must exist.
// An error wrapping ErrOffline means the cache does not hold it.
func (c *Cache) Snapshot(repoID, rev string) (commit, dir string, err error) {
	commit, err = c.ReadRef(repoID, rev)
	if err != nil {
		return "", "", err
	}
	dir = c.SnapshotDir(repoID, commit)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", "", fmt.Errorf("no snapshot of %s@%s in the cache: %w", repoID, commit, ErrOffline)
	}
	return commit, dir, nil
}

// Lock takes the cache's lock on one blob of a repo (.locks/models--org--name/{blob}.lock), the
// lock huggingface_hub also takes, waiting until it is free or ctx ends. Call unlock to release.
func (c *Cache) Lock(ctx context.Context, repoID, blob string) (unlock func(), err error) {
	if err := ValidateRepoID(repoID); err != nil {
		return nil, err
	}
	if !isLowerHex(blob) || (len(blob) != 40 && len(blob) != 64) {
		return nil, fmt.Errorf("hub: %q is not a blob name", blob)
	}
	l, err := lockFile(ctx, c.LockPath(repoID, blob))
	if err != nil {
		return nil, err
	}
	return l.unlock, nil
}
