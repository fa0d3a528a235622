package modelverify

import (
	"fmt"
	"net"
	"path"
	"strings"

	"github.com/echelongraph/go-modelverify/internal/glob"
)

// Registry is an approved OCI registry: the host oci:// references may name, and the
// repositories on it that may be loaded from.
type Registry struct {
	// Name is an optional short name, for messages and `verifier policy show`.
	Name string `json:"name,omitempty"`
	// Host is the registry's host as references name it, with its port if any: "ghcr.io",
	// "registry.internal:5000", "127.0.0.1:5000". Loading lower-cases it.
	Host string `json:"host"`
	// Repositories are path.Match globs of the repositories that may be loaded from
	// ("acme/*", "models/llama"); empty means every repository on the host. A publisher must
	// still claim the repository (Publisher.OCI).
	Repositories []string `json:"repositories,omitempty"`
	// PlainHTTP says the registry is reached over plain HTTP. Only a loopback host (localhost,
	// 127.0.0.0/8, ::1) may be, and a loopback host always is (as docker and go-containerregistry
	// do), so it must say so: a policy that reads "plainHTTP: true" says what happens.
	PlainHTTP bool `json:"plainHTTP,omitempty"`
}

// AllowsRepository reports whether repo ("acme/model") is one the registry lists.
func (r *Registry) AllowsRepository(repo string) bool {
	if len(r.Repositories) == 0 {
		return true
	}
	for _, g := range r.Repositories {
		if ok, err := path.Match(g, repo); err == nil && ok {
			return true
		}
	}
	return false
}

// Registry returns the approved registry for host ("ghcr.io", "127.0.0.1:5000").
func (p *Policy) Registry(host string) (*Registry, bool) {
	host = strings.ToLower(host)
	for i := range p.Registries {
		if p.Registries[i].Host == host {
			return &p.Registries[i], true
		}
	}
	return nil, false
}

// registryHosts lists the approved registries' hosts, for messages.
func (p *Policy) registryHosts() string {
	var out []string
	for _, r := range p.Registries {
		out = append(out, r.Host)
	}
	if len(out) == 0 {
		return "none: the policy has no registries"
	}
	return strings.Join(out, ", ")
}

// ociPattern is a Publisher.OCI entry: a registry host and a glob of repositories on it.
type ociPattern struct {
	host, repo string
}

func parseOCIPattern(s string) (ociPattern, error) {
	s = strings.TrimPrefix(s, "oci://")
	host, repo, ok := strings.Cut(s, "/")
	if !ok || repo == "" {
		return ociPattern{}, fmt.Errorf("%q must be host/repository, with a glob in the repository part (\"ghcr.io/acme/*\")", s)
	}
	if host != strings.ToLower(host) || repo != strings.ToLower(repo) {
		return ociPattern{}, fmt.Errorf("%q must be lower-case, as registries name repositories", s)
	}
	if err := checkRegistryHost(host); err != nil {
		return ociPattern{}, err
	}
	if strings.ContainsAny(repo, "@:") || strings.HasSuffix(repo, "/") || path.Clean(repo) != repo || strings.HasPrefix(repo, "../") || repo == ".." {
		return ociPattern{}, fmt.Errorf("%q must name repositories, without a tag, digest, '..' or trailing '/'", s)
	}
	if _, err := path.Match(repo, ""); err != nil {
		return ociPattern{}, fmt.Errorf("%q: %v", s, err)
	}
	return ociPattern{host: host, repo: repo}, nil
}

func (o ociPattern) match(host, repo string) bool {
	if o.host != strings.ToLower(host) {
		return false
	}
	ok, err := path.Match(o.repo, repo)
	return err == nil && ok
}

