package hub

import (
	"context"
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
//	.modelverify-snapshot-{commit}-{rand}/ a snapshot being built, renamed into snapshots/{commit}
//	snapshots/{commit}/.../.modelverify-link-{rand}  a link about to replace one in place
//
// An .incomplete file is never thrown away for being old: the next transfer of its blob
// re-hashes its bytes with the rest. The others are removed by the next publication of the
// commit, under the lock that their live owner would hold.
const (
	snapshotPrefix   = ".modelverify-snapshot-"
	linkPrefix       = ".modelverify-link-"
	incompleteSuffix = ".incomplete"
)

// legacyStaging matches the staging and temporary names earlier versions of this package used:
// {blob}.{hex}.incomplete in blobs/ and {name}.{hex}.tmp links in snapshots.
var (
	legacyIncompleteName = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})\.[0-9a-f]+\.incomplete$`)
	legacyLinkTmp        = regexp.MustCompile(`^.+\.[0-9a-f]+\.tmp$`)
	blobLinkPattern      = regexp.MustCompile(`^(\.\./)+blobs/([0-9a-f]{40}|[0-9a-f]{64})$`)
)

// legacyIncomplete lists the staging files earlier versions of this package left in blobs/, by
// blob: the caller removes them under that blob's lock. One listing serves every blob.
func (c *Cache) legacyIncomplete(repoID string) (map[string][]string, error) {
	dir := filepath.Join(c.RepoDir(repoID), "blobs")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	legacy := map[string][]string{}
	for _, e := range entries {
		if m := legacyIncompleteName.FindStringSubmatch(e.Name()); m != nil && e.Type().IsRegular() {
			legacy[m[1]] = append(legacy[m[1]], filepath.Join(dir, e.Name()))
		}
	}
	return legacy, nil
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

// CleanSnapshot removes what a crashed publication of commit left, under the commit's snapshot
// lock: a snapshot being built aside, and temporary links inside the snapshot (this package's,
// and those earlier versions left, which would otherwise read as files of the model). Download
// does it before every publication; a caller that reuses a snapshot without a Download calls it
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
	return c.cleanSnapshotLeftovers(repoID, commit)
}
