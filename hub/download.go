package hub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// DownloadOption configures one Download.
type DownloadOption func(*downloadOptions)

type downloadOptions struct {
	check    func(context.Context, StagedFile) error
	checkAll func(context.Context, []StagedFile) error
	ref      string
}

// WithStagedCheck runs check on every file once its bytes are on disk and match the Hub's digest
// and size, before anything is published. Files already in the cache are checked too (Cached is
// set). If check returns an error for any file, the download publishes nothing, removes its
// staged files and returns a *FileError naming that file and wrapping both ErrStagedCheck and
// check's error. check runs concurrently for different files.
func WithStagedCheck(check func(ctx context.Context, f StagedFile) error) DownloadOption {
	return func(o *downloadOptions) { o.check = check }
}

// WithStagedSetCheck runs check once, after every file has passed WithStagedCheck, with all of
// them (in the order they were requested), before anything is published. It is for checks that
// span files, such as a safetensors index against its shards. If it returns an error, the
// download publishes nothing, removes its staged files and returns that error wrapped in
// ErrStagedCheck.
func WithStagedSetCheck(check func(ctx context.Context, files []StagedFile) error) DownloadOption {
	return func(o *downloadOptions) { o.checkAll = check }
}

// WithRef records, once everything is published, that the revision rev resolved to the commit
// (refs/{rev} in the cache), so offline lookups of rev find this snapshot.
func WithRef(rev string) DownloadOption { return func(o *downloadOptions) { o.ref = rev } }

// StagedFile is a file whose bytes are on local disk and match the Hub's digest and size, but
// which is not yet published in a snapshot.
type StagedFile struct {
	// Entry is the tree entry the file was downloaded for.
	Entry TreeEntry
	// Path is the file's path in the repository (Entry.Path).
	Path string
	// LocalPath is the staged file, or the cached blob when Cached. Read it; do not move it.
	LocalPath string
	// Size is the number of bytes on disk.
	Size int64
	// SHA256 is the digest of the bytes on disk, computed while they streamed in (or re-computed
	// from the cached blob).
	SHA256 digest.Digest
	// GitSHA1 is the git blob id of the bytes, for plain git files (empty for LFS files).
	GitSHA1 string
	// Cached is true when the blob was already in the cache; it was re-hashed all the same.
	Cached bool
}

// Snapshot is a commit's files published in the cache.
type Snapshot struct {
	// RepoID and Commit name the snapshot.
	RepoID, Commit string
	// Dir is snapshots/{commit}: the directory a loader reads from.
	Dir string
	// Files are the files this download published or found, in the order they were asked for.
	Files []SnapshotFile
}

// SnapshotFile is one published file.
type SnapshotFile struct {
	// Path is the file's path in the repository.
	Path string
	// LocalPath is its path in the snapshot (a relative symlink to BlobPath).
	LocalPath string
	// BlobPath is the blob the link points at.
	BlobPath string
	// Size and SHA256 describe the verified content.
	Size   int64
	SHA256 digest.Digest
	// Cached is true when the blob was already in the cache.
	Cached bool
}

// blobJob is one blob to obtain; several paths may share it.
type blobJob struct {
	blob    string
	entry   TreeEntry
	indexes []int // into the files argument
	cached  bool
	// corrupt is set when the cached blob failed its re-hash; it is fetched again.
	corrupt bool
	// cachedPath is the blob in the cache when cached.
	cachedPath string
	staged     *stagedBlob
	sums       blobSums
}

type blobSums struct {
	size    int64
	sha256  string
	gitSHA1 string
}

