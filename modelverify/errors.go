package modelverify

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/registry"
)

// Reason is why a model was refused. The package's Err... values are its only instances, so a
// refusal is matched with errors.Is(err, modelverify.ErrUnsigned). Each reason has a stable
// machine name ("unsigned") that the audit log and JSON output use, and that never changes
// meaning once released.
type Reason struct {
	name    string
	message string
	// same are the sentinels of the packages below that stand for the same idea
	// (hub.ErrDigestMismatch for ErrDigestMismatch), which the reason and every refusal
	// carrying it also match, so that errors.Is gives one answer whichever layer's sentinel
	// the caller holds.
	same []error
}

// Sentinel refusal reasons. A *Refusal matches every reason it carries under errors.Is.
var (
	// ErrPublisherNotAllowed: no publisher in the policy claims the repository's namespace.
	ErrPublisherNotAllowed = newReason("publisher-not-allowed", "publisher not allowed")
	// ErrEndpointNotAllowed: the Hub endpoint is not one of the policy's endpoints, or not one
	// the publisher may be pulled from.
	ErrEndpointNotAllowed = newReason("endpoint-not-allowed", "endpoint not allowed")
	// ErrRedirectNotAllowed: a download redirected to a host that is not one of the endpoint's
	// approved CDN hosts. It is the gate's name for hub.ErrRedirectNotAllowed, which it and
	// every refusal carrying it also match; match this one.
	ErrRedirectNotAllowed = newReason("redirect-not-allowed", "redirect to a host that is not allowed", hub.ErrRedirectNotAllowed)
	// ErrUnpinnedRevision: the publisher requires a commit id and the reference names a branch
	// or tag.
	ErrUnpinnedRevision = newReason("unpinned-revision", "revision is not pinned to a commit")
	// ErrUnverifiedOrg: the publisher requires the Hub to mark the organisation verified and it
	// does not.
	ErrUnverifiedOrg = newReason("unverified-org", "organisation is not verified by the Hub")
	// ErrUnsigned: the publisher requires a signature and the model has none.
	ErrUnsigned = newReason("unsigned", "model is not signed")
	// ErrSignature: the signature is malformed or does not verify.
	ErrSignature = newReason("bad-signature", "signature does not verify")
	// ErrIdentity: the signature verifies but was made by an identity the publisher does not list.
	ErrIdentity = newReason("wrong-identity", "signed by an identity that is not allowed")
	// ErrManifest: the signed manifest is malformed or does not describe this model.
	ErrManifest = newReason("bad-manifest", "signed manifest is invalid")
	// ErrSubjectMismatch: the publisher requires the signed subject name to name the
	// repository, and the signature was made for another model.
	ErrSubjectMismatch = newReason("subject-mismatch", "signed for another model")
	// ErrManifestNotPinned: the policy pins the repository to signed manifests by root digest,
	// and the signature is for another one (an older commit, or another model).
	ErrManifestNotPinned = newReason("manifest-not-pinned", "signed manifest is not the pinned one")
	// ErrDigestMismatch: a file's bytes do not hash to the digest that was signed or published.
	// It is the one sentinel for the idea: the Hub client's hub.ErrDigestMismatch (the bytes are
	// not what the Hub published) and manifest.ErrMismatch (a model does not match its signed
	// manifest) are reported under it, and it and every refusal carrying it match both of them
	// too (errors.Is); match this one.
	ErrDigestMismatch = newReason("digest-mismatch", "digest mismatch", hub.ErrDigestMismatch, manifest.ErrMismatch)
	// ErrMissingFile: a file the signed manifest lists is not in the model. It also matches
	// manifest.ErrMismatch.
	ErrMissingFile = newReason("missing-file", "file missing", manifest.ErrMismatch)
	// ErrUnexpectedFile: the model holds a file the signed manifest does not list. It also
	// matches manifest.ErrMismatch.
	ErrUnexpectedFile = newReason("unexpected-file", "file not covered by the signature", manifest.ErrMismatch)
	// ErrUnsafeContent: a scan found content that could execute code on load, or could not
	// prove a file safe.
	ErrUnsafeContent = newReason("unsafe-content", "unsafe content")
	// ErrFormatNotAllowed: a file's format is not in the policy's allowed formats.
	ErrFormatNotAllowed = newReason("format-not-allowed", "file format not allowed")
	// ErrLimitExceeded: the model exceeds the policy's file count or size limits.
	ErrLimitExceeded = newReason("limit-exceeded", "content limit exceeded")
	// ErrFileChanged: a file changed on disk after it was verified.
	ErrFileChanged = newReason("file-changed", "file changed after verification")
	// ErrHub: the Hub (or the network to it) failed, so nothing could be verified.
	ErrHub = newReason("hub-error", "hub request failed")
)

