package modelverify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/internal/scan"
	"github.com/echelongraph/go-modelverify/manifest"
	"golang.org/x/sync/singleflight"
)

// maxSignatureSize bounds the signature file read from the Hub. Real OMS bundles are a few KiB
// plus about 150 bytes per file; 64 MiB covers a manifest of several hundred thousand shards.
const maxSignatureSize = 64 << 20

// Verifier is the load gate. It holds a validated policy and the Hub client for the policy's
// endpoint, and decides, model by model, whether a model may be loaded. It is safe for
// concurrent use; concurrent Verify calls for the same reference share one verification.
type Verifier struct {
	policy      *Policy
	cfg         config
	client      *hub.Client
	endpointURL string
	// endpointSource says where endpointURL came from, for an endpoint-not-allowed refusal.
	endpointSource string
	endpoint       *Endpoint // nil when the configured endpoint is not one the policy approves
	// policyDigest binds verification records to the policy that made them (policyDigest).
	policyDigest string
	// recordKey authenticates verification records; nil when they are not used.
	recordKey []byte
	signers   map[string]*signers
	sink      Sink
	group     singleflight.Group
	closeOnce sync.Once
	// oci is the OCI side (verify_oci.go): the registry client and the cosign verifiers.
	oci ociState
}

// NewVerifier returns a Verifier for the policy. It runs CheckPolicy's checks first, and builds
// every publisher's signature verifiers up front, so that a key, certificate, trust root, audit
// log or record key the policy names but that cannot be used is an error now rather than a
// refusal later. It opens the audit log and, the first time, creates the record key.
//
// Unless WithEnvironment(false) is given, it reads these environment variables, as
// huggingface_hub does (an option given in code always wins over the variable):
//   - HF_ENDPOINT: the Hub to fetch from (WithEndpoint), default https://huggingface.co;
//   - HF_HOME, else $XDG_CACHE_HOME/huggingface, else $HOME/.cache/huggingface: where the
//     token file and the cache are by default;
//   - HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file HF_TOKEN_PATH (default
//     $HF_HOME/token): the token sent to the endpoint, and only to approved endpoints;
//   - HF_HUB_CACHE (or HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub: the cache (WithCacheDir);
//   - HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE): offline mode (hub.WithOffline);
//   - MODELVERIFY_RECORD_KEY_FILE: the record key (WithRecordKeyFile), else the policy's
//     records.keyFile, else modelverify/record.key under $XDG_CONFIG_HOME, else $HOME/.config;
//   - HTTPS_PROXY, HTTP_PROXY and NO_PROXY, through Go's default transport.
//
// In the HF_* paths, a leading "~" and any $VARIABLE are expanded from the environment too.
func NewVerifier(p *Policy, opts ...Option) (*Verifier, error) {
	cfg := newConfig(opts)
	pre, err := preflight(p, cfg)
	if err != nil {
		return nil, err
	}
	v := &Verifier{policy: p, cfg: cfg, signers: pre.signers}
	if v.policyDigest, err = policyDigest(p); err != nil {
		return nil, fmt.Errorf("modelverify: policy: %w", err)
	}
	if v.cfg.now == nil {
		v.cfg.now = time.Now
	}
	if v.cfg.logger == nil {
		v.cfg.logger = slog.Default()
	}
	hubOpts := pre.hubOpts
	v.endpointURL = pre.probe.Endpoint()
	v.endpointSource = cfg.endpointSource(v.endpointURL)
	if ep, ok := p.Endpoint(v.endpointURL); ok {
		v.endpoint = ep
		// Downloads may be redirected only to the CDN hosts the policy lists for this endpoint.
		hubOpts = append(hubOpts, hub.WithAllowedRedirectHosts(ep.CDNHosts...))
	} else {
		// An endpoint the policy does not approve (reachable only in audit mode) gets no
		// credentials: not HF_TOKEN, not the token file, not even a token the caller passed,
		// which is why this comes after the caller's options. Audit mode records what enforce
		// would refuse; it must not hand the service's token to whoever runs that endpoint.
		hubOpts = append(hubOpts, hub.WithAllowedRedirectHosts(), hub.WithToken(""))
	}
	if v.cfg.progress != nil {
		progress := v.cfg.progress
		hubOpts = append(hubOpts, hub.WithProgress(func(hp hub.Progress) {
			progress(Progress{Ref: hp.Repo, Step: "download", File: hp.Path, Bytes: hp.Bytes, Size: hp.Size,
				State: hp.State.String(), Err: hp.Err})
		}))
	}
	if v.client, err = hub.NewClient(hubOpts...); err != nil {
		return nil, fmt.Errorf("modelverify: %w", err)
	}

	if p.Records.Recheck != RecheckFull {
		key, unavailable, err := v.loadRecordKey()
		if err != nil {
			return nil, fmt.Errorf("modelverify: %w", err)
		}
		if key == nil {
			v.cfg.logger.Warn("modelverify: verification records are off, so every load is verified in full; set "+
				RecordKeyEnv+" or the policy's records.keyFile to a key outside the cache", "reason", unavailable)
		}
		v.recordKey = key
	}

	if v.cfg.sinkSet {
		v.sink = v.cfg.sink
	} else if v.sink, err = OpenAuditSink(p.Audit, v.cfg.logger); err != nil {
		return nil, fmt.Errorf("modelverify: audit: %w", err)
	}
	return v, nil
}

