package modelverify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/internal/scan"
	"github.com/echelongraph/go-modelverify/manifest"
	"golang.org/x/sync/errgroup"
)

// VerifyDir runs the load gate's checks on a model already on disk: a KServe volume, a copy
// another tool made, a cache snapshot. ref names the repository the directory claims to hold
// ("org/name", optionally "@commit"); it selects the publisher whose rules and identities apply.
//
// The signature file in dir must verify against one of the publisher's identities; every file
// in dir must be signed, and match its signed digest; every signed file must be there; symbolic
// links are refused unless the manifest allows them, and never followed out of dir; every
// file must pass the policy's content rules; and, since the caller loads from dir itself, no
// other file may be there, even one the signature's ignore list names: only the signature, git
// metadata and the publisher's ignorePaths may sit beside the verified files. A publisher that
// needs no signature gets only the content rules: nothing on disk can prove such a model's
// integrity, which the evidence records as VerifiedNone. The endpoint rules do not apply:
// nothing is fetched.
//
// What a stat can tell comes first, before any byte is read: the policy's maxFiles,
// maxFileSize and maxTotalSize, the files the signature does not cover, and (for a manifest in
// shards) a file whose size differs from what its signed shards cover. Such files are never
// read, not even in audit mode, where they are recorded and left out of the Model. The work
// is linear in the number of files. With WithProgress, the hashing is reported as the "check"
// step.
//
// A dir that does not exist, or is not a directory, is an I/O error, not a refusal: nothing
// was decided, and nothing is recorded. A refusal's Ref is ref as given.
func (v *Verifier) VerifyDir(ctx context.Context, dir, ref string) (*Model, error) {
	r, err := hub.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("modelverify: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("modelverify: %w", err)
	}
	// A directory that is not there is the caller's mistake, not a model with missing files:
	// it is an I/O error (errors.Is(err, fs.ErrNotExist)), and no decision is recorded.
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("modelverify: VerifyDir: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("modelverify: VerifyDir: %s is not a directory", abs)
	}
	d := v.newDecision(ref)
	d.rec.Repo, d.rec.Revision, d.rec.Dir = r.RepoID(), r.Revision, abs
	d.commit = r.Revision
	if !hub.IsCommit(d.commit) {
		d.commit = ""
	}
	m, err := v.verifyDir(ctx, d, abs, r)
	if ferr := d.finish(ctx, m, err); ferr != nil {
		return nil, ferr
	}
	return m, nil
}