// ErrTemporary matches (errors.Is) a failure that says nothing about the model and may pass if
// tried later: the Hub, a registry or the network could not be reached, the Hub or a registry
// answered 408, 429 or 5xx after every retry or stalled past the retry budget, the disk was full
// or failed, the verification ran past WithTimeout. Such a failure is refused with reason ErrHub ("hub-error")
// like any Hub failure; a refusal that does not match ErrTemporary (a missing repository, a
// gated one, a digest mismatch, any policy refusal) will be refused again. It is
// hub.ErrTemporary, so errors from the hub package match it too.
var ErrTemporary = hub.ErrTemporary

// reasons lists every Reason, in the order they are documented.
var reasons = []*Reason{
	ErrPublisherNotAllowed, ErrEndpointNotAllowed, ErrRedirectNotAllowed, ErrUnpinnedRevision,
	ErrUnverifiedOrg, ErrUnsigned, ErrSignature, ErrIdentity, ErrManifest, ErrSubjectMismatch,
	ErrManifestNotPinned, ErrDigestMismatch,
	ErrMissingFile, ErrUnexpectedFile, ErrUnsafeContent, ErrFormatNotAllowed, ErrLimitExceeded,
	ErrFileChanged, ErrHub,
}

func newReason(name, message string, same ...error) *Reason {
	return &Reason{name: name, message: message, same: same}
}

// Is reports whether target is a sentinel of a lower package that stands for the same idea
// (see ErrDigestMismatch).
func (r *Reason) Is(target error) bool { return slices.Contains(r.same, target) }

// Reasons returns every refusal reason the package defines.
func Reasons() []*Reason { return append([]*Reason(nil), reasons...) }

// ReasonByName returns the reason whose machine name is name.
func ReasonByName(name string) (*Reason, bool) {
	for _, r := range reasons {
		if r.name == name {
			return r, true
		}
	}
	return nil, false
}

// Name is the stable machine name, for logs and JSON ("digest-mismatch").
func (r *Reason) Name() string { return r.name }

// Error is the human phrase ("digest mismatch").
func (r *Reason) Error() string { return r.message }

// String is the machine name.
func (r *Reason) String() string { return r.name }

// MarshalText encodes the machine name.
func (r *Reason) MarshalText() ([]byte, error) { return []byte(r.name), nil }

// Problem is one thing wrong with a model: a reason and, where they apply, the file, the value
// that was expected and the one that was found.
type Problem struct {
	// Reason is the sentinel this problem is an instance of. Required.
	Reason *Reason `json:"reason"`
	// File is the path inside the model, slash-separated, when the problem is about one file.
	File string `json:"file,omitempty"`
	// Expected and Actual are what the policy or the signed manifest required and what was
	// found: digests, identities, sizes, formats, hosts.
	Expected string `json:"expected,omitempty"`
	Actual   string `json:"actual,omitempty"`
	// Detail says anything else an operator needs ("LFS sha256 from the tree").
	Detail string `json:"detail,omitempty"`
}