// Close closes the audit sink.
func (v *Verifier) Close() error {
	var err error
	v.closeOnce.Do(func() {
		if v.sink != nil {
			err = v.sink.Close()
		}
	})
	return err
}

// Policy returns the policy the Verifier enforces.
func (v *Verifier) Policy() *Policy { return v.policy }

// Endpoint returns the Hub the Verifier fetches from.
func (v *Verifier) Endpoint() string { return v.endpointURL }

// CacheDir returns the Hugging Face cache verified snapshots are published into.
func (v *Verifier) CacheDir() string { return v.client.Cache().Dir }

// Verify decides whether the model ref names ("org/name", "org/name@rev", "hf://org/name@rev")
// may be loaded, and if so returns it. The path, every step of which must pass:
//
//  1. the policy: the endpoint is approved, a publisher claims the namespace, the revision is
//     pinned if the publisher requires it, the Hub marks the organisation verified if required;
//  2. the Hub: the revision resolves to a commit, and the file tree at that commit is listed;
//  3. the signature file at that commit verifies against one of the publisher's identities,
//     and its manifest is well formed (a publisher that needs no signature skips this, and the
//     Hub's own digests stand in for the manifest: integrity is proved, authenticity is not);
//  4. the signed manifest and the tree agree both ways: every signed file is in the tree, every
//     file in the tree (except the signature and ignored paths) is signed, and where the tree
//     gives an LFS sha256 it is the signed one;
//  5. each file is downloaded into staging, checked against the Hub's digest while it streams,
//     then against the signed digest and the policy's content rules (format, pickle scan);
//  6. only then is every file published into the cache's snapshot at once.
//
// On any failure nothing is published, staging is removed, the decision is written to the audit
// log, and the error is a *Refusal that errors.Is matches against the reasons (ErrUnsigned,
// ErrDigestMismatch, ...). In audit mode, failures of steps 1, 3, 4 and 5 are recorded and the
// model is allowed; failures to reach the Hub or to download still refuse. Those that may pass
// later (the network, the Hub's 5xx, a stall, a full disk, WithTimeout's deadline) also match
// ErrTemporary, and keep what was downloaded so far to be resumed (and re-hashed) next time.
//
// A model already in the cache from an earlier verification is re-checked cheaply: the policy
// and the signature are checked again, the tree is listed again, each file's signed digests are
// compared with those it was verified with, and each file's inode, size and times with those
// recorded when it was verified; when anything differs, the model is verified in full (files
// already in the cache are hashed again rather than downloaded). Only a decision that found no
// problem leaves a record, and a record counts only under the same policy (mode included) and
// the same build of the gate. What is trusted, exactly: a record whose HMAC-SHA256 verifies
// under the record key, which is kept outside the cache (RecordRules.KeyFile), so that whoever
// can write the cache but not read the key can neither forge nor edit one (such a record is
// noted in the audit log as unauthenticated and the model verified in full); and that a file
// whose inode, size, modification and change time are those recorded still holds the bytes
// that were verified, as make and git trust it. The service's own user, who can read the key,
// and root, who can reset a change time, are not guarded against: for them, the policy's
// records.recheck: full hashes and scans every file on every load. Without a record key (the
// default one out of reach, as on a read-only file system) every load is verified in full.
//
// An "oci://" reference is verified from its registry instead (see the package documentation
// and POLICY.md's registries section); WithRegistryOptions configures that client.
//
// Offline (HF_HUB_OFFLINE=1, or hub.WithOffline), the revision resolves from the cache's refs,
// the tree and the signature come from what was kept when the commit was last verified, and
// the model is allowed only if it is still exactly as verified; nothing is requested. A
// publisher that requires a verified organisation cannot be checked offline, and is refused.
func (v *Verifier) Verify(ctx context.Context, ref string) (*Model, error) {
	if isOCIRef(ref) {
		return v.verifyOCI(ctx, ref)
	}
	r, err := hub.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("modelverify: %w", err)
	}
	return v.shareVerification(ctx, v.endpointURL+" "+r.String(), func() (*Model, error) { return v.verify(ctx, ref, r) })
}

// shareVerification runs verify once for all concurrent callers with the same key.
func (v *Verifier) shareVerification(ctx context.Context, key string, verify func() (*Model, error)) (*Model, error) {
	for {
		ch := v.group.DoChan(key, func() (any, error) { return verify() })
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case res := <-ch:
			// A verification shared with a caller whose context ended fails with that
			// context's error; this caller's context is still live, so try again.
			if res.Shared && res.Err != nil && ctx.Err() == nil &&
				(errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, context.DeadlineExceeded)) {
				continue
			}
			if res.Err != nil {
				return nil, res.Err
			}
			return res.Val.(*Model), nil
		}
	}
}

