package modelverify

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/echelongraph/go-modelverify/internal/scan"
	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/registry"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// ociStoreDir is the directory under the cache that verified OCI models are published into:
// <cache>/oci/<host>/<repository>/<algorithm>-<hex>/<model files>.
const ociStoreDir = "oci"

// WithRegistryOptions passes options to the OCI registry client (package registry): a Docker
// config file, a keychain, a transport, parallelism, retries, timeouts, the platform of an
// image index. The progress reporter is the Verifier's (WithProgress).
func WithRegistryOptions(opts ...registry.Option) Option {
	return func(c *config) { c.registryOptions = append(c.registryOptions, opts...) }
}

// ociProgressStates name the registry's layer states in Progress.State's words.
var ociProgressStates = map[registry.ProgressState]string{
	registry.ProgressStarted: "started", registry.ProgressBytes: "bytes",
	registry.ProgressRetry: "retrying", registry.ProgressDone: "verified",
}

// isOCIRef reports whether ref names a model in an OCI registry.
func isOCIRef(ref string) bool { return strings.HasPrefix(ref, registry.Scheme) }

// ociState is the Verifier's OCI side, made on the first oci:// reference: a policy without
// registries never builds it.
type ociState struct {
	once   sync.Once
	err    error
	client *registry.Client
	// anonymous is the client for a registry or repository the policy does not approve,
	// reachable only in audit mode: it sends no credentials, as the Hub path sends no token
	// to an unapproved endpoint.
	anonymous *registry.Client
	signers   map[string][]ociSigner
	// publishing holds a *sync.Mutex per store directory (publishOCI).
	publishing sync.Map
}

// ociSigner is one publisher identity as sigstore-go verifies a cosign signature with it.
type ociSigner struct {
	name     string // Identity.String(), for messages
	verifier registry.SignatureVerifier
	identity verify.PolicyOption
	// extensions are a Sigstore identity's Fulcio extension constraints, checked on the
	// certificate sigstore-go verified (it matches extensions only exactly).
	extensions *manifest.FulcioExtensions
	// fingerprint is a key identity's SHA-256 of its SubjectPublicKeyInfo.
	fingerprint string
	// certificate says the identity is a certificate identity: the signer is named by the
	// leaf certificate the signature carried.
	certificate bool
}

func (v *Verifier) ociInit() error {
	v.oci.once.Do(func() {
		opts := []registry.Option{}
		if !v.cfg.environment {
			opts = append(opts, registry.WithEnv(func(string) string { return "" }))
		}
		if v.cfg.progress != nil {
			progress := v.cfg.progress
			opts = append(opts, registry.WithProgress(func(p registry.Progress) {
				progress(Progress{Step: "download", File: "layer " + p.Digest, Bytes: p.Complete, Size: p.Total,
					State: ociProgressStates[p.State], Err: p.Err})
			}))
		}
		c, err := registry.NewClient(append(opts, v.cfg.registryOptions...)...)
		if err != nil {
			v.oci.err = fmt.Errorf("modelverify: %w", err)
			return
		}
		v.oci.client = c
		anon := append(append(opts, v.cfg.registryOptions...), registry.WithKeychain(authn.NewMultiKeychain()))
		if v.oci.anonymous, err = registry.NewClient(anon...); err != nil {
			v.oci.err = fmt.Errorf("modelverify: %w", err)
			return
		}
		v.oci.signers = map[string][]ociSigner{}
		for i := range v.policy.Publishers {
			pub := &v.policy.Publishers[i]
			if len(pub.OCI) == 0 {
				continue
			}
			for j, id := range pub.Identities {
				s, err := newOCISigner(pub, id)
				if err != nil {
					v.oci.err = fmt.Errorf("modelverify: publishers[%s].identities[%d]: %w", pub.Name, j, err)
					return
				}
				v.oci.signers[pub.Name] = append(v.oci.signers[pub.Name], s)
			}
		}
	})
	return v.oci.err
}