// String is the problem on one line: "digest-mismatch: file "a.bin": expected X, found Y (detail)".
func (p Problem) String() string {
	var b strings.Builder
	if p.Reason != nil {
		b.WriteString(p.Reason.name)
	} else {
		b.WriteString("unknown-reason")
	}
	sep := ": "
	if p.File != "" {
		b.WriteString(sep + "file " + quote(p.File))
		sep = ", "
	}
	if p.Expected != "" || p.Actual != "" {
		b.WriteString(sep + "expected " + orNone(p.Expected) + ", found " + orNone(p.Actual))
		sep = ", "
	}
	if p.Detail != "" {
		b.WriteString(sep + oneLine(p.Detail))
	}
	return b.String()
}

// Refusal is the error a model is refused with. It carries every problem found, the reference
// as requested and the commit it resolved to, and the underlying cause, if any. errors.Is
// matches it against each Reason it carries; errors.As reaches the cause through Unwrap.
type Refusal struct {
	// Ref is the reference as the caller gave it: to Verify ("hf://org/name@main"), or to
	// VerifyDir (the repository the directory claims to hold, "org/name[@commit]"; the audit
	// record's Dir names the directory).
	Ref string
	// Commit is the commit Ref resolved to; empty if it was refused before resolving.
	Commit string
	// Problems lists what is wrong, most important first. A Refusal has at least one.
	Problems []Problem
	// Err is the underlying failure (a Hub error, a signature library error), or nil.
	Err error
}

// maxProblemsInMessage bounds Error's length: a model with a thousand tampered shards still
// gets a one-line message, and the full list stays in Problems.
const maxProblemsInMessage = 3

