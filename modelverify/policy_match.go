package modelverify

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/echelongraph/go-modelverify/internal/glob"
)

// Publisher returns the publisher that owns repoID ("org/name"). When several namespaces match,
// the most specific wins:
//  1. an exact "org/name";
//  2. then "org/<glob>", the glob with the most literal (non-wildcard) characters first;
//  3. then "org" (equivalently "org/*"), the whole organisation.
//
// Two different publishers matching at the same rank is refused rather than guessed. Matching
// is case-sensitive. The error wraps ErrPublisherNotAllowed.
func (p *Policy) Publisher(repoID string) (*Publisher, error) {
	org, name, ok := strings.Cut(repoID, "/")
	if !ok || org == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("%w: %q is not a repository id (org/name)", ErrPublisherNotAllowed, repoID)
	}
	var best *Publisher
	var bestRank specificity
	var tied *Publisher
	for i := range p.Publishers {
		pub := &p.Publishers[i]
		for _, ns := range pub.Namespaces {
			pat, err := parseNamespacePattern(ns)
			if err != nil || !pat.match(org, name) {
				continue
			}
			r := pat.specificity()
			switch {
			case best == nil || bestRank.less(r):
				best, bestRank, tied = pub, r, nil
			case r == bestRank && best != pub:
				tied = pub
			}
		}
	}
	switch {
	case best == nil:
		return nil, fmt.Errorf("%w: no publisher in the policy claims %q; the policy claims %s",
			ErrPublisherNotAllowed, repoID, p.claimedNamespaces())
	case tied != nil:
		return nil, fmt.Errorf("%w: publishers %q and %q both claim %q equally specifically; make one namespace more specific",
			ErrPublisherNotAllowed, best.Name, tied.Name, repoID)
	}
	return best, nil
}

// maxNamespacesInMessage bounds the list of namespaces a refusal names, so that a policy with
// hundreds of publishers still gives a one-line message.
const maxNamespacesInMessage = 12

// claimedNamespaces lists the namespaces the policy's publishers claim, for a refusal of a
// repository none of them claims: the reader sees at once whether it is a typo or a publisher
// the policy does not know.
func (p *Policy) claimedNamespaces() string {
	var all []string
	for _, pub := range p.Publishers {
		all = append(all, pub.Namespaces...)
	}
	switch {
	case len(all) == 0:
		return "no namespaces"
	case len(all) > maxNamespacesInMessage:
		return strings.Join(all[:maxNamespacesInMessage], ", ") + fmt.Sprintf(" and %d more", len(all)-maxNamespacesInMessage)
	}
	return strings.Join(all, ", ")
}

// Endpoint returns the endpoint whose name is nameOrURL, or whose URL equals nameOrURL once both
// are normalised ("https://HuggingFace.co/" finds "https://huggingface.co").
func (p *Policy) Endpoint(nameOrURL string) (*Endpoint, bool) {
	for i := range p.Endpoints {
		if e := &p.Endpoints[i]; e.Name != "" && e.Name == nameOrURL {
			return e, true
		}
	}
	u, err := normaliseEndpointURL(nameOrURL)
	if err != nil {
		return nil, false
	}
	for i := range p.Endpoints {
		e := &p.Endpoints[i]
		if eu, err := normaliseEndpointURL(e.URL); err == nil && eu == u {
			return e, true
		}
	}
	return nil, false
}

// AllowsEndpoint reports whether the publisher's models may be pulled from e: always when the
// publisher lists no endpoints, otherwise only from one it names (by name or URL).
func (pub *Publisher) AllowsEndpoint(e *Endpoint) bool {
	if e == nil {
		return false
	}
	if len(pub.Endpoints) == 0 {
		return true
	}
	eu, err := normaliseEndpointURL(e.URL)
	if err != nil {
		return false
	}
	for _, ref := range pub.Endpoints {
		if e.Name != "" && ref == e.Name {
			return true
		}
		if u, err := normaliseEndpointURL(ref); err == nil && u == eu {
			return true
		}
	}
	return false
}