// newOCISigner maps a publisher identity onto sigstore-go: a key identity verifies with the
// key alone (cosign sign --key makes no log entry); a Sigstore identity with the publisher's
// trust root, requiring a transparency log entry and an observer timestamp as cosign verify
// does, and the SAN and issuer anchored as the Hub path anchors them; a certificate identity
// (cosign sign --key --certificate --certificate-chain) with the certificate the signature
// carries, judged by the Hub's certificate checks (CA, extended key usage, subject) at the
// time of verification, no log required, as for model_signing certificate signatures.
func newOCISigner(pub *Publisher, id Identity) (ociSigner, error) {
	s := ociSigner{name: id.String()}
	switch {
	case id.PublicKey != nil:
		pemBytes, err := id.PublicKey.Bytes()
		if err != nil {
			return s, err
		}
		if s.verifier, err = registry.NewKeyVerifier(pemBytes); err != nil {
			return s, err
		}
		pk, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
		if err != nil {
			return s, err
		}
		der, err := x509.MarshalPKIXPublicKey(pk)
		if err != nil {
			return s, err
		}
		sum := sha256.Sum256(der)
		s.fingerprint = hex.EncodeToString(sum[:])
		s.identity = verify.WithKey()
		return s, nil
	case id.Sigstore != nil:
		var trusted root.TrustedMaterial
		if pub.TrustRoot != "" {
			tc, err := manifest.LoadTrustConfig(pub.TrustRoot)
			if err != nil {
				return s, err
			}
			trusted = tc.TrustedRoot
		} else {
			tr, err := manifest.ProductionTrustedRoot()
			if err != nil {
				return s, err
			}
			trusted = tr
		}
		opts := []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1)}
		if len(trusted.CTLogs()) > 0 {
			opts = append(opts, verify.WithSignedCertificateTimestamps(1))
		}
		vr, err := verify.NewVerifier(trusted, opts...)
		if err != nil {
			return s, err
		}
		sg := id.Sigstore
		cid, err := verify.NewShortCertificateIdentity(sg.Issuer, anchored(sg.IssuerRegexp), sg.Identity, anchored(sg.IdentityRegexp))
		if err != nil {
			return s, err
		}
		s.verifier, s.identity, s.extensions = vr, verify.WithCertificateIdentity(cid), sg.Extensions
		return s, nil
	case id.Certificate != nil:
		// The same certificate verifier as for model_signing bundles on the Hub
		// (identityVerifier): its chain, usage and subject checks judge the certificate
		// cosign put in the signature; sigstore-go checks the signature with its key.
		mv, _, err := identityVerifier(pub, id)
		if err != nil {
			return s, err
		}
		s.verifier = registry.NewCertificateVerifier(func(leaf *x509.Certificate, intermediates []*x509.Certificate) error {
			_, err := manifest.CheckCertificate(mv, leaf, intermediates)
			return err
		})
		s.identity, s.certificate = verify.WithKey(), true
		return s, nil
	}
	return s, errors.New("exactly one of sigstore, publicKey or certificate is required")
}

// anchored makes a regular expression match the whole value, as the policy's regexps do;
// sigstore-go matches anywhere in the value.
func anchored(expr string) string {
	if expr == "" {
		return ""
	}
	return "^(?:" + expr + ")$"
}

// verifyOCI is Verify for oci:// references; concurrent calls for the same reference share one
// verification, as for the Hub.
func (v *Verifier) verifyOCI(ctx context.Context, ref string) (*Model, error) {
	return v.shareVerification(ctx, "oci "+ref, func() (*Model, error) { return v.verifyOCIOnce(ctx, ref) })
}