func (v *Verifier) verifyDir(ctx context.Context, d *decision, dir string, r hub.Reference) (*Model, error) {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is not a directory", dir)
		}
		return nil, d.fatal(Problem{Reason: ErrMissingFile, File: dir, Detail: firstLine(err)}, err)
	}
	pub, err := v.publisherFor(d, r, false)
	if err != nil {
		return nil, err
	}
	sigPath := manifest.DefaultSignatureFile
	var pubIgnores []string
	if pub != nil {
		sigPath, pubIgnores = pub.SignaturePath(), pub.IgnorePaths
	}

	var signed *manifest.Manifest
	var result *manifest.Result
	bundle, err := readBounded(filepath.Join(dir, filepath.FromSlash(sigPath)), maxSignatureSize)
	switch {
	case err == nil && pub != nil:
		if result, err = v.verifySignature(ctx, d, pub, sigPath, bundle); err != nil {
			return nil, err
		}
		if result != nil {
			signed = result.Manifest
		}
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, d.fatal(Problem{Reason: ErrSignature, File: sigPath, Detail: firstLine(err)}, err)
	case pub == nil || pub.SignatureRequired():
		if err := d.fail(Problem{Reason: ErrUnsigned, File: sigPath, Detail: "the directory has no signature file"}, nil); err != nil {
			return nil, err
		}
	}

	// Everything a stat can tell comes before any byte is read, so that a directory padded
	// with something huge costs a stat, not a read: the policy's limits, and (when signed) the
	// files the signature does not cover. Only the signature, git metadata and the policy's own
	// ignore paths may sit beside the model unverified: the caller loads from dir itself, so a
	// file the signature's ignore list left out is still within reach of a loader. The
	// manifest's walk lists the files (listed, below), and each file's metadata is noted then,
	// before anything is hashed: a file that changes between now and the end of the checks is
	// caught below, and one that changes later is caught by Open.
	allowed := append([]string{sigPath}, manifest.GitPaths...)
	allowed = append(allowed, pubIgnores...)
	reported := map[string]bool{}
	in := &inspector{v: v}
	var listErr error
	listed := func(files []manifest.ListedFile, ignored []string) error {
		in.listed, listErr = v.listedFiles(d, dir, signed, files, ignored, allowed, reported)
		return listErr
	}

	// Hash the directory: as the signed manifest says (CheckDir reads only the signed files
	// whose size can be right), or (unsigned) with the defaults, so that the same walk refuses
	// links out of the directory and files that are not regular. Each file is stamped and
	// scanned on the handle it is hashed through.
	var actual *manifest.Manifest
	hashed := manifest.Options{IgnorePaths: pubIgnores, SignatureFile: sigPath, Progress: v.checkProgress(r), Inspect: in.inspect, Listed: listed}
	if signed != nil {
		actual, err = manifest.CheckDir(ctx, dir, signed, manifest.CheckOptions{IgnorePaths: hashed.IgnorePaths,
			SignatureFile: hashed.SignatureFile, Progress: hashed.Progress, Inspect: hashed.Inspect, Listed: hashed.Listed})
	} else {
		actual, err = manifest.FromDir(ctx, dir, hashed)
	}
	if listErr != nil {
		return nil, listErr // recorded by the decision already
	}
	listedAs := in.listed
	var diff *manifest.Diff
	var changed *Refusal
	switch {
	case errors.As(err, &changed):
		return nil, d.fatal(changed.Problems[0], changed.Err)
	case errors.As(err, &diff):
		if err := v.diffProblems(d, diff, reported); err != nil {
			return nil, err
		}
	case errors.Is(err, manifest.ErrSymlink) || errors.Is(err, manifest.ErrFileType):
		// A link out of the directory, a device, a FIFO: nothing a signature can cover.
		return nil, d.fatal(Problem{Reason: ErrUnexpectedFile, Detail: firstLine(err)}, err)
	case err != nil && signed == nil:
		return nil, d.fatal(Problem{Reason: ErrUnexpectedFile, Detail: firstLine(err)}, err)
	case err != nil:
		return nil, d.fatal(Problem{Reason: ErrManifest, Detail: firstLine(err)}, err)
	}

	// Build the model, and record what the content rules found. A file the hashing could not
	// inspect (in shards, or through a link) is opened again here. SHA-256 is hashed again
	// unless the manifest already holds whole-file SHA-256 digests.
	// A files manifest has one resource a file, in order: its names and resources are the
	// files' without grouping them (ByFile and Files each build a map of every file).
	var names []string
	var resourcesOf func(i int, name string) []manifest.Resource
	if actual.Serialization.Method == manifest.MethodFiles {
		names = make([]string, len(actual.Resources))
		for i, r := range actual.Resources {
			names[i] = r.Name
		}
		resourcesOf = func(i int, _ string) []manifest.Resource { return actual.Resources[i : i+1 : i+1] }
	} else {
		names = actual.Files()
		byFile := actual.ByFile()
		resourcesOf = func(_ int, name string) []manifest.Resource { return byFile[name] }
	}
	if len(names) == 0 {
		return nil, d.fatal(Problem{Reason: ErrMissingFile, File: dir, Detail: "the model has no files to load"}, nil)
	}
	files := make([]File, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	var mu sync.Mutex
	check := func(i int, name string) error {
		var f File
		var problems []Problem
		var err error
		lf := listedAs[name]
		switch {
		case lf == nil:
			return fmt.Errorf("%s was hashed but not listed", name)
		case lf.inspected:
			f, err = v.inspectedFile(gctx, name, lf.seen, actual.Serialization, resourcesOf(i, name))
			problems = lf.seen.problems
		default:
			f, problems, err = v.checkLocalFile(gctx, dir, name, actual.Serialization, resourcesOf(i, name), lf.stamp)
		}
		if err != nil {
			return err
		}
		files[i] = f
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			if err := d.fail(p, nil); err != nil {
				return err
			}
		}
		return nil
	}
	for i, name := range names {
		if lf := listedAs[name]; lf != nil && lf.inspected && signedSHA256(actual.Serialization, resourcesOf(i, name)) {
			// Inspected while hashed, and its SHA-256 is the signed digest: nothing to read,
			// and no goroutine to start for each of 100,000 files.
			if err := check(i, name); err != nil {
				g.Go(func() error { return err }) // stops the others, and Wait returns it
				break
			}
			continue
		}
		g.Go(func() error { return check(i, name) })
	}
	if err := g.Wait(); err != nil {
		var ref *Refusal
		switch {
		case errors.As(err, &ref) && ref.Ref == "":
			// A problem found by a worker, not yet recorded by the decision.
			return nil, d.fatal(ref.Problems[0], ref.Err)
		case errors.As(err, &ref):
			return nil, ref
		}
		return nil, d.fatal(Problem{Reason: ErrFileChanged, Detail: firstLine(err)}, err)
	}
	for _, f := range files {
		if f.Format == string(scan.FormatSafetensorsIndex) {
			rep, err := scan.CheckSafetensorsIndex(ctx, dir, filepath.FromSlash(f.Name))
			if err != nil {
				return nil, d.fatal(Problem{Reason: ErrMissingFile, File: f.Name, Detail: firstLine(err)}, err)
			}
			if rep.Verdict != scan.Safe {
				if err := d.fail(unsafeProblem(f.Name, rep), nil); err != nil {
					return nil, err
				}
			}
		}
	}

	m := &Model{dir: dir, files: files, byName: map[string]int{}}
	for i, f := range files {
		m.byName[f.Name] = i
	}
	v.complete(d, r, pub, result, m)
	m.evidence.Endpoint = ""
	if result == nil {
		// Nothing on disk proves an unsigned directory's integrity.
		m.evidence.Verification = VerifiedNone
		d.rec.Verification = VerifiedNone
	}
	return m, nil
}

