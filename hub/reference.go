package hub

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultRevision is the revision a reference without one resolves to, as on the Hub.
const DefaultRevision = "main"

// maxRepoIDLength is the Hub's limit on a repo id (huggingface_hub validate_repo_id).
const maxRepoIDLength = 96

// repoSegment is one half of a repo id: letters, digits, '-', '_' and '.', neither starting nor
// ending with '-' or '.' (the \b anchors in huggingface_hub's validator).
var repoSegment = regexp.MustCompile(`^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)

// commitPattern matches a full commit id, which the Hub accepts as a revision as is.
var commitPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Reference names a model repository on the Hub and, optionally, a revision of it.
type Reference struct {
	// Namespace is the user or organisation that owns the repository ("google-bert").
	Namespace string
	// Name is the repository's name within its namespace ("bert-base-uncased").
	Name string
	// Revision is a branch, tag, "refs/pr/N" or 40-hex commit; empty means DefaultRevision.
	Revision string
}

// ParseReference parses "org/name", "org/name@revision" or "hf://org/name@revision". In the
// hf:// form the revision may also follow a ':' ("hf://org/name:revision"), which is how KServe
// spells it; repo ids cannot contain ':' so the two never collide.
func ParseReference(s string) (Reference, error) {
	orig := s
	hfScheme := false
	if rest, ok := strings.CutPrefix(s, "hf://"); ok {
		s, hfScheme = rest, true
	}
	id, rev, hasRev := strings.Cut(s, "@")
	if !hasRev && hfScheme {
		id, rev, hasRev = strings.Cut(s, ":")
	}
	if hasRev && rev == "" {
		return Reference{}, fmt.Errorf("hub: reference %q: empty revision after the separator", orig)
	}
	ns, name, err := splitRepoID(id)
	if err != nil {
		return Reference{}, fmt.Errorf("hub: reference %q: %w", orig, err)
	}
	if hasRev {
		if err := ValidateRevision(rev); err != nil {
			return Reference{}, fmt.Errorf("hub: reference %q: %w", orig, err)
		}
	}
	return Reference{Namespace: ns, Name: name, Revision: rev}, nil
}

// RepoID is "namespace/name", the id the Hub's URLs use.
func (r Reference) RepoID() string { return r.Namespace + "/" + r.Name }

// Rev is the revision to ask the Hub for: Revision, or DefaultRevision when it is empty.
func (r Reference) Rev() string {
	if r.Revision == "" {
		return DefaultRevision
	}
	return r.Revision
}

// String is the canonical form, "hf://namespace/name@revision", or without "@revision" when the
// reference names none.
func (r Reference) String() string {
	if r.Revision == "" {
		return "hf://" + r.RepoID()
	}
	return "hf://" + r.RepoID() + "@" + r.Revision
}

// IsCommit reports whether rev is a full 40-hex commit id, which needs no resolving.
func IsCommit(rev string) bool { return commitPattern.MatchString(rev) }

// ValidateRepoID checks a repo id against the Hub's rules: "namespace/name", each part made of
// letters, digits, '-', '_' and '.', no "--" or "..", at most 96 characters.
func ValidateRepoID(id string) error {
	_, _, err := splitRepoID(id)
	return err
}

func splitRepoID(id string) (namespace, name string, err error) {
	if id == "" {
		return "", "", fmt.Errorf("empty repo id")
	}
	if len(id) > maxRepoIDLength {
		return "", "", fmt.Errorf("repo id %q is longer than %d characters", id, maxRepoIDLength)
	}
	namespace, name, ok := strings.Cut(id, "/")
	if !ok || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("repo id %q must be namespace/name", id)
	}
	// "--" is the cache's separator and ".." a path escape; the Hub refuses both.
	if strings.Contains(id, "--") || strings.Contains(id, "..") {
		return "", "", fmt.Errorf("repo id %q contains '--' or '..'", id)
	}
	for _, seg := range []string{namespace, name} {
		if !repoSegment.MatchString(seg) {
			return "", "", fmt.Errorf("repo id %q: %q is not a valid namespace or name", id, seg)
		}
	}
	return namespace, name, nil
}

// ValidateRevision checks a revision against git's rules for ref names, which also keeps it safe
// as a path under the cache's refs/ directory.
func ValidateRevision(rev string) error {
	if rev == "" {
		return fmt.Errorf("empty revision")
	}
	if len(rev) > 255 {
		return fmt.Errorf("revision %q is longer than 255 characters", rev)
	}
	if strings.HasPrefix(rev, "/") || strings.HasSuffix(rev, "/") || strings.HasSuffix(rev, ".") ||
		strings.HasSuffix(rev, ".lock") || strings.Contains(rev, "//") || strings.Contains(rev, "..") ||
		strings.Contains(rev, "@{") || rev == "@" {
		return fmt.Errorf("revision %q is not a valid git ref name", rev)
	}
	for _, c := range rev {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return fmt.Errorf("revision %q contains the character %q", rev, c)
		}
	}
	for seg := range strings.SplitSeq(rev, "/") {
		if strings.HasPrefix(seg, ".") {
			return fmt.Errorf("revision %q has a path segment starting with '.'", rev)
		}
	}
	return nil
}