func (v *Verifier) verifyOCIOnce(ctx context.Context, ref string) (*Model, error) {
	if v.cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, v.cfg.timeout, deadlineError{v.cfg.timeout})
		defer cancel()
	}
	d := v.newDecision(ref)
	r, err := registry.ParseReference(ref)
	var m *Model
	if err != nil {
		err = d.fatal(Problem{Reason: ErrHub, Actual: ref, Detail: firstLine(err)}, err)
	} else {
		// The audit record says registry, repository and digest in the Hub's fields: Endpoint
		// is "oci://<registry>", Repo the repository, Revision the tag, Commit the digest.
		d.rec.Endpoint, d.rec.Repo, d.rec.Revision, d.rec.Commit = registry.Scheme+r.Registry, r.Repository, r.Tag, r.Digest
		m, err = v.runOCI(ctx, d, r)
	}
	if ferr := d.finish(ctx, m, err); ferr != nil {
		return nil, ferr
	}
	return m, nil
}

func (v *Verifier) runOCI(ctx context.Context, d *decision, r registry.Reference) (*Model, error) {
	// 1. Policy: an approved registry and repository, a publisher claiming it, a digest if
	// the publisher requires one.
	reg, ok := v.policy.Registry(r.Registry)
	switch {
	case !ok:
		if err := d.fail(Problem{Reason: ErrEndpointNotAllowed, Actual: r.Registry, Expected: v.policy.registryHosts(),
			Detail: "the registry is not in the policy's registries; to approve it, add it there: registries: [{host: " + r.Registry + "}]"}, nil); err != nil {
			return nil, err
		}
	case !reg.AllowsRepository(r.Repository):
		if err := d.fail(Problem{Reason: ErrEndpointNotAllowed, Actual: r.Name(), Expected: strings.Join(reg.Repositories, ", "),
			Detail: "the registry is approved, but not this repository (registries[].repositories)"}, nil); err != nil {
			return nil, err
		}
	case isLoopback(registryHostName(reg.Host)) && !reg.PlainHTTP:
		// Validation refuses this too; kept for a policy built in code without Validate.
		if err := d.fail(Problem{Reason: ErrEndpointNotAllowed, Actual: r.Registry, Detail: "a loopback registry is reached over plain HTTP, which its entry does not approve (plainHTTP: true)"}, nil); err != nil {
			return nil, err
		}
	}
	pub, perr := v.policy.OCIPublisher(r.Name())
	if perr != nil {
		if err := d.fail(Problem{Reason: ErrPublisherNotAllowed, Actual: r.Name(), Expected: "a repository in " + v.policy.claimedOCI(),
			Detail: "no publisher's oci entries claim the repository"}, nil); err != nil {
			return nil, err
		}
	} else {
		d.rec.Publisher = pub.Name
		if pub.RequireDigest && !r.Pinned() {
			if err := d.fail(Problem{Reason: ErrUnpinnedRevision, Expected: "a manifest digest (@sha256:...)", Actual: r.String(),
				Detail: "publisher " + pub.Name + " requires references pinned by digest (requireDigest)"}, nil); err != nil {
				return nil, err
			}
		}
	}
	if err := v.ociInit(); err != nil {
		return nil, d.fatal(Problem{Reason: ErrHub, Detail: firstLine(err)}, err)
	}
	c := v.oci.client
	if !ok || !reg.AllowsRepository(r.Repository) {
		c = v.oci.anonymous
	}

	// 2. Resolve the tag to a digest once, and read the manifest; everything after uses the digest.
	v.ociProgress(r, "resolve")
	art, err := c.Open(ctx, r)
	if err != nil {
		return nil, d.fatal(registryProblem(err, "resolving the reference"), err)
	}
	d.commit = art.Digest.String()

	// 3. The cosign signature, by one of the publisher's identities, made for this digest.
	var signed *registry.VerifiedSignature
	var signer *ociSigner
	cosignFound := 0
	if pub != nil && pub.SignatureRequired() {
		v.ociProgress(r, "signature")
		signed, signer, cosignFound, err = v.verifyCosign(ctx, c, d, pub, art)
		if err != nil {
			return nil, err
		}
		if signed != nil {
			// On record from here on, so that a refusal of the content still says who signed it.
			who := ociSignerOf(signed, signer)
			d.rec.Signer, d.rec.SignerIssuer, d.rec.SignerExtensions = who.Identity, who.Issuer, who.Extensions
		}
	} else if pub == nil {
		if err := d.fail(Problem{Reason: ErrUnsigned, Detail: "no publisher claims the repository, so no signature can be checked"}, nil); err != nil {
			return nil, err
		}
	}
	// OMS (model_signing) bundles stored as referrers: their signatures are checked before
	// anything is pulled, the files against them after (4b). Since model.sig may also be
	// inside the model, a digest verified before may skip the pull only when it needs no OMS
	// check of its files: signed by cosign, and no OMS bundle found (oms.found == 0).
	oms, err := v.verifyOMSReferrers(ctx, c, d, pub, art)
	if err != nil {
		return nil, err
	}

	// 4. Pull into staging, every layer checked against its digest, every entry against the
	// archive rules and the content limits. A digest verified before, whose published files are
	// untouched since, needs no pull: the signature above was still checked online. Only a
	// decision that has found nothing wrong may take the shortcut (in audit mode, one with
	// problems checks every file afresh, so that its record of problems is complete).
	storeRoot := filepath.Join(v.CacheDir(), ociStoreDir)
	rc := recordContext{endpoint: registry.Scheme + r.Registry, repo: registry.Scheme + r.Name(), commit: art.Digest.String()}
	v.removeLeftovers(rc.repo)
	if v.recordKey == nil {
		d.rec.VerificationRecord = RecordDisabled
	} else if len(d.problems) == 0 {
		m, err := v.reuseStoredOCI(ctx, c, d, rc, storeRoot, r, art, pub, signed, signer)
		if m != nil || err != nil {
			return m, err
		}
	}
	if err := os.MkdirAll(storeRoot, 0o755); err != nil {
		return nil, d.fatal(Problem{Reason: ErrHub, Detail: firstLine(err)}, err)
	}
	stagingParent, err := os.MkdirTemp(storeRoot, ".staging-")
	if err != nil {
		return nil, d.fatal(Problem{Reason: ErrHub, Detail: firstLine(err)}, err)
	}
	defer os.RemoveAll(stagingParent)
	staging := filepath.Join(stagingParent, "model")
	rules := &v.policy.Content
	pulled, err := c.Pull(ctx, art, staging, registry.Limits{MaxFiles: rules.MaxFiles,
		MaxFileSize: int64(rules.MaxFileSize), MaxTotalSize: int64(rules.MaxTotalSize)})
	if err != nil {
		return nil, d.fatal(registryProblem(err, "pulling the layers"), err)
	}
	// 4b. OMS bundles (model_signing), the publisher's signature file in the model and the
	// referrers above, verified as on the Hub and the files checked against them. A
	// publisher's model needs a valid signature of either kind; with neither cosign's nor an
	// OMS bundle found, it is unsigned.
	if err := v.verifyOCIOMS(ctx, d, pub, oms, pulled); err != nil {
		return nil, err
	}
	if pub != nil && pub.SignatureRequired() && cosignFound == 0 && oms.found == 0 {
		if err := d.fail(Problem{Reason: ErrUnsigned, Expected: "a signature of the digest by publisher " + pub.Name, Actual: "none for " + art.Digest.String(),
			Detail: fmt.Sprintf("no cosign signature of the digest in %s (neither a Sigstore bundle referrer nor the %s tag) and no OMS bundle (%s in the model, or a model_signing bundle referrer); sign it with cosign sign or model_signing sign",
				art.Reference.Name(), registry.LegacySignatureTag(art.Digest), pub.SignaturePath())}, nil); err != nil {
			return nil, err
		}
	}
	if len(pulled.Files) == 0 {
		return nil, d.fatal(Problem{Reason: ErrMissingFile, Detail: fmt.Sprintf("the %s artefact holds no model files", art.Format)}, nil)
	}

	// 5. Every file scanned with the policy's content rules, in place, so that an index finds
	// its shards and an ONNX model its external data.
	v.ociProgress(r, "scan")
	files := make([]File, 0, len(pulled.Files))
	verdicts := make(map[string]string, len(pulled.Files)) // for the verification record
	for _, pf := range pulled.Files {
		local := filepath.Join(staging, filepath.FromSlash(pf.Path))
		rep, err := scan.ScanFile(ctx, local, scanOptions(rules, pf.Path)...)
		if err != nil {
			return nil, d.fatal(Problem{Reason: ErrUnsafeContent, File: pf.Path, Detail: "scan: " + firstLine(err)}, err)
		}
		for _, p := range judgeContent(rules, pf.Path, rep) {
			if err := d.fail(p, nil); err != nil {
				return nil, err
			}
		}
		files = append(files, File{Name: pf.Path, Size: pf.Size, SHA256: pf.Digest.Hex, Format: string(rep.Format)})
		verdicts[pf.Path] = rep.Verdict.String()
	}

	// 6. Publish: the staged tree is renamed into the store whole, so a reader sees all of a
	// verified model or none of it.
	dir, err := v.publishOCI(ctx, storeRoot, staging, r, art.Digest, files)
	if err != nil {
		return nil, d.fatal(Problem{Reason: ErrHub, Detail: "publishing: " + firstLine(err)}, err)
	}
	m := &Model{dir: dir, byName: map[string]int{}}
	for _, f := range files {
		f.path = filepath.Join(dir, filepath.FromSlash(f.Name))
		if f.stamp, err = stampPath(f.path); err != nil {
			return nil, d.fatal(Problem{Reason: ErrFileChanged, File: f.Name, Detail: firstLine(err)}, err)
		}
		m.byName[f.Name] = len(m.files)
		m.files = append(m.files, f)
	}
	m.manifest = integrityManifest(r.Name(), m.files)
	if len(oms.results) > 0 {
		m.manifest = oms.results[0].Manifest
	}
	m.evidence = v.ociEvidence(d, r, art, pub, signed, signer, m)
	v.recordOCISignatures(d, &m.evidence, signed, signer, oms)
	// Only a decision with no problem is worth reusing: a model allowed in audit mode despite
	// a problem must not come back allowed, from the store, under enforce.
	if len(d.problems) == 0 {
		v.writeRecord(rc, m, nil, nil, verdicts)
	}
	return m, nil
}

