package hubtest

import (
	"fmt"
	"os"
	"path/filepath"
)

// Option configures a Server.
type Option func(*Server) error

// RepoOption configures one repository added with WithModel or WithModelDir.
type RepoOption func(*repo) error

// WithModel adds a model repository whose branch main holds files (path -> content) at one
// commit. File paths use '/'. Which files are LFS files follows IsLFS.
func WithModel(id string, files map[string][]byte, opts ...RepoOption) Option {
	return func(s *Server) error {
		fs := make(map[string]*file, len(files))
		for p, data := range files {
			f, err := memFile(p, data)
			if err != nil {
				return err
			}
			fs[p] = f
		}
		return s.addRepo(id, fs, opts)
	}
}

// WithModelDir adds a model repository whose branch main holds the files under dir, read from
// disk when served (so large files cost no memory). The commit id depends only on the content.
func WithModelDir(id, dir string, opts ...RepoOption) Option {
	return func(s *Server) error {
		fs, err := readTree(dir)
		if err != nil {
			return err
		}
		return s.addRepo(id, fs, opts)
	}
}

// WithReposDir adds one public model repository per DIR/<org>/<name>/ directory.
func WithReposDir(dir string) Option {
	return func(s *Server) error {
		orgs, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("hubtest: %w", err)
		}
		for _, org := range orgs {
			if !org.IsDir() {
				continue
			}
			names, err := os.ReadDir(filepath.Join(dir, org.Name()))
			if err != nil {
				return fmt.Errorf("hubtest: %w", err)
			}
			for _, name := range names {
				if !name.IsDir() {
					continue
				}
				id := org.Name() + "/" + name.Name()
				if err := WithModelDir(id, filepath.Join(dir, org.Name(), name.Name()))(s); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// WithToken makes token a valid access token for user. Requests with a token the server does
// not know are refused with 401, as the Hub refuses invalid credentials.
func WithToken(token, user string) Option {
	return func(s *Server) error {
		if token == "" || user == "" {
			return fmt.Errorf("hubtest: WithToken needs a token and a user")
		}
		s.tokens[token] = user
		return nil
	}
}

// WithFault injects a fault; see Fault. Faults are matched in the order they were added.
func WithFault(f Fault) Option {
	return func(s *Server) error { s.AddFault(f); return nil }
}

// WithTreePageSize sets how many entries one page of a tree listing holds (the Hub's is 1000),
// so tests can exercise pagination with a few files.
func WithTreePageSize(n int) Option {
	return func(s *Server) error {
		if n < 1 {
			return fmt.Errorf("hubtest: tree page size must be positive, got %d", n)
		}
		s.pageSize = n
		return nil
	}
}

// WithCDNURL sets the base URL at which the CDN handler (Server.CDN) is served; LFS downloads
// redirect there. NewServer sets it for you.
func WithCDNURL(url string) Option {
	return func(s *Server) error { s.SetCDNURL(url); return nil }
}

// WithOrganization declares an organisation for /api/organizations/{name}/overview, with the
// Hub's "verified" flag.
func WithOrganization(name string, verified bool) Option {
	return func(s *Server) error { s.orgs[name] = verified; return nil }
}

// Private makes the repository private: only tokens granted access see it; others get
// RepoNotFound (401 anonymous, 404 with a token), as on the Hub.
func Private() RepoOption { return func(r *repo) error { r.private = true; return nil } }

// Gated makes the repository gated ("auto" or "manual"): its metadata is public, but files can
// be downloaded only with a token granted access (401 GatedRepo anonymous, 403 otherwise).
func Gated(mode string) RepoOption {
	return func(r *repo) error {
		if mode != "auto" && mode != "manual" {
			return fmt.Errorf("hubtest: gated mode must be auto or manual, got %q", mode)
		}
		r.gated = mode
		return nil
	}
}

// Disabled makes the Hub refuse all access to the repository (403, "Access to this resource is
// disabled.").
func Disabled() RepoOption { return func(r *repo) error { r.disabled = true; return nil } }

// GrantAccess lets tokens (declared with WithToken) into a private or gated repository.
func GrantAccess(tokens ...string) RepoOption {
	return func(r *repo) error {
		for _, t := range tokens {
			r.access[t] = true
		}
		return nil
	}
}

// Tag tags the repository's first commit.
func Tag(name string) RepoOption {
	return func(r *repo) error { r.tags[name] = r.branches["main"]; return nil }
}

// Branch creates a branch at the repository's first commit.
func Branch(name string) RepoOption {
	return func(r *repo) error { r.branches[name] = r.branches["main"]; return nil }
}

// RenamedFrom makes requests for the old id answer with a 307 to the repository, as the Hub does
// for renamed and transferred repos.
func RenamedFrom(oldID string) RepoOption {
	return func(r *repo) error { r.renamedFrom = append(r.renamedFrom, oldID); return nil }
}

// WithResolveCacheRedirects makes resolve answer plain git files with a relative 307 to
// /api/resolve-cache/models/{repo}/{commit}/{path}, as the Hub does at times, so clients must
// follow same-host redirects (and keep the X-Repo-Commit of the final answer).
func WithResolveCacheRedirects() Option {
	return func(s *Server) error { s.resolveCache = true; return nil }
}
