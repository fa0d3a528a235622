package registry

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Scheme is the prefix of a model reference in a registry.
const Scheme = "oci://"

var (
	sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	tagPattern   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	// repositoryPattern is the OCI distribution spec's repository name: lowercase path
	// components separated by '/', each of alphanumerics joined by '.', '_', '__' or dashes.
	repositoryPattern = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
)

// Reference names a model in an OCI registry: a repository on a registry host, and a tag or a
// manifest digest. Once a tag is resolved (Client.Resolve), the reference carries the digest and
// everything after it uses the digest only, so a tag that moves meanwhile changes nothing.
type Reference struct {
	// Registry is the registry's host, with its port if any ("ghcr.io", "127.0.0.1:5000").
	Registry string
	// Repository is the repository's path on the registry ("acme/models/llama").
	Repository string
	// Tag is the tag the reference was written with, empty if none. It is kept, after the
	// digest is known, only to say where the digest came from.
	Tag string
	// Digest is the manifest digest ("sha256:<hex>"), empty until the reference is pinned.
	Digest string
}

// ParseReference parses "oci://host/repository:tag", "oci://host/repository@sha256:<hex>" or
// "oci://host/repository:tag@sha256:<hex>" (the digest wins; the tag is kept as a label). The
// oci:// prefix may be left out. The host is always explicit: "acme/model" alone would mean
// Docker Hub to docker and something else to other tools, so it is refused. A reference without
// a tag or digest means the tag "latest", as in docker.
func ParseReference(s string) (Reference, error) {
	orig := s
	s = strings.TrimPrefix(s, Scheme)
	if strings.Contains(s, "://") {
		return Reference{}, fmt.Errorf("registry: reference %q: %w: only the %s scheme names a registry model", orig, ErrInvalidReference, Scheme)
	}
	var ref Reference
	if at := strings.LastIndex(s, "@"); at >= 0 {
		ref.Digest = s[at+1:]
		s = s[:at]
		if !sha256Digest.MatchString(ref.Digest) {
			return Reference{}, fmt.Errorf("registry: reference %q: %w: digest %q is not sha256:<64 lowercase hex>", orig, ErrInvalidReference, ref.Digest)
		}
	}
	host, path, ok := strings.Cut(s, "/")
	if !ok || host == "" || path == "" {
		return Reference{}, fmt.Errorf("registry: reference %q: %w: want %shost/repository[:tag][@sha256:...]", orig, ErrInvalidReference, Scheme)
	}
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return Reference{}, fmt.Errorf("registry: reference %q: %w: %q is not a registry host (name it in full, e.g. docker.io/%s)", orig, ErrInvalidReference, host, s)
	}
	if colon := strings.LastIndex(path, ":"); colon >= 0 {
		ref.Tag = path[colon+1:]
		path = path[:colon]
		if !tagPattern.MatchString(ref.Tag) {
			return Reference{}, fmt.Errorf("registry: reference %q: %w: tag %q is not a valid tag", orig, ErrInvalidReference, ref.Tag)
		}
	}
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	if len(path) > 255 || !repositoryPattern.MatchString(path) {
		return Reference{}, fmt.Errorf("registry: reference %q: %w: repository %q is not a valid repository name (lowercase components separated by /)", orig, ErrInvalidReference, path)
	}
	repo, err := name.NewRegistry(host, name.StrictValidation)
	if err != nil {
		return Reference{}, fmt.Errorf("registry: reference %q: %w: %v", orig, ErrInvalidReference, err)
	}
	if repo.RegistryStr() != host {
		// go-containerregistry rewrites some names (docker.io/x -> index.docker.io/library/x);
		// the reference must name exactly one place, the one written.
		return Reference{}, fmt.Errorf("registry: reference %q: %w: the registry would be read as %s", orig, ErrInvalidReference, repo.RegistryStr())
	}
	ref.Registry, ref.Repository = host, path
	return ref, nil
}

// String is the reference in its oci:// form.
func (r Reference) String() string {
	s := Scheme + r.Registry + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Pinned reports whether the reference names a manifest digest.
func (r Reference) Pinned() bool { return r.Digest != "" }

// Name is "host/repository", the repository as policies and audit records name it.
func (r Reference) Name() string { return r.Registry + "/" + r.Repository }

// repository is the reference's repository as go-containerregistry names it. Its own
// validation wants at least two characters in a repository name; the spec allows one, and
// ParseReference has checked the name already, so the parts are put together directly.
func (r Reference) repository(insecure bool) (name.Repository, error) {
	opts := []name.Option{name.StrictValidation}
	if insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(r.Registry, opts...)
	if err != nil {
		return name.Repository{}, err
	}
	return reg.Repo(r.Repository), nil
}

// digestName is the reference's digest as go-containerregistry names it; r must be pinned.
func (r Reference) digestName(insecure bool, digest string) (name.Digest, error) {
	repo, err := r.repository(insecure)
	if err != nil {
		return name.Digest{}, err
	}
	return repo.Digest(digest), nil
}