// reuseStoredOCI returns the model published for art's digest from the store, without pulling
// its layers, when an authenticated record under this policy matches every stored file; nil,
// nil when a pull is needed. The record stands in for the files only, so it is consulted only
// when the signatures checked online leave nothing for the files to decide: a cosign
// signature by the publisher verified just now (or none required). A model with no cosign
// signature may be signed by an OMS bundle inside its layers, which only a pull shows; and an
// OMS bundle referrer, which anyone who can push may add after the record was written, is
// judged by a full verification (one by a stranger refuses the model).
func (v *Verifier) reuseStoredOCI(ctx context.Context, c *registry.Client, d *decision, rc recordContext, storeRoot string,
	r registry.Reference, art *registry.Artifact, pub *Publisher, signed *registry.VerifiedSignature, signer *ociSigner) (*Model, error) {
	if pub == nil || (signed == nil && pub.SignatureRequired()) {
		return nil, nil
	}
	refs, err := c.OMSBundles(ctx, art.Reference, art.Digest)
	if err != nil {
		return nil, d.fatal(registryProblem(err, "finding OMS bundle referrers"), err)
	}
	if len(refs) > 0 {
		return nil, nil
	}
	m, err := v.reuseOCI(d, rc, ociModelDir(storeRoot, r, art.Digest))
	if m == nil || err != nil {
		return nil, err
	}
	m.manifest = integrityManifest(r.Name(), m.files)
	m.evidence = v.ociEvidence(d, r, art, pub, signed, signer, m)
	v.recordOCISignatures(d, &m.evidence, signed, signer, nil)
	m.evidence.Cached = true
	return m, nil
}