// OCIPublisher returns the publisher that claims the OCI repository name ("ghcr.io/acme/model").
// When several claim it, the most specific entry wins: an exact repository over a glob, then
// the glob with more literal characters; two publishers equally specific are refused.
func (p *Policy) OCIPublisher(name string) (*Publisher, error) {
	host, repo, ok := strings.Cut(name, "/")
	if !ok {
		return nil, fmt.Errorf("%w: %q is not host/repository", ErrPublisherNotAllowed, name)
	}
	var best, tie *Publisher
	bestRank := specificity{rank: -1}
	for i := range p.Publishers {
		for _, s := range p.Publishers[i].OCI {
			pat, err := parseOCIPattern(s)
			if err != nil || !pat.match(host, repo) {
				continue
			}
			rank := specificity{rank: 2}
			if strings.ContainsAny(pat.repo, "*?[") {
				rank = specificity{rank: 1, literals: glob.Literals(pat.repo)}
			}
			switch {
			case best == nil || bestRank.less(rank):
				best, bestRank, tie = &p.Publishers[i], rank, nil
			case !rank.less(bestRank) && best != &p.Publishers[i]:
				tie = &p.Publishers[i]
			}
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: no publisher claims the OCI repository %s", ErrPublisherNotAllowed, name)
	}
	if tie != nil {
		// Never guessed: which identities apply would depend on the order of the policy.
		return nil, fmt.Errorf("%w: publishers %q and %q claim the OCI repository %s equally specifically; make one entry more specific",
			ErrPublisherNotAllowed, best.Name, tie.Name, name)
	}
	return best, nil
}

// claimedOCI lists every publisher's OCI claims, for messages.
func (p *Policy) claimedOCI() string {
	var out []string
	for _, pub := range p.Publishers {
		out = append(out, pub.OCI...)
	}
	if len(out) == 0 {
		return "none: no publisher has oci entries"
	}
	return strings.Join(out, ", ")
}

// checkRegistryHost accepts "host" or "host:port", lower-case.
func checkRegistryHost(hostport string) error {
	host := hostport
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		host = h
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return fmt.Errorf("%q has an invalid port", hostport)
		}
	} else if strings.Contains(hostport, ":") && net.ParseIP(hostport) == nil {
		return fmt.Errorf("%q is not host or host:port", hostport)
	}
	if host != strings.ToLower(host) {
		return fmt.Errorf("%q must be lower-case", hostport)
	}
	if err := checkHostName(host); err != nil {
		return err
	}
	return nil
}

// registryHostName is a registry host without its port.
func registryHostName(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// checkRegistries validates the registries and the publishers' OCI claims against them.
func (p *Policy) checkRegistries(ps *problems) {
	hosts := map[string]int{}
	names := map[string]int{}
	for i := range p.Registries {
		r := &p.Registries[i]
		at := fmt.Sprintf("registries[%d]", i)
		if r.Name != "" {
			if !endpointName.MatchString(r.Name) {
				ps.add(at+".name", "%q must be lower-case letters, digits and '-' (at most 63)", r.Name)
			} else if j, dup := names[r.Name]; dup {
				ps.add(at+".name", "%q is already the name of registries[%d]", r.Name, j)
			} else {
				names[r.Name] = i
			}
		}
		switch err := checkRegistryHost(r.Host); {
		case r.Host == "":
			ps.add(at+".host", "required: the registry's host as oci:// references name it (\"ghcr.io\")")
		case strings.Contains(r.Host, "/"):
			ps.add(at+".host", "%q must be a host (and port), not a URL or a repository; list repositories in repositories", r.Host)
		case err != nil:
			ps.add(at+".host", "%v", err)
		default:
			if j, dup := hosts[r.Host]; dup {
				ps.add(at+".host", "%q is already registries[%d]", r.Host, j)
			}
			hosts[r.Host] = i
			loop := isLoopback(registryHostName(r.Host))
			if r.PlainHTTP && !loop {
				ps.add(at+".plainHTTP", "%q is not a loopback host: plain HTTP is allowed only for localhost, 127.0.0.0/8 and ::1", r.Host)
			}
			if !r.PlainHTTP && loop {
				ps.add(at+".plainHTTP", "%q is a loopback host, which is reached over plain HTTP: set plainHTTP: true to approve that", r.Host)
			}
		}
		for j, g := range r.Repositories {
			field := fmt.Sprintf("%s.repositories[%d]", at, j)
			if _, err := path.Match(g, ""); err != nil || g == "" || strings.HasPrefix(g, "/") || strings.ContainsAny(g, "@:") {
				ps.add(field, "%q must be a repository or a path.Match glob of repositories (\"acme/*\")", g)
			}
		}
	}
	type claim struct{ pub, j int }
	claims := map[ociPattern]claim{}
	for i := range p.Publishers {
		pub := &p.Publishers[i]
		at := fmt.Sprintf("publishers[%d]", i)
		for j, s := range pub.OCI {
			field := fmt.Sprintf("%s.oci[%d]", at, j)
			pat, err := parseOCIPattern(s)
			if err != nil {
				ps.add(field, "%v", err)
				continue
			}
			if _, ok := p.Registry(pat.host); !ok {
				ps.add(field, "%q is on %s, which is not in registries (approved: %s); add it to registries first", s, pat.host, p.registryHosts())
			}
			if c, dup := claims[pat]; dup {
				if c.pub == i {
					ps.add(field, "%q is listed twice (also oci[%d])", s, c.j)
				} else {
					ps.add(field, "%q is already claimed by publisher %q (publishers[%d].oci[%d])", s, p.Publishers[c.pub].Name, c.pub, c.j)
				}
				continue
			}
			claims[pat] = claim{i, j}
		}
		if pub.RequireDigest && len(pub.OCI) == 0 {
			ps.add(at+".requireDigest", "applies to oci:// references, and the publisher claims no OCI repository (oci)")
		}
	}
}