// AllowsRedirect reports whether a download from e may follow a redirect to target: the same
// scheme, host and port as the endpoint (a renamed repository), or a host in CDNHosts. The
// target must be https, or http to a loopback address (tests), and carry no user info. A
// CDNHosts entry without a port matches only the scheme's default port.
func (e *Endpoint) AllowsRedirect(target *url.URL) bool {
	if target == nil || target.User != nil || target.Opaque != "" {
		return false
	}
	scheme := strings.ToLower(target.Scheme)
	host := strings.ToLower(strings.TrimSuffix(target.Hostname(), "."))
	if host == "" {
		return false
	}
	switch scheme {
	case "https":
	case "http":
		if !isLoopback(host) {
			return false
		}
	default:
		return false
	}
	port := target.Port()
	if port == "" {
		port = defaultPort(scheme)
	}
	if base, err := url.Parse(e.URL); err == nil && strings.EqualFold(base.Scheme, scheme) {
		basePort := base.Port()
		if basePort == "" {
			basePort = defaultPort(base.Scheme)
		}
		if strings.EqualFold(base.Hostname(), host) && basePort == port {
			return true
		}
	}
	for _, entry := range e.CDNHosts {
		hp, err := parseHostPattern(entry)
		if err != nil {
			continue
		}
		want := hp.port
		if want == "" {
			want = defaultPort(scheme)
		}
		if want == port && hp.matchHost(host) {
			return true
		}
	}
	return false
}

func defaultPort(scheme string) string {
	if strings.EqualFold(scheme, "http") {
		return "80"
	}
	return "443"
}