// verifyCosign finds the cosign signatures of art's digest and returns the first that one of
// pub's identities verifies, and how many were found. None found is no refusal here: an OMS
// bundle may sign the model instead (runOCI decides once it has looked). Refusals: every one
// made for another digest (ErrSignature: copied from another image); none by an identity of
// the publisher (ErrIdentity). In audit mode the refusal is recorded and nil, nil returned.
func (v *Verifier) verifyCosign(ctx context.Context, c *registry.Client, d *decision, pub *Publisher, art *registry.Artifact) (*registry.VerifiedSignature, *ociSigner, int, error) {
	sigs, err := c.Signatures(ctx, art.Reference, art.Digest)
	if err != nil {
		return nil, nil, 0, d.fatal(registryProblem(err, "finding the signatures"), err)
	}
	if len(sigs) == 0 {
		return nil, nil, 0, nil
	}
	signers := v.oci.signers[pub.Name]
	if len(signers) == 0 {
		return nil, nil, len(sigs), d.fail(Problem{Reason: ErrIdentity, Detail: "the publisher lists no identities to check the signature against"}, nil)
	}
	var reasons, copied []string
	for _, sig := range sigs {
		if other := signedDigest(sig); other != "" && other != art.Digest.String() {
			copied = append(copied, fmt.Sprintf("%s signs %s", sig.Source, other))
			continue
		}
		for i := range signers {
			s := &signers[i]
			vs, err := sig.Verify(s.verifier, s.identity)
			if err == nil && s.extensions != nil {
				if vs.Result.Signature == nil || vs.Result.Signature.Certificate == nil {
					err = errors.New("verified without a certificate to check the extensions of")
				} else {
					err = s.extensions.Match(vs.Result.Signature.Certificate.Extensions)
				}
			}
			if err == nil {
				return vs, s, len(sigs), nil
			}
			reasons = append(reasons, fmt.Sprintf("%s with %s: %s", sig.Source, s.name, firstLine(err)))
		}
	}
	if len(reasons) == 0 {
		return nil, nil, len(sigs), d.fail(Problem{Reason: ErrSignature, Expected: "a signature of " + art.Digest.String(), Actual: strings.Join(copied, "; "),
			Detail: "every signature found was made for another image and copied here"}, nil)
	}
	return nil, nil, len(sigs), d.fail(Problem{Reason: ErrIdentity, Expected: strings.Join(signerNames(signers), " or "),
		Detail: fmt.Sprintf("%d signature(s) found, none by an identity of publisher %s: %s", len(sigs), pub.Name, strings.Join(reasons, "; "))}, nil)
}

