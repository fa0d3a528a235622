package modelverify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/internal/scan"
)

// A verification record lets a later Verify of the same commit skip the download and the
// hashing when nothing has changed. It lives beside the cache's repositories, in
// <cache>/.modelverify/<repo folder>/<commit>.json, out of the way of huggingface_hub's tools.
//
// What a reuse re-checks: the policy (endpoint, publisher, pinning, organisation), the
// signature (fetched and verified again), the tree (listed again; each file's blob id must be
// the recorded one, and the signed manifest must still match it both ways), the content rules
// (applied again to the recorded format and verdict), and every file's inode, size,
// modification and change time. What it trusts: that a file whose metadata is unchanged still
// holds the bytes that were hashed and scanned, as make and git trust it, and the record
// itself. Both are only as safe as the cache directory's permissions: it must be writable by
// the service alone.
const recordVersion = 1

type verificationRecord struct {
	Version int            `json:"version"`
	Repo    string         `json:"repo"`
	Commit  string         `json:"commit"`
	Bundle  string         `json:"bundle,omitempty"` // hex SHA-256 of the signature file
	Files   []recordedFile `json:"files"`
}

type recordedFile struct {
	Name     string      `json:"name"`
	Blob     string      `json:"blob"` // the tree's blob id: LFS sha256 or git blob id
	BlobPath string      `json:"blobPath"`
	SHA256   string      `json:"sha256"`
	Size     int64       `json:"size"`
	Format   string      `json:"format"`
	Verdict  string      `json:"verdict"`
	Stamp    stampRecord `json:"stamp"`
}

type stampRecord struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // nanoseconds since the epoch
}

func toStampRecord(s fileStamp) stampRecord {
	return stampRecord{Dev: s.dev, Ino: s.ino, Size: s.size, Mtime: s.mtime.UnixNano(), Ctime: s.ctime.UnixNano()}
}

func (s stampRecord) stamp() fileStamp {
	return fileStamp{dev: s.Dev, ino: s.Ino, size: s.Size, mtime: time.Unix(0, s.Mtime), ctime: time.Unix(0, s.Ctime)}
}

func (v *Verifier) recordPath(repoID, commit string) string {
	return filepath.Join(v.client.Cache().Dir, ".modelverify", hub.RepoFolderName(repoID), commit+".json")
}

func (v *Verifier) signaturePath(repoID, commit string) string {
	return filepath.Join(v.client.Cache().Dir, ".modelverify", hub.RepoFolderName(repoID), commit+".sig")
}

// readSignature fetches the signature file at a commit. Offline, it is the copy kept when the
// commit was last verified: the signature is not model content, so it is not in the snapshot.
func (v *Verifier) readSignature(ctx context.Context, repoID, commit, sigPath string) ([]byte, error) {
	if v.client.Offline() {
		b, err := readBounded(v.signaturePath(repoID, commit), maxSignatureSize)
		if err != nil {
			return nil, fmt.Errorf("%w: no verified copy of %s for %s@%s: %v", hub.ErrOffline, sigPath, repoID, commit, err)
		}
		return b, nil
	}
	return v.client.ReadFile(ctx, repoID, commit, sigPath, maxSignatureSize)
}

func bundleDigest(bundle []byte) string {
	if bundle == nil {
		return ""
	}
	s := sha256.Sum256(bundle)
	return hex.EncodeToString(s[:])
}

// writeRecord saves what was verified, atomically. A failure only costs the next Verify its
// shortcut, so it is not an error for the caller.
func (v *Verifier) writeRecord(repoID, commit string, bundle []byte, m *Model, blobs map[string]string, verdicts map[string]string) {
	if bundle != nil && writeFileAtomic(v.signaturePath(repoID, commit), bundle) != nil {
		return
	}
	rec := verificationRecord{Version: recordVersion, Repo: repoID, Commit: commit, Bundle: bundleDigest(bundle)}
	for _, f := range m.files {
		rec.Files = append(rec.Files, recordedFile{Name: f.Name, Blob: blobs[f.Name], BlobPath: f.path, SHA256: f.SHA256,
			Size: f.Size, Format: f.Format, Verdict: verdicts[f.Name], Stamp: toStampRecord(f.stamp)})
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return
	}
	_ = writeFileAtomic(v.recordPath(repoID, commit), data)
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}