// decision is one verification in progress: what has been found, and the audit record.
type decision struct {
	v        *Verifier
	enforce  bool
	ref      string
	commit   string
	problems []Problem
	rec      Record
	start    time.Time
}

func (v *Verifier) newDecision(ref string) *decision {
	return &decision{v: v, enforce: v.policy.Enforcing(), ref: ref, start: v.cfg.now(),
		rec: Record{Ref: ref, Verification: VerifiedNone}}
}

// fail records a problem. In enforce mode it returns the refusal to stop with; in audit mode
// it returns nil and the verification goes on.
func (d *decision) fail(p Problem, cause error) error {
	d.problems = append(d.problems, p)
	if d.enforce {
		return d.refusal(cause)
	}
	return nil
}

// fatal records a problem that stops the verification in any mode.
func (d *decision) fatal(p Problem, cause error) error {
	d.problems = append(d.problems, p)
	return d.refusal(cause)
}

func (d *decision) refusal(cause error) *Refusal {
	return &Refusal{Ref: d.ref, Commit: d.commit, Problems: slices.Clone(d.problems), Err: cause}
}

// finish writes the audit record for the outcome and returns the error to give the caller.
func (d *decision) finish(ctx context.Context, m *Model, err error) error {
	d.rec.Commit = d.commit
	d.rec.Duration = d.v.cfg.now().Sub(d.start)
	d.rec.Time = d.start
	switch {
	case err != nil:
		d.rec.Decision = DecisionRefused
		var r *Refusal
		if !errors.As(err, &r) {
			// Cancellation or an unexpected failure: still a decision not to load.
			r = asRefusal(err, d.ref, d.commit, ErrHub)
			err = r
		}
		d.rec.setRefusal(r)
	case len(d.problems) > 0:
		d.rec.Decision = DecisionAuditAllowed
		d.rec.setRefusal(d.refusal(nil))
	default:
		d.rec.Decision = DecisionAllowed
	}
	if m != nil {
		m.evidence.Decision = d.rec.Decision
		m.evidence.Problems = slices.Clone(d.problems)
		d.rec.Files = len(m.files)
		for _, f := range m.files {
			d.rec.Bytes += f.Size
		}
	}
	if d.v.sink != nil {
		// A decision that cannot be recorded is reported: the caller refuses the model.
		if werr := d.v.sink.Write(context.WithoutCancel(ctx), d.rec); werr != nil {
			if err == nil {
				// Allowed, but not on record: refused. A full or failing disk says nothing about
				// the model, so it is temporary; a refusal stays a refusal whatever the log did.
				return fmt.Errorf("modelverify: writing the audit record: %w", auditWriteFailure(werr))
			}
			return errors.Join(err, fmt.Errorf("modelverify: writing the audit record: %w", werr))
		}
	}
	return err
}

func (v *Verifier) verify(ctx context.Context, ref string, r hub.Reference) (*Model, error) {
	if v.cfg.timeout > 0 {
		// The deadline (WithTimeout) is the verification's own, so that it ends with a
		// decision on record even when several callers share it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, v.cfg.timeout, deadlineError{v.cfg.timeout})
		defer cancel()
	}
	d := v.newDecision(ref)
	d.rec.Repo, d.rec.Revision, d.rec.Endpoint = r.RepoID(), r.Rev(), v.endpointURL
	v.removeLeftovers(r.RepoID())
	m, err := v.run(ctx, d, r)
	// A verified model whose record could not be written is refused too: a load that is not
	// on record is what the audit log exists to prevent.
	if ferr := d.finish(ctx, m, err); ferr != nil {
		return nil, ferr
	}
	return m, nil
}