// inspectedFile is the verified file that an inspection, made while the file was hashed,
// describes.
func (v *Verifier) inspectedFile(ctx context.Context, name string, seen inspection, ser manifest.Serialization, rs []manifest.Resource) (File, error) {
	f := File{Name: name, Size: seen.stamp.size, path: seen.path, stamp: seen.stamp, Format: seen.format}
	sum, err := fileSHA256(ctx, seen.path, name, ser, rs)
	f.SHA256 = sum
	return f, err
}

// signedSHA256 reports whether rs, a file's resources under ser, are its whole-file SHA-256.
func signedSHA256(ser manifest.Serialization, rs []manifest.Resource) bool {
	return ser.Method == manifest.MethodFiles && ser.HashType == manifest.SHA256 && len(rs) == 1
}

// fileSHA256 is the whole-file SHA-256 of a file the manifest describes with rs under ser:
// the signed digest itself when that is what the manifest holds, else hashed from path.
func fileSHA256(ctx context.Context, path, name string, ser manifest.Serialization, rs []manifest.Resource) (string, error) {
	if signedSHA256(ser, rs) {
		return rs[0].Hex(), nil
	}
	rs, err := manifest.HashFile(ctx, path, name, manifest.Serialization{Method: manifest.MethodFiles, HashType: manifest.SHA256})
	if err != nil {
		return "", err
	}
	return rs[0].Hex(), nil
}