// reuse returns the model from an earlier verification of this commit when every file is
// still the one that was verified, or nil when it must be verified afresh. Problems the
// content rules find are reported through d, as for a fresh check.
func (v *Verifier) reuse(d *decision, repoID, commit, bundle string, files []hub.TreeEntry) (*Model, error) {
	data, err := os.ReadFile(v.recordPath(repoID, commit))
	if err != nil {
		return nil, nil
	}
	var rec verificationRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.Version != recordVersion || rec.Repo != repoID || rec.Commit != commit {
		return nil, nil
	}
	if rec.Bundle != bundle {
		return nil, nil
	}
	if len(rec.Files) != len(files) {
		return nil, nil
	}
	byName := make(map[string]recordedFile, len(rec.Files))
	for _, f := range rec.Files {
		byName[f.Name] = f
	}
	snapshot := v.client.Cache().SnapshotDir(repoID, commit)
	m := &Model{dir: snapshot, byName: map[string]int{}}
	for _, e := range files {
		rf, ok := byName[e.Path]
		if !ok || rf.Blob != e.BlobName() || rf.Size != e.Size {
			return nil, nil
		}
		target, err := filepath.EvalSymlinks(filepath.Join(snapshot, filepath.FromSlash(e.Path)))
		if err != nil || target != rf.BlobPath {
			return nil, nil
		}
		st, err := stampPath(rf.BlobPath)
		if err != nil || st != rf.Stamp.stamp() {
			return nil, nil
		}
		m.byName[e.Path] = len(m.files)
		m.files = append(m.files, File{Name: e.Path, Size: rf.Size, SHA256: rf.SHA256, Format: rf.Format, path: rf.BlobPath, stamp: st})
	}
	// The content rules may have changed since: judge the recorded scan again.
	for _, rf := range rec.Files {
		verdict, ok := parseVerdict(rf.Verdict)
		if !ok {
			return nil, nil
		}
		rep := &scan.Report{Format: scan.Format(rf.Format), Verdict: verdict}
		for _, p := range judgeContent(&v.policy.Content, rf.Name, rep) {
			if err := d.fail(p, nil); err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(m.files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	for i, f := range m.files {
		m.byName[f.Name] = i
	}
	return m, nil
}

func parseVerdict(s string) (scan.Verdict, bool) {
	for _, v := range []scan.Verdict{scan.Safe, scan.Suspicious, scan.Dangerous} {
		if v.String() == s {
			return v, true
		}
	}
	return 0, false
}

// checkSnapshotHoldsOnly refuses a snapshot that holds files this verification did not check:
// files another tool (huggingface_hub, say) linked into the same commit's snapshot. A loader
// reading the directory could pick them up. The signature file and ignored paths, which are
// not model content, may be there.
func checkSnapshotHoldsOnly(d *decision, dir string, m *Model, ignores []string) error {
	var extra []string
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if de.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if _, ok := m.byName[filepath.ToSlash(rel)]; !ok && !ignoredPath(filepath.ToSlash(rel), ignores) {
			extra = append(extra, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return d.fatal(Problem{Reason: ErrHub, Detail: "reading the snapshot: " + firstLine(err)}, err)
	}
	for _, name := range extra {
		if err := d.fail(Problem{Reason: ErrUnexpectedFile, File: name,
			Detail: fmt.Sprintf("in the cache snapshot %s but not verified: another tool put it there", dir)}, nil); err != nil {
			return err
		}
	}
	return nil
}