func (v *Verifier) run(ctx context.Context, d *decision, r hub.Reference) (*Model, error) {
	// 1. Policy.
	if v.endpoint == nil {
		if err := d.fail(Problem{Reason: ErrEndpointNotAllowed, Actual: v.endpointURL,
			Expected: strings.Join(v.endpointURLs(), ", "), Detail: v.endpointSource}, nil); err != nil {
			return nil, err
		}
	}
	pub, err := v.publisherFor(d, r, true)
	if err != nil {
		return nil, err
	}

	// 2. Resolve the revision and list the tree.
	v.progress(r, "resolve")
	commit, err := v.client.ResolveRevision(ctx, r)
	if err != nil {
		return nil, d.fatal(hubProblem(err, "resolving the revision"), err)
	}
	if !hub.IsCommit(commit) || (hub.IsCommit(r.Revision) && commit != r.Revision) {
		err := fmt.Errorf("the Hub resolved %q to %q", r.Rev(), commit)
		return nil, d.fatal(Problem{Reason: ErrHub, Expected: r.Revision, Actual: commit, Detail: err.Error()}, err)
	}
	d.commit = commit
	if pub != nil && pub.RequireVerifiedOrg {
		verified, err := v.client.OrganizationVerified(ctx, r.Namespace)
		if err != nil {
			return nil, d.fatal(hubProblem(err, "checking the organisation"), err)
		}
		if !verified {
			if err := d.fail(Problem{Reason: ErrUnverifiedOrg, Actual: r.Namespace}, nil); err != nil {
				return nil, err
			}
		}
	}
	tree, err := v.client.ListTree(ctx, r.RepoID(), d.commit)
	if err != nil {
		return nil, d.fatal(hubProblem(err, "listing the files"), err)
	}

	// 3. The signature.
	sigPath := manifest.DefaultSignatureFile
	var pubIgnores []string
	if pub != nil {
		sigPath = pub.SignaturePath()
		pubIgnores = pub.IgnorePaths
	}
	byPath := make(map[string]hub.TreeEntry, len(tree))
	for _, e := range tree {
		byPath[e.Path] = e
	}
	var signed *manifest.Manifest
	var result *manifest.Result
	var bundleBytes []byte
	if _, ok := byPath[sigPath]; ok && pub != nil {
		v.progress(r, "signature")
		bundle, err := v.readSignature(ctx, r.RepoID(), d.commit, sigPath)
		if err != nil {
			return nil, d.fatal(hubProblem(err, "fetching "+sigPath), err)
		}
		bundleBytes = bundle
		if result, err = v.verifySignature(ctx, d, pub, sigPath, bundle); err != nil {
			return nil, err
		}
		if result != nil {
			signed = result.Manifest
		}
	} else if pub == nil || pub.SignatureRequired() {
		if err := d.fail(Problem{Reason: ErrUnsigned, File: sigPath, Detail: "the repository has no signature file at this commit"}, nil); err != nil {
			return nil, err
		}
	}

	// 4. Cross-check the signed manifest with the tree, and choose what to download.
	ignores := append([]string{sigPath}, manifest.GitPaths...)
	ignores = append(ignores, pubIgnores...)
	if signed != nil {
		ignores = append(ignores, signed.Serialization.IgnorePaths...)
	}
	var files []hub.TreeEntry
	if signed != nil {
		files, err = v.crossCheck(d, signed, tree, byPath, ignores)
		if err != nil {
			return nil, err
		}
	} else {
		for _, e := range tree {
			if !ignoredPath(e.Path, ignores) {
				files = append(files, e)
			}
		}
	}
	if len(files) == 0 {
		// The OMS spec refuses a manifest with no resources; a model with nothing to load is
		// not a model, and would leave the caller a directory that does not exist.
		return nil, d.fatal(Problem{Reason: ErrMissingFile, Detail: "the model has no files to load"}, nil)
	}
	if err := v.checkLimits(d, files); err != nil {
		return nil, err
	}

	// A commit verified before, whose files are untouched since, needs no download. Only a
	// decision that has found nothing wrong so far may take the shortcut: one with problems
	// (in audit mode) checks every file afresh, so that its record of problems is complete.
	rc := recordContext{endpoint: v.endpointURL, repo: r.RepoID(), commit: d.commit, bundle: bundleBytes, signed: signed}
	if v.recordKey == nil {
		d.rec.VerificationRecord = RecordDisabled
	} else if len(d.problems) == 0 {
		m, err := v.reuse(d, rc, files)
		if err != nil {
			return nil, err
		}
		if m != nil {
			// A publication killed part way leaves temporary links that would read as extra files.
			_ = v.client.Cache().CleanSnapshot(ctx, r.RepoID(), d.commit)
			if err := checkSnapshotHoldsOnly(d, m.dir, m, ignores); err != nil {
				return nil, err
			}
			v.complete(d, r, pub, result, m)
			m.evidence.Cached = true
			return m, nil
		}
	}

	// 5. Download into staging and check every file before anything is published.
	checker := &stagedChecker{v: v, d: d, signed: signed, signedByPath: resourcesByPath(signed), files: map[string]*File{},
		verdicts: map[string]string{}, verified: map[string][]string{}}
	if v.cfg.progress != nil {
		var total int64
		for _, e := range files {
			total += e.Size
		}
		v.cfg.progress(Progress{Ref: r.String(), Step: "download", Total: total})
	}
	snap, err := v.client.Download(ctx, r.RepoID(), d.commit, files,
		hub.WithRef(r.Rev()), hub.WithStagedCheck(checker.check), hub.WithStagedSetCheck(checker.checkSet))
	if err != nil {
		var ref *Refusal
		if errors.As(err, &ref) {
			return nil, ref
		}
		return nil, d.fatal(hubProblem(err, "downloading"), err)
	}

	// 6. Published: build the model from what was checked.
	m := &Model{dir: snap.Dir, byName: map[string]int{}}
	for _, sf := range snap.Files {
		f := checker.files[sf.Path]
		if f == nil {
			return nil, d.fatal(Problem{Reason: ErrHub, File: sf.Path, Detail: "published without being checked"}, nil)
		}
		f.path = sf.BlobPath
		if f.stamp, err = stampPath(sf.BlobPath); err != nil {
			return nil, d.fatal(Problem{Reason: ErrFileChanged, File: sf.Path, Detail: err.Error()}, err)
		}
		m.byName[f.Name] = len(m.files)
		m.files = append(m.files, *f)
	}
	if err := checkSnapshotHoldsOnly(d, m.dir, m, ignores); err != nil {
		return nil, err
	}
	v.complete(d, r, pub, result, m)
	// Only a decision with no problem is worth reusing: a model allowed in audit mode despite
	// a problem must not come back allowed, from the cache, under enforce.
	if len(d.problems) == 0 {
		blobs := make(map[string]string, len(files))
		for _, e := range files {
			blobs[e.Path] = e.BlobName()
		}
		v.writeRecord(rc, m, blobs, checker.verified, checker.verdicts)
	} else if bundleBytes != nil {
		_ = writeFileAtomic(v.signaturePath(rc.repo, rc.commit), bundleBytes)
	}
	return m, nil
}