// checkLocalFile stamps, scans and (for its SHA-256) hashes one file of a directory model that
// the hashing could not inspect, and records what Open will compare against. rs are the file's
// resources as hashed under ser. The stamp is that of the very file scanned, taken before it is
// read, so a change during the check is caught by Open.
func (v *Verifier) checkLocalFile(ctx context.Context, dir, name string, ser manifest.Serialization, rs []manifest.Resource, before fileStamp) (File, []Problem, error) {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if ser.AllowSymlinks {
		// A link the manifest allows is read, and opened later, at its target. Without that
		// permission the walk has refused every link, and a link put in place since opens a
		// file whose stamp is not the one noted before.
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return File{}, nil, err
		}
		p = real
	}
	fh, err := os.Open(p)
	if err != nil {
		return File{}, nil, err
	}
	defer fh.Close()
	st, err := stampOf(fh)
	if err != nil {
		return File{}, nil, err
	}
	if st != before {
		return File{}, nil, &Refusal{Problems: []Problem{{Reason: ErrFileChanged, File: name,
			Detail: fmt.Sprintf("changed while it was being verified: %s, was %s", st, before)}}}
	}
	f := File{Name: name, Size: st.size, path: p, stamp: st}
	if f.SHA256, err = fileSHA256(ctx, p, name, ser, rs); err != nil {
		return File{}, nil, err
	}
	rep, err := scanOpen(ctx, fh, p, name, st.size, scanOptions(&v.policy.Content, name))
	if err != nil {
		return File{}, nil, err
	}
	f.Format = string(rep.Format)
	return f, judgeContent(&v.policy.Content, name, rep), nil
}

