package modelverify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/internal/scan"
	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/registry"
)

// A verification record lets a later Verify of the same commit skip the download and the
// hashing when nothing has changed. It lives beside the cache's repositories, in
// <cache>/.modelverify/<repo folder>/<commit>.json, out of the way of huggingface_hub's tools.
//
// A record is written only for a decision that found no problem at all: a model allowed in
// audit mode despite a problem is verified in full again next time. A record is bound to what
// produced it: the policy (the digest of its canonical document, mode included, and of every
// key, certificate and trust root it names), the gate's build, the endpoint, the signature
// bundle and the signed manifest's root digest. Any difference means a full verification.
//
// What a reuse re-checks: the policy (endpoint, publisher, pinning, organisation), the
// signature (fetched and verified again), the tree (listed again; each file's blob id must be
// the recorded one, and the signed manifest must still match it both ways), every file's
// signed digests against the digests it was verified with (whatever the manifest's hash and
// serialization, and whether or not the Hub gives an LFS sha256 for it), the content rules
// (applied again to the recorded format and verdict), and every file's inode, size,
// modification and change time. What it trusts: a record whose HMAC-SHA256 verifies under the
// record key, kept outside the cache (loadRecordKey), so that an editor of the cache who cannot
// read the key can neither forge nor edit one; and that a file whose metadata is unchanged
// still holds the bytes that were hashed and scanned, as make and git trust it.
const recordVersion = 2

// maxRecordFileSize bounds a record read from the cache: about 500 bytes a file, for models of
// several hundred thousand files.
const maxRecordFileSize = 256 << 20

type verificationRecord struct {
	Version  int            `json:"version"`
	Repo     string         `json:"repo"`
	Commit   string         `json:"commit"`
	Endpoint string         `json:"endpoint"`
	Policy   string         `json:"policy"`             // policyDigest of the policy that decided
	Build    string         `json:"build"`              // gateBuild of the code that decided
	Bundle   string         `json:"bundle,omitempty"`   // hex SHA-256 of the signature file
	Manifest string         `json:"manifest,omitempty"` // the signed manifest's root digest
	Files    []recordedFile `json:"files"`
}

type recordedFile struct {
	Name     string `json:"name"`
	Blob     string `json:"blob"` // the tree's blob id: LFS sha256 or git blob id
	BlobPath string `json:"blobPath"`
	SHA256   string `json:"sha256"`
	// Signed lists the digests the file's bytes hashed to in the signed manifest's terms
	// (its hash, whole file or shards), as formatDigests writes them; empty when unsigned.
	Signed  []string    `json:"signed,omitempty"`
	Size    int64       `json:"size"`
	Format  string      `json:"format"`
	Verdict string      `json:"verdict"`
	Stamp   stampRecord `json:"stamp"`
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
	return v.recordBase(repoID, commit) + ".json"
}

func (v *Verifier) signaturePath(repoID, commit string) string {
	return v.recordBase(repoID, commit) + ".sig"
}