// publisherFor applies the policy's publisher rules to r: a publisher must claim the namespace,
// may be restricted to some endpoints (checked when fetching from one), and may require a
// pinned revision. The publisher is nil when none claims the namespace (in audit mode).
func (v *Verifier) publisherFor(d *decision, r hub.Reference, fetching bool) (*Publisher, error) {
	pub, perr := v.policy.Publisher(r.RepoID())
	if perr != nil {
		return nil, d.fail(Problem{Reason: ErrPublisherNotAllowed, Actual: r.RepoID(),
			Expected: "a repository in " + v.policy.claimedNamespaces(),
			Detail:   strings.TrimPrefix(firstLine(perr), ErrPublisherNotAllowed.Error()+": ")}, nil)
	}
	d.rec.Publisher = pub.Name
	if fetching && v.endpoint != nil && !pub.AllowsEndpoint(v.endpoint) {
		if err := d.fail(Problem{Reason: ErrEndpointNotAllowed, Actual: v.endpointURL,
			Expected: strings.Join(pub.Endpoints, ", "), Detail: "publisher " + pub.Name + " is restricted to other endpoints"}, nil); err != nil {
			return nil, err
		}
	}
	if pub.RequirePinnedRevision && !hub.IsCommit(r.Revision) {
		if err := d.fail(Problem{Reason: ErrUnpinnedRevision, Expected: "a 40-hex commit id", Actual: r.Rev()}, nil); err != nil {
			return nil, err
		}
	}
	return pub, nil
}

// verifySignature checks a signature file against the publisher's identities, and that it was
// made for the repository being verified (checkSignedFor). It returns the result, or nil and
// no error when the signature failed in audit mode.
func (v *Verifier) verifySignature(ctx context.Context, d *decision, pub *Publisher, sigPath string, bundle []byte) (*manifest.Result, error) {
	res, problem, err := v.signers[pub.Name].verify(ctx, bundle)
	switch {
	case err != nil && problem == nil:
		return nil, d.fatal(Problem{Reason: ErrSignature, File: sigPath, Detail: firstLine(err)}, err)
	case problem != nil:
		problem.File = sigPath
		return nil, d.fail(*problem, err)
	}
	if err := checkSignedFor(d, pub, d.rec.Repo, sigPath, res.Manifest); err != nil {
		return nil, err
	}
	return res, nil
}

// checkSignedFor binds a valid signature to the repository it is loaded from: a signature
// proves who signed a model, not which repository or which version it was meant for. The
// subject name and root digest go into the audit record whatever the outcome.
func checkSignedFor(d *decision, pub *Publisher, repoID, sigPath string, signed *manifest.Manifest) error {
	root := signed.RootDigest().String()
	d.rec.SubjectName, d.rec.ManifestDigest = signed.ModelName, root
	if pub.RequireSubjectName && !slices.Contains(subjectNames(repoID), signed.ModelName) {
		if err := d.fail(Problem{Reason: ErrSubjectMismatch, File: sigPath, Expected: strings.Join(subjectNames(repoID), " or "),
			Actual: signed.ModelName, Detail: "the signature is valid but was made for another model; " +
				"sign the model under the repository's name (model_signing names it after the model's directory)"}, nil); err != nil {
			return err
		}
	}
	if pins := pub.PinnedDigests(repoID); len(pins) > 0 && !slices.Contains(pins, root) {
		if err := d.fail(Problem{Reason: ErrManifestNotPinned, File: sigPath, Expected: strings.Join(pins, " or "), Actual: root,
			Detail: "the signature is valid but signs another version or model than the policy pins " +
				"(an older commit, or another repository's files); load the pinned commit, or pin this manifest"}, nil); err != nil {
			return err
		}
	}
	return nil
}

