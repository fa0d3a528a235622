package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The files a Download makes besides blobs, snapshots and refs, and how a later Download tells
// them from anything else in the cache:
//
//	blobs/{blob}.incomplete                a transfer in progress or interrupted, or a verified blob
//	                                       waiting for the rest of its model; huggingface_hub's own
//	                                       name, written only under the blob's lock, and resumed
//	blobs/{blob}.incomplete.prefix         how many leading bytes of it were written in order (a
//	                                       transfer in parallel ranges writes with holes)
//	blobs/.modelverify-staging-{rand}/{blob} a hard link to a verified .incomplete file, private to
//	                                       one Download, which checks and publishes it from there;
//	                                       guarded by .locks/{repo}/.modelverify-staging-{rand}.lock
//	.modelverify-snapshot-{commit}-{rand}/ a snapshot being built, renamed into snapshots/{commit}
//	snapshots/{commit}/.../.modelverify-link-{rand}  a link about to replace one in place
//
// An .incomplete file is never thrown away for being old: the next transfer of its blob
// re-hashes its bytes with the rest. The others are removed by the next Download (or
// CleanSnapshot) under the lock that their live owner would hold.
const (
	stagingPrefix    = ".modelverify-staging-"
	snapshotPrefix   = ".modelverify-snapshot-"
	linkPrefix       = ".modelverify-link-"
	incompleteSuffix = ".incomplete"
)