func signerNames(ss []ociSigner) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.name
	}
	return out
}

// signedDigest reads, without verifying anything, which manifest digest a signature claims to
// sign, so that a signature copied from another image is named as such rather than as a
// wrong identity. "" when it cannot tell; Signature.Verify checks the same claim for real.
func signedDigest(sig *registry.Signature) string {
	switch sig.Form {
	case registry.FormSimpleSigning:
		var p struct {
			Critical struct {
				Image struct {
					Digest string `json:"docker-manifest-digest"`
				} `json:"image"`
			} `json:"critical"`
		}
		if json.Unmarshal(sig.Payload, &p) == nil {
			return p.Critical.Image.Digest
		}
	case registry.FormBundle:
		var b struct {
			DSSE struct {
				Payload string `json:"payload"`
			} `json:"dsseEnvelope"`
		}
		if json.Unmarshal(sig.Bundle, &b) != nil {
			return ""
		}
		raw, err := base64.StdEncoding.DecodeString(b.DSSE.Payload)
		if err != nil {
			return ""
		}
		var st struct {
			Subject []struct {
				Digest map[string]string `json:"digest"`
			} `json:"subject"`
		}
		if json.Unmarshal(raw, &st) == nil && len(st.Subject) == 1 && st.Subject[0].Digest["sha256"] != "" {
			return "sha256:" + st.Subject[0].Digest["sha256"]
		}
	}
	return ""
}