// Error is one line that tells an operator what failed: the reference, the commit, each
// problem (the first few, then a count) and the cause.
func (r *Refusal) Error() string {
	var b strings.Builder
	b.WriteString("modelverify: refused ")
	if r.Ref != "" {
		b.WriteString(quote(r.Ref))
	} else {
		b.WriteString("model")
	}
	if r.Commit != "" {
		b.WriteString(" at commit " + quote(r.Commit))
	}
	for i, p := range r.Problems {
		if i == maxProblemsInMessage {
			fmt.Fprintf(&b, "; and %d more", len(r.Problems)-maxProblemsInMessage)
			break
		}
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	if len(r.Problems) == 0 {
		b.WriteString(": no reason recorded")
	}
	// The cause is often already a problem's detail; say it once.
	if r.Err != nil && !r.redirectSaid() {
		if cause := oneLine(r.Err.Error()); !strings.Contains(b.String(), cause) {
			b.WriteString(": " + cause)
		}
	}
	return b.String()
}

// redirectSaid reports whether the cause is a refused redirect that a problem already describes
// whole (host:port, the allowed hosts, the fix): repeating the cause would repeat its URLs.
func (r *Refusal) redirectSaid() bool {
	var re *hub.RedirectError
	if !errors.As(r.Err, &re) {
		return false
	}
	for _, p := range r.Problems {
		if p.Reason == ErrRedirectNotAllowed && p.Actual == re.Host {
			return true
		}
	}
	return false
}

// Is reports whether target is one of the reasons this refusal carries, or a lower package's
// sentinel for one of them (hub.ErrDigestMismatch for ErrDigestMismatch). A registry failure
// that may pass later (registry.ErrTemporary) matches ErrTemporary, as the Hub's do.
func (r *Refusal) Is(target error) bool {
	if target == ErrTemporary && r.Err != nil && errors.Is(r.Err, registry.ErrTemporary) {
		return true
	}
	for _, p := range r.Problems {
		if p.Reason == target || (p.Reason != nil && p.Reason.Is(target)) {
			return true
		}
	}
	return false
}

// Unwrap returns the cause, so errors.Is and errors.As reach it (a context.Canceled, a
// *hub.HubError) as well as the reasons Is matches.
func (r *Refusal) Unwrap() []error {
	if r.Err == nil {
		return nil
	}
	return []error{r.Err}
}

// Reasons returns the distinct reasons of the refusal's problems, in order of first appearance.
func (r *Refusal) Reasons() []*Reason {
	var out []*Reason
	for _, p := range r.Problems {
		if p.Reason != nil && !containsReason(out, p.Reason) {
			out = append(out, p.Reason)
		}
	}
	return out
}

// ReasonNames returns the machine names of Reasons, as the audit log records them.
func (r *Refusal) ReasonNames() []string {
	rs := r.Reasons()
	names := make([]string, len(rs))
	for i, reason := range rs {
		names[i] = reason.name
	}
	return names
}

// MarshalJSON encodes the refusal for machines (the CLI's --json): its message, reference,
// commit, reason names, problems and cause.
func (r *Refusal) MarshalJSON() ([]byte, error) {
	type problemJSON struct {
		Reason   string `json:"reason"`
		File     string `json:"file,omitempty"`
		Expected string `json:"expected,omitempty"`
		Actual   string `json:"actual,omitempty"`
		Detail   string `json:"detail,omitempty"`
	}
	out := struct {
		Message  string        `json:"message"`
		Ref      string        `json:"ref,omitempty"`
		Commit   string        `json:"commit,omitempty"`
		Reasons  []string      `json:"reasons"`
		Problems []problemJSON `json:"problems"`
		Cause    string        `json:"cause,omitempty"`
	}{Message: r.Error(), Ref: r.Ref, Commit: r.Commit, Reasons: r.ReasonNames(), Problems: []problemJSON{}}
	for _, p := range r.Problems {
		name := "unknown-reason"
		if p.Reason != nil {
			name = p.Reason.name
		}
		out.Problems = append(out.Problems, problemJSON{name, p.File, p.Expected, p.Actual, p.Detail})
	}
	if r.Err != nil {
		out.Cause = r.Err.Error()
	}
	return json.Marshal(out)
}

// asRefusal turns any error from the verification path into a *Refusal for ref and commit, so
// that every failure is reported, audited and matched the same way:
//   - a *Refusal in err's chain is returned (as a copy) with Ref and Commit filled in where empty;
//   - an error that wraps a Reason (fmt.Errorf("%w: ...", ErrUnsigned)) becomes a refusal for
//     that reason, with err as the cause;
//   - any other error becomes a refusal for fallback (ErrHub when fallback is nil), with err
//     as the cause.
//
// It returns nil when err is nil.
func asRefusal(err error, ref, commit string, fallback *Reason) *Refusal {
	if err == nil {
		return nil
	}
	var existing *Refusal
	if errors.As(err, &existing) {
		cp := *existing
		cp.Problems = append([]Problem(nil), existing.Problems...)
		if cp.Ref == "" {
			cp.Ref = ref
		}
		if cp.Commit == "" {
			cp.Commit = commit
		}
		return &cp
	}
	reason := fallback
	for _, candidate := range reasons {
		if errors.Is(err, candidate) {
			reason = candidate
			break
		}
	}
	if reason == nil {
		reason = ErrHub
	}
	return &Refusal{Ref: ref, Commit: commit, Problems: []Problem{{Reason: reason}}, Err: err}
}

func containsReason(list []*Reason, r *Reason) bool {
	for _, x := range list {
		if x == r {
			return true
		}
	}
	return false
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return quote(s)
}

// quote quotes s only when it needs it, so the common case (a plain file name or digest) reads
// cleanly while a name with spaces, quotes or control characters cannot forge the message.
func quote(s string) string {
	for _, c := range s {
		if c == '"' || c == '\\' || unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

// oneLine keeps a free-text value (a detail, a cause's message) on one line, escaping line
// breaks and other control characters so that the message cannot forge extra log lines.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