// normaliseEndpointURL returns the canonical form of a Hub base URL, as HF_ENDPOINT would hold
// it: "https://host[:port][/path]" with a lower-case scheme and host, no default port and no
// trailing slash. Plain http is accepted only for loopback hosts, which tests use.
func normaliseEndpointURL(raw string) (string, error) {
	if strings.ContainsFunc(raw, isSpaceOrControl) {
		return "", fmt.Errorf("%q contains white space or a control character", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %v", raw, errors.Unwrap(err))
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case u.Opaque != "" || u.Host == "":
		return "", fmt.Errorf("%q must be an absolute URL such as https://huggingface.co", raw)
	case u.User != nil:
		return "", fmt.Errorf("%q must not carry user info; give credentials through HF_TOKEN", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("%q must not have a query or fragment", raw)
	}
	host := strings.ToLower(u.Hostname())
	if err := checkHostName(host); err != nil {
		return "", fmt.Errorf("%q: %v", raw, err)
	}
	switch scheme {
	case "https":
	case "http":
		if !isLoopback(host) {
			return "", fmt.Errorf("%q must use https (plain http is accepted only for loopback test servers)", raw)
		}
	default:
		return "", fmt.Errorf("%q must use https", raw)
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q has an invalid port", raw)
		}
		if port == defaultPort(scheme) {
			port = ""
		}
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if p != "" && (path.Clean(p) != p || strings.Contains(p, "/./") || strings.Contains(p, "/../")) {
		return "", fmt.Errorf("%q has a path that is not clean", raw)
	}
	hostport := host
	if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	if port != "" {
		hostport += ":" + port
	}
	return scheme + "://" + hostport + p, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var hostLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// checkHostName accepts a lower-case DNS name or an IP address.
func checkHostName(host string) error {
	if host == "" {
		return errors.New("empty host")
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if len(host) > 253 {
		return fmt.Errorf("host %q is longer than 253 characters", host)
	}
	for label := range strings.SplitSeq(host, ".") {
		if !hostLabel.MatchString(label) {
			return fmt.Errorf("%q is not a valid host name", host)
		}
	}
	return nil
}

// hostPattern is a CDNHosts entry: an exact host, or "*." and a suffix of at least two labels,
// and an optional port.
type hostPattern struct {
	host     string // without the "*." of a wildcard
	wildcard bool
	port     string
}

func parseHostPattern(s string) (hostPattern, error) {
	var hp hostPattern
	raw := s
	s = strings.ToLower(s)
	if strings.ContainsFunc(s, isSpaceOrControl) || strings.ContainsAny(s, "/?#@") {
		return hp, fmt.Errorf("%q must be a host name, not a URL", raw)
	}
	if strings.HasPrefix(s, "[") {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			end := strings.IndexByte(s, ']')
			if end != len(s)-1 {
				return hp, fmt.Errorf("%q is not a valid [IPv6] host", raw)
			}
			h, p = s[1:end], ""
		}
		if ip := net.ParseIP(h); ip == nil || ip.To4() != nil {
			return hp, fmt.Errorf("%q is not a valid [IPv6] host", raw)
		}
		hp.host, hp.port = h, p
	} else if strings.Contains(s, ":") {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return hp, fmt.Errorf("%q is not host or host:port (write IPv6 addresses in brackets)", raw)
		}
		hp.host, hp.port = h, p
	} else {
		hp.host = s
	}
	if hp.port != "" {
		n, err := strconv.Atoi(hp.port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != hp.port {
			return hp, fmt.Errorf("%q has an invalid port", raw)
		}
	}
	if rest, ok := strings.CutPrefix(hp.host, "*."); ok {
		hp.host, hp.wildcard = rest, true
		if net.ParseIP(rest) != nil || strings.Count(rest, ".") < 1 {
			return hp, fmt.Errorf("%q: a wildcard needs a domain of at least two labels after \"*.\" (\"*.hf.co\", not \"*.co\")", raw)
		}
	}
	if strings.Contains(hp.host, "*") {
		return hp, fmt.Errorf("%q: '*' is allowed only as a leading \"*.\"", raw)
	}
	if err := checkHostName(hp.host); err != nil {
		return hp, fmt.Errorf("%q: %v", raw, err)
	}
	return hp, nil
}

func (hp hostPattern) matchHost(host string) bool {
	if hp.wildcard {
		return strings.HasSuffix(host, "."+hp.host)
	}
	return host == hp.host
}

func (hp hostPattern) String() string {
	h := hp.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if hp.wildcard {
		h = "*." + h
	}
	if hp.port != "" {
		h += ":" + hp.port
	}
	return h
}

// namespacePattern is a parsed Publisher.Namespaces entry. The organisation is always literal,
// because a publisher owns named organisations and a wildcard there could claim anyone's.
type namespacePattern struct {
	org  string
	name string // "*" for the whole organisation
	glob bool   // name has wildcards
}

// repoSegment is the Hub's rule for either half of a repo id (as hub.ValidateRepoID).
var repoSegment = regexp.MustCompile(`^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)

// globSegment is a name glob: the Hub's name characters plus path.Match's *, ?, [ ] and ^.
var globSegment = regexp.MustCompile(`^[A-Za-z0-9_.\-*?\[\]^]+$`)

func parseNamespacePattern(s string) (namespacePattern, error) {
	org, name, hasName := strings.Cut(s, "/")
	if strings.ContainsAny(org, "*?[]^\\") {
		return namespacePattern{}, fmt.Errorf("%q: the organisation part must be literal; wildcards are allowed only after the '/'", s)
	}
	if !repoSegment.MatchString(org) || len(org) > 96 || strings.Contains(org, "--") || strings.Contains(org, "..") {
		return namespacePattern{}, fmt.Errorf("%q: %q is not a valid Hub organisation name", s, org)
	}
	if !hasName || (name != "" && strings.Trim(name, "*") == "") {
		return namespacePattern{org: org, name: "*", glob: true}, nil
	}
	if strings.Contains(name, "/") {
		return namespacePattern{}, fmt.Errorf("%q has more than one '/'; use org, org/name or org/<glob>", s)
	}
	if !strings.ContainsAny(name, "*?[") {
		if !repoSegment.MatchString(name) || len(s) > 96 || strings.Contains(name, "--") || strings.Contains(name, "..") {
			return namespacePattern{}, fmt.Errorf("%q: %q is not a valid Hub repository name", s, name)
		}
		return namespacePattern{org: org, name: name}, nil
	}
	if !globSegment.MatchString(name) {
		return namespacePattern{}, fmt.Errorf("%q: the name glob may hold only letters, digits, '-', '_', '.', and * ? [ ] ^", s)
	}
	if _, err := path.Match(name, ""); err != nil {
		return namespacePattern{}, fmt.Errorf("%q: %v", s, err)
	}
	return namespacePattern{org: org, name: name, glob: true}, nil
}

// key identifies the set of repositories a pattern claims, so that "org" and "org/*" collide.
func (p namespacePattern) key() string { return p.org + "/" + p.name }

func (p namespacePattern) match(org, name string) bool {
	if org != p.org {
		return false
	}
	if !p.glob {
		return name == p.name
	}
	ok, err := path.Match(p.name, name)
	return err == nil && ok
}

// specificity orders matching patterns: rank first (exact 2, glob 1, whole organisation 0),
// then the number of literal characters in a glob.
type specificity struct{ rank, literals int }

func (a specificity) less(b specificity) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.literals < b.literals
}

func (p namespacePattern) specificity() specificity {
	switch {
	case !p.glob:
		return specificity{rank: 2}
	case p.name == "*":
		return specificity{rank: 0}
	}
	return specificity{rank: 1, literals: glob.Literals(p.name)}
}