// legacyStaging matches the staging and temporary names earlier versions of this package used:
// {blob}.{hex}.incomplete in blobs/ and {name}.{hex}.tmp links in snapshots.
var (
	legacyIncompleteName = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})\.[0-9a-f]+\.incomplete$`)
	tmpName              = regexp.MustCompile(`^(.+)\.[0-9a-f]{8}\.tmp$`)
	legacyLinkTmp        = regexp.MustCompile(`^.+\.[0-9a-f]+\.tmp$`)
	blobLinkPattern      = regexp.MustCompile(`^(\.\./)+blobs/([0-9a-f]{40}|[0-9a-f]{64})$`)
)

// recoverBlobs removes the staging folders of Downloads that died (their lock is free; their
// links only duplicate .incomplete files) and lists the staging files earlier versions of this
// package left in blobs/, by blob, for the caller to remove under that blob's lock. One listing
// serves every blob.
func (c *Cache) recoverBlobs(repoID string) (legacy map[string][]string, err error) {
	dir := filepath.Join(c.RepoDir(repoID), "blobs")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	legacy = map[string][]string{}
	for _, e := range entries {
		name := e.Name()
		if m := legacyIncompleteName.FindStringSubmatch(name); m != nil && e.Type().IsRegular() {
			legacy[m[1]] = append(legacy[m[1]], filepath.Join(dir, name))
			continue
		}
		if !strings.HasPrefix(name, stagingPrefix) || !e.IsDir() {
			continue
		}
		lockPath := c.stagingLockPath(repoID, name)
		l, err := tryLockFile(lockPath)
		if err != nil || l == nil {
			continue // alive, or not ours to judge
		}
		rmErr := os.RemoveAll(filepath.Join(dir, name))
		if rmErr == nil {
			os.Remove(lockPath)
		}
		l.unlock()
		if rmErr != nil {
			return nil, fmt.Errorf("hub: removing a dead download's staging: %w", rmErr)
		}
	}
	return legacy, nil
}

// stagingArea is one Download's private folder of links to the verified blobs it will publish.
// The Download holds the folder's lock for its whole life, so that another can tell a live
// folder from a dead one's.
type stagingArea struct {
	dir      string
	lockPath string
	lock     *fileLock
}

func (c *Cache) stagingLockPath(repoID, name string) string {
	return filepath.Join(c.Dir, ".locks", RepoFolderName(repoID), name+".lock")
}

// newStaging creates a staging folder under blobs/, its lock taken first.
func (c *Cache) newStaging(ctx context.Context, repoID string) (*stagingArea, error) {
	name := stagingPrefix + randomSuffix()
	st := &stagingArea{dir: filepath.Join(c.RepoDir(repoID), "blobs", name), lockPath: c.stagingLockPath(repoID, name)}
	l, err := lockFile(ctx, st.lockPath)
	if err != nil {
		return nil, err
	}
	st.lock = l
	if err := os.Mkdir(st.dir, 0o700); err != nil {
		st.remove()
		return nil, fmt.Errorf("hub: creating the staging folder: %w", err)
	}
	return st, nil
}

// remove deletes the folder with what is left in it, then its lock.
func (st *stagingArea) remove() {
	os.RemoveAll(st.dir)
	os.Remove(st.lockPath)
	st.lock.unlock()
}

// readPrefixMarker returns how many leading bytes of an .incomplete file were written in order,
// or -1 when there is no marker (the file was written front to back, so all of it counts).
func readPrefixMarker(incomplete string) int64 {
	b, err := os.ReadFile(markerPath(incomplete))
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return 0 // unreadable: trust nothing
	}
	return n
}

// markerPath is the prefix marker of an .incomplete file.
func markerPath(incomplete string) string { return incomplete + ".prefix" }

// snapshotLockPath guards the publication of one commit's snapshot.
func (c *Cache) snapshotLockPath(repoID, commit string) string {
	return filepath.Join(c.Dir, ".locks", RepoFolderName(repoID), "snapshot-"+commit+".lock")
}

// cleanSnapshotLeftovers removes what a crashed publication of commit left: snapshots being
// built aside, and temporary links inside the snapshot (this version's and earlier versions').
// The caller holds the commit's snapshot lock, which every publisher holds while it links.
func (c *Cache) cleanSnapshotLeftovers(repoID, commit string) error {
	repoDir := c.RepoDir(repoID)
	entries, err := os.ReadDir(repoDir)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), snapshotPrefix+commit+"-") && e.IsDir() {
			if err := os.RemoveAll(filepath.Join(repoDir, e.Name())); err != nil {
				return fmt.Errorf("hub: removing an unfinished snapshot: %w", err)
			}
		}
	}
	snap := c.SnapshotDir(repoID, commit)
	err = filepath.WalkDir(snap, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		name := d.Name()
		ours := strings.HasPrefix(name, linkPrefix)
		if !ours && legacyLinkTmp.MatchString(name) {
			target, err := os.Readlink(p)
			ours = err == nil && blobLinkPattern.MatchString(target)
		}
		if ours {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("hub: cleaning snapshot %s: %w", snap, err)
	}
	return nil
}

// CleanSnapshot removes what a crashed Download of commit left, under the locks its owner would
// hold: staging folders, a snapshot being built aside, and temporary links inside the snapshot
// (this package's, and those earlier versions left, which would otherwise read as files of the
// model). Download does it itself; a caller that reuses a snapshot without a Download calls it
// first.
func (c *Cache) CleanSnapshot(ctx context.Context, repoID, commit string) error {
	if err := ValidateRepoID(repoID); err != nil {
		return err
	}
	if !IsCommit(commit) {
		return fmt.Errorf("hub: %q is not a commit", commit)
	}
	if _, err := os.Stat(c.RepoDir(repoID)); err != nil {
		return nil // nothing cached, nothing left over
	}
	l, err := lockFile(ctx, c.snapshotLockPath(repoID, commit))
	if err != nil {
		return err
	}
	defer l.unlock()
	if _, err := c.recoverBlobs(repoID); err != nil {
		return err
	}
	c.cleanRefAndTreeLeftovers(repoID)
	return c.cleanSnapshotLeftovers(repoID, commit)
}

// cleanRefAndTreeLeftovers removes the temporary files killed writers of refs and cached trees
// left, each under the lock that writers of that ref or tree take (see Cache.writeGuarded).
func (c *Cache) cleanRefAndTreeLeftovers(repoID string) {
	refs := filepath.Join(c.RepoDir(repoID), "refs")
	_ = filepath.WalkDir(refs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if m := tmpName.FindStringSubmatch(d.Name()); m != nil {
			rel, _ := filepath.Rel(refs, filepath.Join(filepath.Dir(p), m[1]))
			sum := sha256.Sum256([]byte(filepath.ToSlash(rel)))
			c.writeGuarded(repoID, "ref-"+hex.EncodeToString(sum[:8]), filepath.Join(filepath.Dir(p), m[1]), nil)
		}
		return nil
	})
	trees := filepath.Join(c.RepoDir(repoID), "trees")
	entries, _ := os.ReadDir(trees)
	for _, e := range entries {
		if m := tmpName.FindStringSubmatch(e.Name()); m != nil && strings.HasSuffix(m[1], ".json") && IsCommit(strings.TrimSuffix(m[1], ".json")) {
			c.writeGuarded(repoID, "tree-"+strings.TrimSuffix(m[1], ".json"), filepath.Join(trees, m[1]), nil)
		}
	}
}