// ociModelDir is where a verified OCI model is published: <store>/<host>/<repository>/<alg>-<hex>.
func ociModelDir(store string, r registry.Reference, digest v1.Hash) string {
	return filepath.Join(store, ociHostDir(r.Registry), filepath.FromSlash(r.Repository), digest.Algorithm+"-"+digest.Hex)
}

// ociHostDir is a registry host as a directory name: the ':' before a port becomes '_', which
// file systems all accept.
func ociHostDir(host string) string { return strings.ReplaceAll(host, ":", "_") }

// publishOCI moves a checked staging tree to the model's place in the store. A model already
// there (an earlier verification of the same digest) is kept when it holds exactly the files
// just verified, byte for byte, so that a Model handed out earlier stays valid; otherwise it is
// moved aside and removed after the new tree is renamed in (a directory cannot be replaced in
// one rename, so for that moment the model is absent, never partial or mixed). Publications of
// one digest within a process take turns.
func (v *Verifier) publishOCI(ctx context.Context, store, staging string, r registry.Reference, digest v1.Hash, files []File) (string, error) {
	dst := ociModelDir(store, r, digest)
	mu, _ := v.oci.publishing.LoadOrStore(dst, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	var old string
	if _, err := os.Lstat(dst); err == nil {
		if sameTree(ctx, dst, files) {
			return dst, nil
		}
		aside, err := os.MkdirTemp(filepath.Dir(dst), ".replaced-")
		if err != nil {
			return "", err
		}
		old = filepath.Join(aside, "model")
		if err := os.Rename(dst, old); err != nil {
			os.RemoveAll(aside)
			return "", err
		}
		defer os.RemoveAll(aside)
	}
	if err := os.Rename(staging, dst); err != nil {
		if old != "" {
			_ = os.Rename(old, dst)
		}
		return "", err
	}
	return dst, nil
}

// sameTree reports whether dir holds exactly files: the same names, regular files only, with
// the same sizes and SHA-256 digests (hashed again: nothing else says the bytes are unchanged).
func sameTree(ctx context.Context, dir string, files []File) bool {
	names := make(map[string]int, len(files))
	for i, f := range files {
		names[f.Name] = i
	}
	if len(names) != len(files) || !holdsOnly(dir, names) {
		return false
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
			return false
		}
		if got, err := fileSHA256(ctx, p, f.Name, manifest.Serialization{}, nil); err != nil || got != f.SHA256 {
			return false
		}
	}
	return true
}