// recordBase names the record of repoID@commit without its extension. A Hub repository's is
// <cache>/.modelverify/models--org--name/<commit>; an OCI model's (repoID "oci://host/repository",
// commit its manifest digest) mirrors the store: <cache>/.modelverify/oci/<host>/<repository>/sha256-<hex>.
// The two cannot meet: a Hub folder always starts with "models--".
func (v *Verifier) recordBase(repoID, commit string) string {
	root := filepath.Join(v.client.Cache().Dir, ".modelverify")
	if name, ok := strings.CutPrefix(repoID, registry.Scheme); ok {
		host, repo, _ := strings.Cut(name, "/")
		return filepath.Join(root, ociStoreDir, ociHostDir(host), filepath.FromSlash(repo), strings.Replace(commit, ":", "-", 1))
	}
	return filepath.Join(root, hub.RepoFolderName(repoID), commit)
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

// recordContext is what a record is bound to besides the files: the decision's endpoint,
// repository, commit, signature bundle and signed manifest. For an OCI model, endpoint is
// "oci://<host>", repo "oci://<host>/<repository>" and commit the manifest digest; its cosign
// signature is verified online on every load, so the record need not name it.
type recordContext struct {
	endpoint     string
	repo, commit string
	bundle       []byte
	signed       *manifest.Manifest // nil for a publisher that needs no signature
}

func (rc recordContext) manifestDigest() string {
	if rc.signed == nil {
		return ""
	}
	return rc.signed.RootDigest().String()
}

// writeRecord saves what was verified, atomically: per file, its blob id (blobs; none for an
// OCI model), the signed digests it was verified with (signed) and the scanner's verdict
// (verdicts). A failure only costs the next Verify its shortcut, so it is not an error for the
// caller. The signature is kept whatever happens to the record: offline verification reads it.
func (v *Verifier) writeRecord(rc recordContext, m *Model, blobs map[string]string, signed map[string][]string, verdicts map[string]string) {
	if rc.bundle != nil && writeFileAtomic(v.signaturePath(rc.repo, rc.commit), rc.bundle) != nil {
		return
	}
	if v.recordKey == nil {
		return
	}
	rec := verificationRecord{Version: recordVersion, Repo: rc.repo, Commit: rc.commit, Endpoint: rc.endpoint,
		Policy: v.policyDigest, Build: gateBuild(), Bundle: bundleDigest(rc.bundle), Manifest: rc.manifestDigest()}
	for _, f := range m.files {
		rec.Files = append(rec.Files, recordedFile{Name: f.Name, Blob: blobs[f.Name], BlobPath: f.path, SHA256: f.SHA256,
			Signed: signed[f.Name], Size: f.Size, Format: f.Format, Verdict: verdicts[f.Name],
			Stamp: toStampRecord(f.stamp)})
	}
	_ = v.saveRecord(&rec)
}

// saveRecord writes a record into the cache, atomically, with its MAC.
func (v *Verifier) saveRecord(rec *verificationRecord) error {
	payload, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	data, err := json.Marshal(recordFile{MAC: hex.EncodeToString(v.recordMAC(payload)), Record: payload})
	if err != nil {
		return err
	}
	return writeFileAtomic(v.recordPath(rec.Repo, rec.Commit), data)
}

// recordFile is a record as stored: the record's JSON and its HMAC-SHA256 under the record key.
type recordFile struct {
	MAC    string          `json:"mac"`
	Record json.RawMessage `json:"record"`
	// Version is set only in records of version 1, which had no MAC and no envelope.
	Version int `json:"version,omitempty"`
}

// recordMACContext separates the MAC of a record from any other use of the key.
const recordMACContext = "modelverify verification record\x00"

func (v *Verifier) recordMAC(payload []byte) []byte {
	h := hmac.New(sha256.New, v.recordKey)
	h.Write([]byte(recordMACContext))
	h.Write(payload)
	return h.Sum(nil)
}

// readRecord reads the record of repo@commit. It returns the record when it is authentic and
// of this version, for this repository and commit; otherwise nil and why: none (no record),
// RecordUnauthenticated (its MAC does not verify under the key: edited, or written under
// another key), or RecordStale (an authentic record of another version or commit).
func (v *Verifier) readRecord(repoID, commit string) (*verificationRecord, RecordUse) {
	data, err := readBounded(v.recordPath(repoID, commit), maxRecordFileSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ""
	}
	if err != nil {
		return nil, RecordUnauthenticated
	}
	return v.parseRecord(data, repoID, commit)
}

// parseRecord authenticates and decodes a record file's bytes, which anyone who can write the
// cache controls; readRecord says what it returns.
func (v *Verifier) parseRecord(data []byte, repoID, commit string) (*verificationRecord, RecordUse) {
	var rf recordFile
	if json.Unmarshal(data, &rf) != nil {
		return nil, RecordUnauthenticated
	}
	if rf.MAC == "" && rf.Version > 0 && rf.Version < recordVersion {
		return nil, RecordStale // written before records were authenticated
	}
	mac, err := hex.DecodeString(rf.MAC)
	if err != nil || !hmac.Equal(mac, v.recordMAC(rf.Record)) {
		return nil, RecordUnauthenticated
	}
	var rec verificationRecord
	if err := json.Unmarshal(rf.Record, &rec); err != nil || rec.Version != recordVersion || rec.Repo != repoID || rec.Commit != commit {
		return nil, RecordStale
	}
	return &rec, RecordReused
}

// recordTempPrefix starts the name of a record's temporary file (writeFileAtomic), and
// indexScratchPrefix that of the folder the index check links staged files into (checkSet).
const (
	recordTempPrefix   = ".tmp-"
	indexScratchPrefix = ".modelverify-index-"
)

// A kill -9 in the instant a record is written leaves its temporary file, and one during the
// index check leaves the scratch folder. They are the gate's own and removed on a later run,
// once older than these bounds: far past the milliseconds a record's write takes and the time
// an index check of the largest model takes, so that a concurrent verification's are never
// removed under it (the cache may be shared by processes that cannot see each other's locks).
const (
	staleRecordTemp   = 10 * time.Minute
	staleIndexScratch = time.Hour
)

// removeLeftovers removes stale leftovers of killed verifications: the repository's record
// temporaries and the cache's index scratch folders. Failures are ignored: a leftover that
// stays is harmless (nothing reads these names), and the next run tries again.
func (v *Verifier) removeLeftovers(repoID string) {
	now := v.cfg.now()
	cacheDir := v.client.Cache().Dir
	removeStale(filepath.Dir(v.recordPath(repoID, "any")), recordTempPrefix, now.Add(-staleRecordTemp))
	removeStale(cacheDir, indexScratchPrefix, now.Add(-staleIndexScratch))
}

// removeStale removes dir's entries whose names start with prefix and that were last modified
// before cutoff.
func removeStale(dir, prefix string, cutoff time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if info, err := e.Info(); err == nil && info.ModTime().Before(cutoff) {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), recordTempPrefix+"*")
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
// still the one that was verified, or nil when it must be verified afresh, and notes in the
// audit record what became of the record. Problems the content rules find are reported
// through d, as for a fresh check.
func (v *Verifier) reuse(d *decision, rc recordContext, files []hub.TreeEntry) (*Model, error) {
	m, use, err := v.reuseRecord(d, rc, files)
	if err == nil {
		d.rec.VerificationRecord = use
	}
	return m, err
}

func (v *Verifier) reuseRecord(d *decision, rc recordContext, files []hub.TreeEntry) (*Model, RecordUse, error) {
	repoID, commit := rc.repo, rc.commit
	rec, use := v.boundRecord(rc)
	if rec == nil {
		return nil, use, nil
	}
	if len(rec.Files) != len(files) {
		return nil, RecordStale, nil
	}
	byName := make(map[string]recordedFile, len(rec.Files))
	for _, f := range rec.Files {
		byName[f.Name] = f
	}
	snapshot := v.client.Cache().SnapshotDir(repoID, commit)
	m := &Model{dir: snapshot, byName: map[string]int{}}
	signedByPath := resourcesByPath(rc.signed) // once: a lookup per file would be quadratic
	for _, e := range files {
		rf, ok := byName[e.Path]
		if !ok || rf.Blob != e.BlobName() || rf.Size != e.Size {
			return nil, RecordStale, nil
		}
		// What the file was verified with must be what is signed now, for every file: the
		// tree's LFS sha256 covers only LFS files under whole-file SHA-256 manifests.
		if rc.signed != nil && !slices.Equal(rf.Signed, formatDigests(signedByPath[e.Path])) {
			return nil, RecordStale, nil
		}
		target, err := filepath.EvalSymlinks(filepath.Join(snapshot, filepath.FromSlash(e.Path)))
		if err != nil || target != rf.BlobPath {
			return nil, RecordStale, nil
		}
		st, err := stampPath(rf.BlobPath)
		if err != nil || st != rf.Stamp.stamp() {
			return nil, RecordStale, nil
		}
		m.byName[e.Path] = len(m.files)
		m.files = append(m.files, File{Name: e.Path, Size: rf.Size, SHA256: rf.SHA256, Format: rf.Format, path: rf.BlobPath, stamp: st})
	}
	if ok, err := v.judgeRecorded(d, rec); !ok || err != nil {
		return nil, RecordStale, err
	}
	slices.SortFunc(m.files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	for i, f := range m.files {
		m.byName[f.Name] = i
	}
	return m, RecordReused, nil
}

// boundRecord reads the authentic record of rc's repository and commit and returns it when it
// is bound to what rc is now: the same endpoint, policy, build, signature bundle and signed
// manifest. Otherwise nil and why (readRecord's reasons, or RecordStale).
func (v *Verifier) boundRecord(rc recordContext) (*verificationRecord, RecordUse) {
	rec, use := v.readRecord(rc.repo, rc.commit)
	if rec == nil {
		return nil, use
	}
	if rec.Endpoint != rc.endpoint || rec.Policy != v.policyDigest || rec.Build != gateBuild() ||
		rec.Bundle != bundleDigest(rc.bundle) || rec.Manifest != rc.manifestDigest() {
		return nil, RecordStale
	}
	return rec, RecordReused
}

// judgeRecorded applies the content rules to the recorded scans again (a record is bound to
// the policy, so they find what they found then; this keeps a record from ever standing in for
// a judgement). It reports problems through d, and false for a verdict it cannot read.
func (v *Verifier) judgeRecorded(d *decision, rec *verificationRecord) (bool, error) {
	for _, rf := range rec.Files {
		verdict, ok := parseVerdict(rf.Verdict)
		if !ok {
			return false, nil
		}
		rep := &scan.Report{Format: scan.Format(rf.Format), Verdict: verdict}
		for _, p := range judgeContent(&v.policy.Content, rf.Name, rep) {
			if err := d.fail(p, nil); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// reuseOCI returns the OCI model published at dir by an earlier verification of rc's digest,
// or nil when it must be pulled again, and notes in the audit record what became of the
// record. It is the Hub's re-check without a tree to list: a digest names its files for good,
// so the authentic record, bound to this policy and build, says which files dir must hold;
// dir must hold exactly those, as regular files, each with the inode, size, modification and
// change time recorded when it was verified. Anything else (a file edited, added, removed or
// replaced) means a full pull, which republishes the model from the registry's bytes.
func (v *Verifier) reuseOCI(d *decision, rc recordContext, dir string) (*Model, error) {
	m, use, err := v.reuseOCIRecord(d, rc, dir)
	if err == nil {
		d.rec.VerificationRecord = use
	}
	return m, err
}

func (v *Verifier) reuseOCIRecord(d *decision, rc recordContext, dir string) (*Model, RecordUse, error) {
	rec, use := v.boundRecord(rc)
	if rec == nil {
		return nil, use, nil
	}
	if len(rec.Files) == 0 {
		return nil, RecordStale, nil
	}
	m := &Model{dir: dir, byName: make(map[string]int, len(rec.Files))}
	for _, rf := range rec.Files {
		path := filepath.Join(dir, filepath.FromSlash(rf.Name))
		if _, dup := m.byName[rf.Name]; dup || rf.BlobPath != path || !pathWithin(dir, path) {
			return nil, RecordStale, nil
		}
		st, err := stampPath(path)
		if err != nil || st != rf.Stamp.stamp() || rf.Size != st.size {
			return nil, RecordStale, nil
		}
		m.byName[rf.Name] = len(m.files)
		m.files = append(m.files, File{Name: rf.Name, Size: rf.Size, SHA256: rf.SHA256, Format: rf.Format, path: path, stamp: st})
	}
	if !holdsOnly(dir, m.byName) {
		return nil, RecordStale, nil
	}
	if ok, err := v.judgeRecorded(d, rec); !ok || err != nil {
		return nil, RecordStale, err
	}
	return m, RecordReused, nil
}

// holdsOnly reports whether dir holds the named regular files and nothing else but the
// directories on their way: a file added beside a model would be loaded with it.
func holdsOnly(dir string, names map[string]int) bool {
	n := 0
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if _, ok := names[filepath.ToSlash(rel)]; !ok || !de.Type().IsRegular() {
			return errors.New("not a verified file")
		}
		n++
		return nil
	})
	return err == nil && n == len(names)
}

// RecordKeyEnv names the environment variable that may give the record key file (see
// RecordRules.KeyFile).
const RecordKeyEnv = "MODELVERIFY_RECORD_KEY_FILE"

// minRecordKeyLen is the shortest record key accepted: a shorter one would be weaker than the
// HMAC-SHA256 it keys.
const minRecordKeyLen = 32

// loadRecordKey finds the key verification records are authenticated with, creating it on
// first use: the option, else the environment, else the policy's records.keyFile, else
// modelverify/record.key under the user's configuration directory. A key the service named
// that cannot be read or made is an error. The default one may be out of reach (a read-only
// file system or no home directory, as in many Kubernetes pods, KServe's among them): then it
// returns a nil key and why, and records are neither written nor trusted, so every load is
// verified in full, which is slower but never less safe.
func (v *Verifier) loadRecordKey() (key []byte, unavailable string, err error) {
	path, _, named := v.cfg.recordKeyPath(v.policy)
	if !named {
		if !v.cfg.environment {
			// The default key's place comes from XDG_CONFIG_HOME or HOME.
			return nil, "WithEnvironment(false) and no record key named (WithRecordKeyFile or records.keyFile)", nil
		}
		dir, derr := os.UserConfigDir()
		if derr != nil {
			return nil, "no configuration directory for the default record key: " + derr.Error(), nil
		}
		path = filepath.Join(dir, "modelverify", "record.key")
		if derr := os.MkdirAll(filepath.Dir(path), 0o700); derr != nil {
			return nil, "the default record key cannot be made: " + derr.Error(), nil
		}
	}
	key, err = readOrCreateRecordKey(path, v.client.Cache().Dir)
	if err != nil && !named {
		return nil, "the default record key cannot be used: " + err.Error(), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("record key: %w", err)
	}
	return key, "", nil
}

// readOrCreateRecordKey reads the key at path, making it first if there is none. Several
// processes may start at once: the key is written aside and linked into place, so none ever
// reads a half-written key, and the first one made is the one all use.
func readOrCreateRecordKey(path, cacheDir string) ([]byte, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if cache, err := filepath.Abs(cacheDir); err == nil && pathWithin(cache, abs) {
		return nil, fmt.Errorf("%s lies inside the cache %s: whoever can write the cache could read it; keep it elsewhere", abs, cache)
	}
	key, err := readRecordKey(abs)
	if errors.Is(err, os.ErrNotExist) {
		if err := createRecordKey(abs); err != nil {
			return nil, err
		}
		key, err = readRecordKey(abs)
	}
	return key, err
}

// readRecordKey reads the key file at abs and checks that it is long enough.
func readRecordKey(abs string) ([]byte, error) {
	data, err := readBounded(abs, 4096)
	if err != nil {
		return nil, err
	}
	key := bytes.TrimSpace(data)
	if len(key) < minRecordKeyLen {
		return nil, fmt.Errorf("%s holds %d bytes; a record key needs at least %d (make one with: openssl rand -hex 32)", abs, len(key), minRecordKeyLen)
	}
	return key, nil
}

func createRecordKey(path string) error {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".record-key-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(raw[:]) + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

// pathWithin reports whether path is dir or lies under it; both are absolute and clean.
func pathWithin(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// formatDigests writes the digests the signed manifest gives a file, in the form verifiedDigests
// records what its bytes hashed to: "resource algorithm:hex", sorted.
func formatDigests(rs []manifest.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name + " " + r.Algorithm + ":" + r.Hex()
	}
	slices.Sort(out)
	return out
}

// policyDigest is the hex SHA-256 of the policy as a Verifier enforces it: the canonical JSON
// of the loaded document (defaults applied, paths resolved, mode included), then the content
// of every key, certificate and trust root file it names, which the document names only by
// path. A verification record made under another policy is not reused.
func policyDigest(p *Policy) (string, error) {
	doc, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "modelverify policy\n%d\n", len(doc))
	h.Write(doc)
	var files []string
	for i := range p.Publishers {
		pub := &p.Publishers[i]
		files = append(files, pub.TrustRoot)
		for _, id := range pub.Identities {
			if id.PublicKey != nil {
				files = append(files, id.PublicKey.Path)
			}
			if id.Certificate != nil {
				for _, r := range id.Certificate.Roots {
					files = append(files, r.Path)
				}
			}
		}
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		data, err := readBounded(f, maxTrustRootLen)
		if err != nil {
			return "", err
		}
		s := sha256.Sum256(data)
		fmt.Fprintf(h, "%s\x00%x\n", f, s)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// gateBuild names the code that verified: this module's version and checksum from the
// binary's build information (or the VCS revision of a development build). A record made by
// another build is not reused, because its scanner may have judged the files differently.
var gateBuild = sync.OnceValue(func() string {
	const self = "github.com/echelongraph/go-modelverify"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	mod := &bi.Main
	for _, d := range bi.Deps {
		if d.Path == self {
			mod = d
		}
	}
	if mod.Replace != nil {
		mod = mod.Replace
	}
	out := mod.Path + "@" + mod.Version + " " + mod.Sum
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			out += " " + s.Key + "=" + s.Value
		}
	}
	return out
})

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