// Download fetches files of a commit into the cache and publishes them in its snapshot, verified.
//
// Each file streams into its blob's .incomplete file and is hashed as it arrives; it must match
// its tree entry's size and the Hub's digest (the LFS sha256, or the git blob id). An
// .incomplete file an interrupted download left (this package's or huggingface_hub's) is
// resumed: its bytes are kept and re-hashed with the rest, and if the whole does not match, the
// file is fetched again from the start. Blobs already in the cache are re-hashed rather than
// trusted. The WithStagedCheck hook then sees each file. Only when every file has passed are the
// staged blobs renamed into blobs/, the snapshot's relative symlinks created (a new snapshot is
// built aside and renamed into place whole) and the ref (WithRef) written. If anything fails,
// nothing new is linked and the error is a *FileError naming the file. After a temporary
// failure (ErrTemporary) or a cancellation, what was fetched stays as .incomplete files, to be
// resumed and re-hashed; after any other failure, the blobs this download fetched are removed.
//
// A blob's lock under .locks (the one huggingface_hub takes) is held only while that blob is
// fetched, so a download of any number of files holds a bounded number of files open (about
// three per job of WithJobs). What a crashed download left (staging folders, half-built
// snapshots, temporary links, earlier versions' staging names) is recognised by its name and
// removed under the lock its owner would hold. Offline, Download succeeds only if every blob is
// already cached.
//
// A failure of the network, of the Hub's service or of the local disk (full, I/O error) matches
// ErrTemporary: the same Download may pass later. Other failures will fail again.
func (c *Client) Download(ctx context.Context, repoID, commit string, files []TreeEntry, opts ...DownloadOption) (snap *Snapshot, err error) {
	var jobs []*blobJob
	defer func() {
		err = markTemporary(err)
		if err != nil && !errors.Is(err, ErrTemporary) && !errors.Is(err, context.Canceled) {
			// Refused for good: what was fetched for it is not kept for a retry.
			c.discardStaged(repoID, jobs)
		}
	}()
	var o downloadOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := ValidateRepoID(repoID); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if !IsCommit(commit) {
		return nil, fmt.Errorf("hub: Download needs a 40-hex commit, got %q", commit)
	}
	if o.ref != "" {
		if err := ValidateRevision(o.ref); err != nil {
			return nil, fmt.Errorf("hub: %w", err)
		}
	}
	jobs, err = planJobs(files)
	if err != nil {
		return nil, err
	}
	if err := c.cache.ensureLayout(repoID); err != nil {
		return nil, err
	}

	// Re-hash what is cached; a blob that no longer matches its name is fetched again.
	if err := c.rehashCached(ctx, repoID, files, jobs); err != nil {
		return nil, err
	}
	var missing []*blobJob
	for _, j := range jobs {
		if !j.cached {
			missing = append(missing, j)
		}
	}
	if len(missing) > 0 && c.offline {
		return nil, &FileError{Path: missing[0].entry.Path, Err: fmt.Errorf("blob %s not in the cache: %w", missing[0].blob, ErrOffline)}
	}

	// Each missing blob is fetched under its own lock, held only while it is fetched, so a
	// download holds a bounded number of files open whatever the number of files. A verified
	// blob then stays as its complete .incomplete file, where another download that needs it
	// meanwhile finds it and only re-hashes it, and this one checks and publishes it through a
	// hard link in its own staging folder.
	legacy, err := c.cache.recoverBlobs(repoID)
	if err != nil {
		return nil, err
	}
	var st *stagingArea
	if len(missing) > 0 {
		if st, err = c.cache.newStaging(ctx, repoID); err != nil {
			return nil, err
		}
		defer st.remove()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.jobs)
	transfers := make(chan struct{}, c.jobs)
	for _, j := range jobs {
		g.Go(func() error {
			if !j.cached {
				if err := c.obtainBlob(gctx, repoID, commit, files, j, st, legacy[j.blob], transfers); err != nil {
					return err
				}
			}
			return c.runCheck(gctx, o.check, files, j)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if o.checkAll != nil {
		staged := make([]StagedFile, len(files))
		for _, j := range jobs {
			for _, i := range j.indexes {
				staged[i] = c.stagedFile(files, j, i)
			}
		}
		if err := o.checkAll(ctx, staged); err != nil {
			return nil, fmt.Errorf("hub: %w: %w", ErrStagedCheck, err)
		}
	}
	return c.publish(ctx, repoID, commit, files, jobs, o.ref)
}

// planJobs validates the requested files and groups them by blob.
func planJobs(files []TreeEntry) ([]*blobJob, error) {
	byBlob := map[string]*blobJob{}
	var jobs []*blobJob
	seen := map[string]bool{}
	for i, e := range files {
		if err := ValidatePath(e.Path); err != nil {
			return nil, fmt.Errorf("hub: %w", err)
		}
		if seen[e.Path] {
			return nil, fmt.Errorf("hub: %s requested twice", e.Path)
		}
		seen[e.Path] = true
		if len(e.OID) != 40 || !isLowerHex(e.OID) {
			return nil, &FileError{Path: e.Path, Err: fmt.Errorf("tree entry has no git blob id (oid %q)", e.OID)}
		}
		if e.LFS != nil && (!isSHA256Hex(e.LFS.SHA256) || e.LFS.Size != e.Size) {
			return nil, &FileError{Path: e.Path, Err: fmt.Errorf("tree entry has an invalid LFS sha256 %q or size", e.LFS.SHA256)}
		}
		if e.Size < 0 {
			return nil, &FileError{Path: e.Path, Err: fmt.Errorf("negative size %d", e.Size)}
		}
		b := e.BlobName()
		if j, ok := byBlob[b]; ok {
			if j.entry.Size != e.Size || (j.entry.LFS == nil) != (e.LFS == nil) {
				return nil, &FileError{Path: e.Path, Err: fmt.Errorf("same blob %s as %s but a different size or kind", b, j.entry.Path)}
			}
			j.indexes = append(j.indexes, i)
			continue
		}
		j := &blobJob{blob: b, entry: e, indexes: []int{i}}
		byBlob[b] = j
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// rehashCached re-hashes the blobs of jobs that exist in the cache and marks those that match.
func (c *Client) rehashCached(ctx context.Context, repoID string, files []TreeEntry, jobs []*blobJob) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.jobs)
	for _, j := range jobs {
		if j.corrupt {
			continue
		}
		p := c.cache.BlobPath(repoID, j.blob)
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return &FileError{Path: j.entry.Path, Err: fmt.Errorf("cached blob %s is not a regular file", p)}
		}
		g.Go(func() error {
			sums, err := hashFile(gctx, p, j.entry)
			if err != nil {
				return &FileError{Path: j.entry.Path, Err: err}
			}
			if err := verifySums(j.entry, sums); err != nil {
				j.corrupt = true
				c.report(Progress{Repo: repoID, Path: j.entry.Path, State: ProgressCacheCorrupt, Size: j.entry.Size, Err: err})
				return nil // fetched again, and the fresh blob replaces it
			}
			j.cached, j.sums, j.cachedPath = true, sums, p
			for _, i := range j.indexes {
				c.report(Progress{Repo: repoID, Path: files[i].Path, State: ProgressCached, Bytes: sums.size, Size: sums.size})
			}
			return nil
		})
	}
	return g.Wait()
}

// obtainBlob fetches a missing blob under its lock into its .incomplete file, unless another
// process published it while this one waited for the lock. legacy are staging files an earlier
// version left for this blob.
func (c *Client) obtainBlob(ctx context.Context, repoID, commit string, files []TreeEntry, j *blobJob, st *stagingArea, legacy []string, transfers chan struct{}) error {
	unlock, err := c.cache.Lock(ctx, repoID, j.blob)
	if err != nil {
		return err
	}
	defer unlock()
	for _, p := range legacy {
		os.Remove(p)
	}
	if err := c.rehashCached(ctx, repoID, files, []*blobJob{j}); err != nil {
		return err
	}
	if j.cached {
		return nil
	}
	incomplete := c.cache.BlobPath(repoID, j.blob) + incompleteSuffix
	if err := c.fetchVerified(ctx, repoID, commit, j, incomplete, transfers); err != nil {
		return err
	}
	// Complete and verified: without a prefix marker, a later transfer takes all of it.
	if err := os.Remove(markerPath(incomplete)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &FileError{Path: j.entry.Path, Err: err}
	}
	if err := os.Chmod(incomplete, 0o644); err != nil {
		return &FileError{Path: j.entry.Path, Err: err}
	}
	staged := filepath.Join(st.dir, j.blob)
	if err := os.Link(incomplete, staged); err != nil {
		return &FileError{Path: j.entry.Path, Err: fmt.Errorf("staging: %w", err)}
	}
	j.staged = &stagedBlob{path: staged, sums: j.sums}
	return nil
}

// fetchVerified downloads one blob into its .incomplete file, resuming what an interrupted
// transfer left there, and checks it against the tree entry. A digest mismatch is retried once
// with a fresh download: the kept bytes may have been the bad ones, and a CDN node can serve
// bad bytes transiently. Nothing unverified is ever kept past a mismatch.
func (c *Client) fetchVerified(ctx context.Context, repoID, commit string, j *blobJob, incomplete string, transfers chan struct{}) error {
	var err error
	for try := 0; try < 2; try++ {
		var sums blobSums
		sums, err = c.fetchBlob(ctx, repoID, commit, j.entry, incomplete, try == 0, transfers)
		if err != nil {
			return &FileError{Path: j.entry.Path, Err: err}
		}
		if err = verifySums(j.entry, sums); err == nil {
			j.sums = sums
			c.report(Progress{Repo: repoID, Path: j.entry.Path, State: ProgressVerified, Bytes: j.sums.size, Size: j.entry.Size})
			return nil
		}
		os.Remove(incomplete)
		os.Remove(markerPath(incomplete))
		if !errors.Is(err, ErrDigestMismatch) {
			break
		}
		c.report(Progress{Repo: repoID, Path: j.entry.Path, State: ProgressRetrying, Attempt: try + 1, Err: err, Size: j.entry.Size})
	}
	return &FileError{Path: j.entry.Path, Err: err}
}

// discardStaged removes, each under its blob's lock, the .incomplete files of the blobs this
// download fetched and did not publish.
func (c *Client) discardStaged(repoID string, jobs []*blobJob) {
	for _, j := range jobs {
		if j.staged == nil {
			continue
		}
		unlock, err := c.cache.Lock(context.Background(), repoID, j.blob)
		if err != nil {
			continue
		}
		incomplete := c.cache.BlobPath(repoID, j.blob) + incompleteSuffix
		os.Remove(incomplete)
		os.Remove(markerPath(incomplete))
		unlock()
	}
}

// verifySums checks size and the Hub's digest: the LFS sha256, or the git blob id.
func verifySums(e TreeEntry, s blobSums) error {
	if s.size != e.Size {
		return &SizeError{Want: e.Size, Got: s.size, Overrun: s.size > e.Size}
	}
	if e.LFS != nil {
		if s.sha256 != e.LFS.SHA256 {
			return &DigestError{Algorithm: "sha256", Want: e.LFS.SHA256, Got: s.sha256}
		}
		return nil
	}
	if s.gitSHA1 != e.OID {
		return &DigestError{Algorithm: "git-sha1", Want: e.OID, Got: s.gitSHA1}
	}
	return nil
}

func (c *Client) runCheck(ctx context.Context, check func(context.Context, StagedFile) error, files []TreeEntry, j *blobJob) error {
	if check == nil {
		return nil
	}
	for _, i := range j.indexes {
		if err := check(ctx, c.stagedFile(files, j, i)); err != nil {
			return &FileError{Path: files[i].Path, Err: fmt.Errorf("%w: %w", ErrStagedCheck, err)}
		}
	}
	return nil
}

// stagedFile describes files[i], which job j holds on disk.
func (c *Client) stagedFile(files []TreeEntry, j *blobJob, i int) StagedFile {
	sf := StagedFile{
		Entry: files[i], Path: files[i].Path, Size: j.sums.size,
		SHA256: digest.NewDigestFromEncoded(digest.SHA256, j.sums.sha256),
		Cached: j.cached,
	}
	if files[i].LFS == nil {
		sf.GitSHA1 = j.sums.gitSHA1
	}
	if j.cached {
		sf.LocalPath = j.cachedPath
	} else {
		sf.LocalPath = j.staged.path
	}
	return sf
}

// publish renames staged blobs into blobs/, links the snapshot and writes the ref, under the
// commit's snapshot lock, after removing what a crashed publication left. A new snapshot is
// built aside and renamed into place whole, so a loader never sees it half-built; files added to
// an existing snapshot are linked one by one, each link replaced atomically. If linking fails,
// the links this call created are removed again; the blobs stay, being verified.
func (c *Client) publish(ctx context.Context, repoID, commit string, files []TreeEntry, jobs []*blobJob, ref string) (*Snapshot, error) {
	for _, j := range jobs {
		if j.staged == nil {
			continue
		}
		if err := os.Rename(j.staged.path, c.cache.BlobPath(repoID, j.blob)); err != nil {
			return nil, &FileError{Path: j.entry.Path, Err: fmt.Errorf("publishing blob: %w", err)}
		}
		// The blob's .incomplete file, the other name of what was just published, has served.
		unlock, err := c.cache.Lock(ctx, repoID, j.blob)
		if err != nil {
			return nil, err
		}
		incomplete := c.cache.BlobPath(repoID, j.blob) + incompleteSuffix
		os.Remove(incomplete)
		os.Remove(markerPath(incomplete))
		unlock()
		j.staged = nil
	}
	l, err := lockFile(ctx, c.cache.snapshotLockPath(repoID, commit))
	if err != nil {
		return nil, err
	}
	defer l.unlock()
	if err := c.cache.cleanSnapshotLeftovers(repoID, commit); err != nil {
		return nil, err
	}

	snap := &Snapshot{RepoID: repoID, Commit: commit, Dir: c.cache.SnapshotDir(repoID, commit), Files: make([]SnapshotFile, len(files))}
	for _, j := range jobs {
		for _, i := range j.indexes {
			snap.Files[i] = SnapshotFile{
				Path: files[i].Path, LocalPath: c.cache.SnapshotPath(repoID, commit, files[i].Path), BlobPath: c.cache.BlobPath(repoID, j.blob),
				Size: j.sums.size, SHA256: digest.NewDigestFromEncoded(digest.SHA256, j.sums.sha256), Cached: j.cached,
			}
		}
	}
	if _, err := os.Lstat(snap.Dir); errors.Is(err, fs.ErrNotExist) {
		if err := c.buildSnapshot(repoID, commit, files, jobs); err != nil {
			return nil, err
		}
	} else if err := c.linkIntoSnapshot(repoID, commit, files, jobs); err != nil {
		return nil, err
	}
	if ref != "" {
		if err := c.cache.WriteRef(repoID, ref, commit); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// buildSnapshot links every file into a new folder beside snapshots/, then renames it to
// snapshots/{commit}. The relative links resolve once the folder is in place.
func (c *Client) buildSnapshot(repoID, commit string, files []TreeEntry, jobs []*blobJob) error {
	aside := filepath.Join(c.cache.RepoDir(repoID), snapshotPrefix+commit+"-"+randomSuffix())
	if err := os.Mkdir(aside, 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	for _, j := range jobs {
		for _, i := range j.indexes {
			link := filepath.Join(aside, filepath.FromSlash(files[i].Path))
			if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
				os.RemoveAll(aside)
				return fmt.Errorf("hub: %w", err)
			}
			if err := os.Symlink(blobLinkTarget(files[i].Path, j.blob), link); err != nil {
				os.RemoveAll(aside)
				return &FileError{Path: files[i].Path, Err: fmt.Errorf("linking snapshot: %w", err)}
			}
		}
	}
	if err := os.Rename(aside, c.cache.SnapshotDir(repoID, commit)); err != nil {
		os.RemoveAll(aside)
		if _, statErr := os.Lstat(c.cache.SnapshotDir(repoID, commit)); statErr == nil {
			// Another tool (huggingface_hub) created the snapshot meanwhile: add to it.
			return c.linkIntoSnapshot(repoID, commit, files, jobs)
		}
		return fmt.Errorf("hub: publishing snapshot: %w", err)
	}
	return nil
}

// linkIntoSnapshot links files into an existing snapshot, each through a temporary link renamed
// over its place; on failure the links it created are removed.
func (c *Client) linkIntoSnapshot(repoID, commit string, files []TreeEntry, jobs []*blobJob) error {
	var created []string
	for _, j := range jobs {
		for _, i := range j.indexes {
			link := c.cache.SnapshotPath(repoID, commit, files[i].Path)
			_, statErr := os.Lstat(link)
			if err := symlinkAtomic(blobLinkTarget(files[i].Path, j.blob), link); err != nil {
				for _, p := range created {
					os.Remove(p)
				}
				return &FileError{Path: files[i].Path, Err: fmt.Errorf("linking snapshot: %w", err)}
			}
			if statErr != nil {
				created = append(created, link)
			}
		}
	}
	return nil
}