// registryProblem turns a registry failure into the problem to report.
func registryProblem(err error, doing string) Problem {
	var de *registry.DigestError
	var ee *registry.EntryError
	switch {
	case errors.As(err, &de):
		return Problem{Reason: ErrDigestMismatch, File: de.What, Expected: de.Expected, Actual: de.Found,
			Detail: doing + ": the registry's bytes do not match the digest that names them"}
	case errors.As(err, &ee) && errors.Is(err, registry.ErrLimitExceeded):
		return Problem{Reason: ErrLimitExceeded, File: ee.Entry, Detail: doing + ": layer " + ee.Layer + ": " + ee.Reason}
	case errors.As(err, &ee):
		return Problem{Reason: ErrUnsafeContent, File: ee.Entry, Detail: doing + ": layer " + ee.Layer + ": " + ee.Reason}
	case errors.Is(err, registry.ErrDigestMismatch), errors.Is(err, registry.ErrSizeMismatch):
		return Problem{Reason: ErrDigestMismatch, Detail: doing + ": " + firstLine(err)}
	case errors.Is(err, registry.ErrUnsafeArchive):
		return Problem{Reason: ErrUnsafeContent, Detail: doing + ": " + firstLine(err)}
	case errors.Is(err, registry.ErrLimitExceeded):
		return Problem{Reason: ErrLimitExceeded, Detail: doing + ": " + firstLine(err)}
	case errors.Is(err, registry.ErrPlainHTTP):
		return Problem{Reason: ErrRedirectNotAllowed, Detail: doing + ": " + firstLine(err)}
	}
	msg := firstLine(err)
	if !strings.HasPrefix(msg, "registry: ") {
		msg = "registry: " + msg // the package's errors say so already; a context's do not
	}
	return Problem{Reason: ErrHub, Detail: doing + ": " + msg}
}

// ociEvidence is the evidence of a verified OCI model: Endpoint is "oci://<registry>", Repo the
// repository, Revision the tag, Commit the digest the tag resolved to (the one signed).
func (v *Verifier) ociEvidence(d *decision, r registry.Reference, art *registry.Artifact, pub *Publisher, signed *registry.VerifiedSignature, s *ociSigner, m *Model) Evidence {
	ev := Evidence{
		Ref: d.ref, Repo: r.Repository, Revision: r.Tag, Commit: art.Digest.String(), Endpoint: registry.Scheme + r.Registry,
		Verification: VerifiedIntegrity, ManifestDigest: m.manifest.RootDigest().String(),
		Digests: map[string]string{}, Formats: map[string]string{}, VerifiedAt: d.start,
	}
	if pub != nil {
		ev.Publisher = pub.Name
	}
	if signed != nil && s != nil {
		ev.Verification = VerifiedSignature
		ev.Signer = ociSignerOf(signed, s)
		if ts := signed.Result.VerifiedTimestamps; len(ts) > 0 {
			ev.SignedAt = ts[0].Timestamp
		}
	}
	for _, f := range m.files {
		ev.Digests[f.Name] = "sha256:" + f.SHA256
		ev.Formats[f.Name] = f.Format
	}
	d.rec.Verification = ev.Verification
	d.rec.Signer, d.rec.SignerIssuer, d.rec.SignerExtensions = ev.Signer.Identity, ev.Signer.Issuer, ev.Signer.Extensions
	d.rec.ManifestDigest = ev.ManifestDigest
	return ev
}

func ociSignerOf(signed *registry.VerifiedSignature, s *ociSigner) Signer {
	if s.fingerprint != "" {
		return Signer{Kind: string(manifest.SignerKey), Identity: "key sha256:" + s.fingerprint, KeyFingerprint: s.fingerprint}
	}
	if s.certificate && len(signed.Certificates) > 0 {
		info := manifest.SignerInfo{Kind: manifest.SignerCertificate}
		leaf := signed.Certificates[0]
		info.Subject, info.Issuer = leaf.Subject.String(), leaf.Issuer.String()
		info.KeyFingerprint, _ = manifest.KeyFingerprint(leaf.PublicKey)
		return signerOf(info)
	}
	out := Signer{Kind: string(manifest.SignerSigstore)}
	if sig := signed.Result.Signature; sig != nil && sig.Certificate != nil {
		out.Identity = sig.Certificate.SubjectAlternativeName
		out.Issuer = sig.Certificate.Extensions.Issuer
		out.Extensions = manifest.ExtensionValues(sig.Certificate.Extensions)
	}
	return out
}

func (v *Verifier) ociProgress(r registry.Reference, step string) {
	if v.cfg.progress != nil {
		v.cfg.progress(Progress{Ref: r.String(), Step: step})
	}
}