// scanOpen scans the open file at p through r.
func scanOpen(ctx context.Context, r io.ReaderAt, p, name string, size int64, opts []scan.Option) (*scan.Report, error) {
	rep, err := scan.Scan(ctx, r, size, opts...)
	if err == nil && rep.Format == scan.FormatSafetensorsIndex {
		// ScanFile also checks an index against the shards beside it.
		rep, err = scan.ScanFile(ctx, p, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", name, err)
	}
	return rep, nil
}

// inspection is what VerifyDir learnt of a file while it was open for hashing.
type inspection struct {
	path     string
	stamp    fileStamp
	format   string
	problems []Problem
}

// inspector stamps and scans each file on the handle manifest hashes it through, before it is
// read, so that a small file costs one open and one read. A file whose stamp differs from the
// one noted before hashing began has changed, and stops the check.
//
// Each file's inspection goes to its own listedFile, which no other worker touches (a file is
// hashed once), and which is read only after the hashing has ended: no lock, and no map
// growing while the workers wait on it.
type inspector struct {
	v      *Verifier
	listed map[string]*listedFile
}

// listedFile is what VerifyDir knows of a file the walk listed: its stamp, noted then, and
// (once it has been hashed) what the inspector found.
type listedFile struct {
	stamp     fileStamp
	inspected bool
	seen      inspection
}

func (in *inspector) inspect(ctx context.Context, name string, f *os.File, r io.ReaderAt) error {
	lf := in.listed[name]
	if lf == nil {
		return fmt.Errorf("%s was hashed but not listed", name)
	}
	st, err := fstamp(f)
	if err != nil {
		return err
	}
	if st != lf.stamp {
		return &Refusal{Problems: []Problem{{Reason: ErrFileChanged, File: name,
			Detail: fmt.Sprintf("changed while it was being verified: %s, was %s", st, lf.stamp)}}}
	}
	rep, err := scanOpen(ctx, r, f.Name(), name, st.size, scanOptions(&in.v.policy.Content, name))
	if err != nil {
		return err
	}
	lf.seen = inspection{path: f.Name(), stamp: st, format: string(rep.Format), problems: judgeContent(&in.v.policy.Content, name, rep)}
	lf.inspected = true
	return nil
}

// fstamp is stampOf without the FileInfo that os.File.Stat allocates, for the inspector,
// which stamps every file hashed.
func fstamp(f *os.File) (fileStamp, error) {
	var st syscall.Stat_t
	for {
		err := syscall.Fstat(int(f.Fd()), &st)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fileStamp{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
		}
		return stampFromStat(&st), nil
	}
}

// diffProblems turns a manifest comparison into problems, one per file, leaving out the extra
// files already reported.
func (v *Verifier) diffProblems(d *decision, diff *manifest.Diff, reported map[string]bool) error {
	for _, f := range diff.Missing {
		if err := d.fail(Problem{Reason: ErrMissingFile, File: f, Detail: "signed, but not in the directory"}, nil); err != nil {
			return err
		}
	}
	for _, f := range diff.Extra {
		if reported[f] {
			continue
		}
		if err := d.fail(Problem{Reason: ErrUnexpectedFile, File: f, Detail: "in the directory, but not covered by the signature"}, nil); err != nil {
			return err
		}
	}
	for _, mm := range diff.Mismatched {
		if err := d.fail(Problem{Reason: ErrDigestMismatch, File: mm.Name, Expected: mm.Expected, Actual: mm.Actual}, nil); err != nil {
			return err
		}
	}
	return nil
}

// checkProgress reports VerifyDir's hashing as the "check" step: bytes hashed of the total the
// directory's files hold. It is nil when nobody asked for progress.
func (v *Verifier) checkProgress(r hub.Reference) func(done, total int64) {
	if v.cfg.progress == nil {
		return nil
	}
	ref := r.String()
	return func(done, total int64) {
		v.cfg.progress(Progress{Ref: ref, Step: "check", Bytes: done, Size: total})
	}
}

// listedFiles stamps the files the manifest's walk found, and checks what a stat can tell
// before any of them is read: the policy's limits and (when signed) the files the signature
// does not cover, which it notes in reported. Files under a path the walk ignored, but that
// are not allowed beside the model, are found here (without being read) so that they count
// and are refused too. It returns the files by name; an error is the decision's.
func (v *Verifier) listedFiles(d *decision, dir string, signed *manifest.Manifest, files []manifest.ListedFile, ignored, allowed []string, reported map[string]bool) (map[string]*listedFile, error) {
	before := make(map[string]*listedFile, len(files))
	entries := make([]listedFile, len(files))
	present := make([]hub.TreeEntry, 0, len(files))
	unsigned := map[string]bool{} // by the signature, when there is one
	for i, f := range files {
		st, err := stampFromInfo(f.Info)
		if err != nil {
			return nil, d.fatal(Problem{Reason: ErrFileChanged, File: f.Name, Detail: firstLine(err)}, err)
		}
		entries[i].stamp = st
		before[f.Name] = &entries[i]
		present = append(present, hub.TreeEntry{Path: f.Name, Size: st.size})
		if signed != nil && !f.Signed {
			unsigned[f.Name] = true
		}
	}
	var bySignedFile map[string][]manifest.Resource
	for _, ig := range ignored {
		if ignoredPath(ig, allowed) || !filepath.IsLocal(filepath.FromSlash(ig)) {
			continue // nothing under it may be refused, or not in dir
		}
		under, err := stampTree(dir, ig)
		if err != nil {
			return nil, d.fatal(Problem{Reason: ErrFileChanged, Detail: firstLine(err)}, err)
		}
		for name, st := range under {
			if ignoredPath(name, allowed) {
				continue
			}
			present = append(present, hub.TreeEntry{Path: name, Size: st.size})
			if signed == nil {
				continue
			}
			if bySignedFile == nil {
				bySignedFile = signed.ByFile()
			}
			if _, ok := bySignedFile[name]; !ok {
				unsigned[name] = true
			}
		}
	}
	byPath := func(a, b hub.TreeEntry) int { return strings.Compare(a.Path, b.Path) }
	if !slices.IsSortedFunc(present, byPath) { // the walk's order, unless a name holds a byte below '/'
		slices.SortFunc(present, byPath)
	}
	if err := v.checkLimits(d, present); err != nil {
		return nil, err
	}
	if signed != nil {
		for _, e := range present {
			if unsigned[e.Path] {
				reported[e.Path] = true
				if err := d.fail(Problem{Reason: ErrUnexpectedFile, File: e.Path,
					Detail: "in the directory but not covered by the signature; a loader could read it"}, nil); err != nil {
					return nil, err
				}
			}
		}
	}
	return before, nil
}

// stampTree records the metadata of every file under sub (a "/"-separated path in dir;
// through symbolic links), by slash-separated name relative to dir. A sub that is not there
// has no files.
func stampTree(dir, sub string) (map[string]fileStamp, error) {
	out := map[string]fileStamp{}
	err := filepath.WalkDir(filepath.Join(dir, filepath.FromSlash(sub)), func(p string, de os.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && de == nil {
			return nil
		}
		if err != nil || de.IsDir() {
			return err
		}
		st, err := stampPath(p)
		if err != nil {
			return nil // a dangling link or a vanished file: the manifest walk reports it
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = st
		return nil
	})
	return out, err
}