// crossCheck compares the signed manifest with the tree both ways and returns the files to
// download: exactly the signed ones.
func (v *Verifier) crossCheck(d *decision, signed *manifest.Manifest, tree []hub.TreeEntry, byPath map[string]hub.TreeEntry, ignores []string) ([]hub.TreeEntry, error) {
	signedFiles := signed.Files()
	if len(signedFiles) == 1 && signedFiles[0] == "." {
		return nil, d.fatal(Problem{Reason: ErrManifest, Detail: "the manifest describes a single-file model, not a repository"}, nil)
	}
	want := make(map[string]bool, len(signedFiles))
	signedByPath := resourcesByPath(signed)
	var files []hub.TreeEntry
	for _, f := range signedFiles {
		want[f] = true
		e, ok := byPath[f]
		if !ok {
			if err := d.fail(Problem{Reason: ErrMissingFile, File: f, Detail: "signed, but not in the repository at this commit"}, nil); err != nil {
				return nil, err
			}
			continue
		}
		if p := treeDisagrees(signed.Serialization, signedByPath[f], f, e); p != nil {
			if err := d.fail(*p, nil); err != nil {
				return nil, err
			}
		}
		files = append(files, e)
	}
	for _, e := range tree {
		if !want[e.Path] && !ignoredPath(e.Path, ignores) {
			if err := d.fail(Problem{Reason: ErrUnexpectedFile, File: e.Path, Detail: "in the repository, but not covered by the signature"}, nil); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// treeDisagrees compares what the tree says of a file with what the manifest signed, before
// anything is downloaded: the LFS sha256 for whole-file SHA-256 manifests, and the size for
// sharded ones (the last shard ends at the file's size).
func treeDisagrees(ser manifest.Serialization, rs []manifest.Resource, name string, e hub.TreeEntry) *Problem {
	switch {
	case ser.Method == manifest.MethodFiles && ser.HashType == manifest.SHA256 && e.LFS != nil && len(rs) == 1:
		if e.LFS.SHA256 != rs[0].Hex() {
			return &Problem{Reason: ErrDigestMismatch, File: name, Expected: "sha256:" + rs[0].Hex(),
				Actual: "sha256:" + e.LFS.SHA256, Detail: "the Hub's LFS digest differs from the signed one"}
		}
	case ser.Method == manifest.MethodShards:
		var end int64
		for _, r := range rs {
			if _, _, e2, ok := r.Shard(); ok && e2 > end {
				end = e2
			}
		}
		if end != e.Size {
			return &Problem{Reason: ErrDigestMismatch, File: name, Expected: fmt.Sprintf("%d bytes", end),
				Actual: fmt.Sprintf("%d bytes", e.Size), Detail: "the signed shards do not cover the file the Hub lists"}
		}
	}
	return nil
}

func (v *Verifier) checkLimits(d *decision, files []hub.TreeEntry) error {
	rules := &v.policy.Content
	if rules.MaxFiles > 0 && len(files) > rules.MaxFiles {
		if err := d.fail(Problem{Reason: ErrLimitExceeded, Expected: fmt.Sprintf("at most %d files", rules.MaxFiles),
			Actual: fmt.Sprintf("%d files", len(files))}, nil); err != nil {
			return err
		}
	}
	var total int64
	for _, e := range files {
		total += e.Size
		if rules.MaxFileSize > 0 && e.Size > int64(rules.MaxFileSize) {
			if err := d.fail(Problem{Reason: ErrLimitExceeded, File: e.Path, Expected: "at most " + rules.MaxFileSize.String(),
				Actual: ByteSize(e.Size).String()}, nil); err != nil {
				return err
			}
		}
	}
	if rules.MaxTotalSize > 0 && total > int64(rules.MaxTotalSize) {
		if err := d.fail(Problem{Reason: ErrLimitExceeded, Expected: "at most " + rules.MaxTotalSize.String() + " in all",
			Actual: ByteSize(total).String()}, nil); err != nil {
			return err
		}
	}
	return nil
}

// stagedChecker is the hook the Hub client calls with each file after it has streamed into
// staging and matched the Hub's digest, before anything is published.
type stagedChecker struct {
	v      *Verifier
	d      *decision
	signed *manifest.Manifest
	// signedByPath is signed's resources by file, looked up once per file: a linear
	// ResourcesFor per file made a pull quadratic in the file count.
	signedByPath map[string][]manifest.Resource
	mu           sync.Mutex
	files        map[string]*File
	verdicts     map[string]string
	// verified holds, for each file, the digests its bytes hashed to in the signed manifest's
	// terms (formatDigests), which the verification record keeps.
	verified map[string][]string
}

func (c *stagedChecker) check(ctx context.Context, sf hub.StagedFile) error {
	f := &File{Name: sf.Path, Size: sf.Size, SHA256: sf.SHA256.Encoded()}
	var problems []Problem
	var verified []string
	if c.signed != nil {
		got, p, err := checkSignedDigest(ctx, c.signed.Serialization, c.signedByPath[sf.Path], sf)
		if err != nil {
			return err
		}
		if p != nil {
			problems = append(problems, *p)
		}
		verified = formatDigests(got)
	}
	// Staging names blobs by digest: what a file names beside it is checked by checkSet.
	rep, err := scan.ScanFile(ctx, sf.LocalPath, append(scanOptions(&c.v.policy.Content, sf.Path), scan.WithFileAlone())...)
	if err != nil {
		return err
	}
	f.Format = string(rep.Format)
	if rep.Format == scan.FormatSafetensorsIndex {
		// Alone in staging, an index cannot find its shards; checkSet judges it once every
		// file is staged. Here only its format is judged.
		rep = &scan.Report{Format: rep.Format, Verdict: scan.Safe}
	}
	problems = append(problems, judgeContent(&c.v.policy.Content, sf.Path, rep)...)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.files[sf.Path] = f
	c.verdicts[sf.Path] = rep.Verdict.String()
	c.verified[sf.Path] = verified
	for _, p := range problems {
		if err := c.d.fail(p, nil); err != nil {
			return err
		}
	}
	return nil
}

// checkSet runs the checks that span files once every file is staged: each safetensors index
// against the shards it names, each ONNX model against its external-data files. The staged files are hard-linked into a scratch directory laid
// out as the model will be, since staging names blobs by digest, not by path.
func (c *stagedChecker) checkSet(ctx context.Context, staged []hub.StagedFile) error {
	var indexes, onnx []string
	for _, sf := range staged {
		if f := c.files[sf.Path]; f != nil && f.Format == string(scan.FormatSafetensorsIndex) {
			indexes = append(indexes, sf.Path)
		} else if f != nil && f.Format == string(scan.FormatONNX) {
			onnx = append(onnx, sf.Path) // its external data must be among the staged files
		}
	}
	if len(indexes) == 0 && len(onnx) == 0 {
		return nil
	}
	scratch, err := os.MkdirTemp(c.v.client.Cache().Dir, indexScratchPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	for _, sf := range staged {
		p := filepath.Join(scratch, filepath.FromSlash(sf.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Link(sf.LocalPath, p); err != nil {
			return err
		}
	}
	for _, name := range onnx {
		rep, err := scan.CheckONNXExternalData(ctx, scratch, filepath.FromSlash(name), scanOptions(&c.v.policy.Content, name)...)
		if err != nil {
			return err
		}
		if rep.Verdict != scan.Safe {
			if err := c.d.fail(unsafeProblem(name, rep), nil); err != nil {
				return err
			}
		}
	}
	for _, name := range indexes {
		rep, err := scan.CheckSafetensorsIndex(ctx, scratch, filepath.FromSlash(name))
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.verdicts[name] = rep.Verdict.String()
		c.mu.Unlock()
		if rep.Verdict != scan.Safe {
			if err := c.d.fail(unsafeProblem(name, rep), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// resourcesByPath is signed.ByFile(), or nil for a model that needs no signature.
func resourcesByPath(m *manifest.Manifest) map[string][]manifest.Resource {
	if m == nil {
		return nil
	}
	return m.ByFile()
}

// checkSignedDigest compares a staged file with the signed manifest, and returns what the file
// hashed to in the manifest's terms. For whole-file SHA-256 manifests the digest computed while
// the file streamed is used directly; otherwise the staged file is hashed as the manifest says.
func checkSignedDigest(ctx context.Context, ser manifest.Serialization, want []manifest.Resource, sf hub.StagedFile) ([]manifest.Resource, *Problem, error) {
	if ser.Method == manifest.MethodFiles && ser.HashType == manifest.SHA256 && len(want) == 1 {
		got := sf.SHA256.Encoded()
		d, err := hexBytes(got)
		if err != nil {
			return nil, nil, err
		}
		res := []manifest.Resource{{Name: sf.Path, Algorithm: manifest.SHA256, Digest: d}}
		if got != want[0].Hex() {
			return res, &Problem{Reason: ErrDigestMismatch, File: sf.Path, Expected: "sha256:" + want[0].Hex(), Actual: "sha256:" + got}, nil
		}
		return res, nil, nil
	}
	got, err := manifest.HashFile(ctx, sf.LocalPath, sf.Path, ser)
	if err != nil {
		return nil, nil, err
	}
	if len(got) != len(want) {
		return got, &Problem{Reason: ErrDigestMismatch, File: sf.Path, Expected: fmt.Sprintf("%d signed shards", len(want)),
			Actual: fmt.Sprintf("%d shards", len(got))}, nil
	}
	wantByName := make(map[string]manifest.Resource, len(want))
	for _, r := range want {
		wantByName[r.Name] = r
	}
	for _, g := range got {
		w, ok := wantByName[g.Name]
		if !ok || w.Hex() != g.Hex() {
			return got, &Problem{Reason: ErrDigestMismatch, File: g.Name, Expected: w.Algorithm + ":" + w.Hex(), Actual: g.Algorithm + ":" + g.Hex()}, nil
		}
	}
	return got, nil, nil
}

// complete gives a verified model its manifest (the signed one, or for an unsigned publisher
// one built from the digests its files were verified with) and its evidence.
func (v *Verifier) complete(d *decision, r hub.Reference, pub *Publisher, res *manifest.Result, m *Model) {
	if res != nil {
		m.manifest = res.Manifest
	} else {
		m.manifest = integrityManifest(r.RepoID(), m.files)
	}
	m.evidence = v.evidence(d, r, pub, res, m)
}

func (v *Verifier) evidence(d *decision, r hub.Reference, pub *Publisher, res *manifest.Result, m *Model) Evidence {
	ev := Evidence{
		Ref: d.ref, Repo: r.RepoID(), Revision: r.Rev(), Commit: d.commit, Endpoint: v.endpointURL,
		Verification: VerifiedIntegrity, ManifestDigest: m.manifest.RootDigest().String(),
		Digests: map[string]string{}, Formats: map[string]string{}, VerifiedAt: d.start,
	}
	if pub != nil {
		ev.Publisher = pub.Name
	}
	if res != nil {
		ev.Verification = VerifiedSignature
		ev.Signer = signerOf(res.Signer)
		ev.SignedAt = res.SignedAt
		ev.SubjectName = res.Manifest.ModelName
	}
	for _, f := range m.files {
		ev.Digests[f.Name] = "sha256:" + f.SHA256
		ev.Formats[f.Name] = f.Format
	}
	d.rec.Verification = ev.Verification
	d.rec.Signer, d.rec.SignerIssuer, d.rec.SignerExtensions = ev.Signer.Identity, ev.Signer.Issuer, maps.Clone(ev.Signer.Extensions)
	d.rec.ManifestDigest, d.rec.SubjectName = ev.ManifestDigest, ev.SubjectName
	return ev
}

func signerOf(s manifest.SignerInfo) Signer {
	out := Signer{Kind: string(s.Kind), KeyFingerprint: s.KeyFingerprint}
	switch s.Kind {
	case manifest.SignerSigstore:
		out.Identity, out.Issuer = s.Identity, s.OIDCIssuer
		out.Extensions = maps.Clone(s.Extensions)
	case manifest.SignerCertificate:
		out.Identity, out.Issuer = s.Subject, s.Issuer
	default:
		out.Identity = "key sha256:" + s.KeyFingerprint
	}
	return out
}

// integrityManifest describes an unsigned model by the digests its files were verified with
// (the Hub's), so that callers see the same shape whether or not it was signed.
func integrityManifest(repoID string, files []File) *manifest.Manifest {
	m := &manifest.Manifest{ModelName: repoID, Serialization: manifest.Serialization{Method: manifest.MethodFiles, HashType: manifest.SHA256}}
	for _, f := range files {
		d, _ := hexBytes(f.SHA256)
		m.Resources = append(m.Resources, manifest.Resource{Name: f.Name, Algorithm: manifest.SHA256, Digest: d})
	}
	manifest.SortResources(m.Resources)
	return m
}

// hubProblem turns a Hub failure into the problem to report: a refused redirect is a policy
// matter; anything else is the Hub's.
func hubProblem(err error, doing string) Problem {
	var de *hub.DigestError
	var fe *hub.FileError
	var re *hub.RedirectError
	if errors.As(err, &re) {
		// The hub passes the policy's cdnHosts as its allowed hosts, so they are what was expected,
		// and the fix is the one entry to add there.
		detail := doing + ": the Hub redirected to " + re.To
		host, _, _ := net.SplitHostPort(re.Host)
		for _, a := range re.Allowed {
			if strings.EqualFold(a, host) {
				detail += fmt.Sprintf("; %q without a port allows only ports 80 and 443", a)
			}
		}
		p := Problem{Reason: ErrRedirectNotAllowed, Expected: strings.Join(re.Allowed, ", "), Actual: re.Host,
			Detail: detail + fmt.Sprintf("; to allow it, add it to the policy: endpoints[].cdnHosts: [%q]", re.Host)}
		if errors.As(err, &fe) {
			p.File = fe.Path
		}
		return p
	}
	if errors.As(err, &de) {
		p := Problem{Reason: ErrDigestMismatch, Expected: de.Algorithm + ":" + de.Want, Actual: de.Algorithm + ":" + de.Got,
			Detail: "the download does not match the Hub's own digest"}
		if errors.As(err, &fe) {
			p.File = fe.Path
		}
		return p
	}
	p := Problem{Reason: ErrHub, Detail: doing + ": " + firstLine(err)}
	if errors.As(err, &fe) {
		p.File = fe.Path
	}
	return p
}

func (v *Verifier) endpointURLs() []string {
	var out []string
	for _, e := range v.policy.Endpoints {
		out = append(out, e.URL)
	}
	return out
}

func (v *Verifier) progress(r hub.Reference, step string) {
	if v.cfg.progress != nil {
		v.cfg.progress(Progress{Ref: r.String(), Step: step})
	}
}

// ignoredPath reports whether a repository path is, or lies under, one of the ignore paths.
func ignoredPath(p string, ignores []string) bool {
	for _, ig := range ignores {
		ig = strings.TrimSuffix(path.Clean(ig), "/")
		if p == ig || strings.HasPrefix(p, ig+"/") {
			return true
		}
	}
	return false
}
