package main

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/echelongraph/go-modelverify/hub"
	policyglob "github.com/echelongraph/go-modelverify/internal/glob"
	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
)

// The admission rules: what Kubernetes admits as a model location or a model-serving image. They
// are made once from a modelverify policy (its publishers, their namespaces and revision
// pinning) and the approved image registries, as regular expressions in the RE2 syntax that CEL
// (Kyverno), Rego (Gatekeeper) and Go all share. `verifier policy export` writes them into the
// admission policies and `verifier scan-workloads` decides with the very same expressions, so the
// load gate's policy, the admission policies and the scanner cannot drift apart.

// modelverifyRuntime is the ServingRuntime of examples/service, which takes its model from the
// MODELVERIFY_MODEL variable or from its first argument: arguments on its model are refused at
// admission, since any of them could name another model.
const modelverifyRuntime = "modelverify-service"

// modelEnvNames are the environment variables that name a model: KServe's custom-container
// STORAGE_URI and examples/service's MODELVERIFY_MODEL.
var modelEnvNames = []string{"STORAGE_URI", "MODELVERIFY_MODEL"}

// servingLabel is the label KServe puts on every pod of an InferenceService, which makes a pod
// model-serving wherever it runs.
const servingLabel = "serving.kserve.io/inferenceservice"

// KServe's components and the fields of each that hold one model location (v1beta1 CRD).
var (
	components = []string{"predictor", "transformer", "explainer"}
	// frameworks are the older per-framework specs, each with its own storageUri.
	frameworks = map[string][]string{
		"predictor": {"huggingface", "lightgbm", "onnx", "paddle", "pmml", "pytorch", "sklearn", "tensorflow", "triton", "xgboost"},
		"explainer": {"art"},
	}
)

// The URI grammar. A repository segment is the Hub's (letters, digits, '_', with '.' or '-'
// only between them), stricter than the Hub in that two separators never follow each other, so
// that "..", "--", ".-" and empty segments cannot occur. A revision is one or more such
// '/'-separated segments (a branch, a tag, refs/pr/1) or a commit; it follows '@' or KServe's
// ':' (hub.ParseReference reads both).
const (
	segmentRE  = `[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*`
	revisionRE = `[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*(?:/[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)*`
	commitRE   = `[0-9a-f]{40}`
	// imagePathRE is the repository path of an image reference after its registry prefix
	// (the distribution reference grammar), then an optional tag and digest.
	imagePathRE = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?`
)

// The oci:// grammar: the registry package's (registry.ParseReference), a host with its port,
// a repository of lower-case components (the distribution spec's), an optional tag and an
// optional sha256 digest (the digest wins when both are given, as in the gate).
const (
	ociHostRE   = `(?:[a-z0-9]+(?:[.-][a-z0-9]+)*|\[[0-9a-f:.]+\])(?::[0-9]+)?`
	ociRepoRE   = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*`
	ociTagRE    = `(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?`
	ociDigestRE = `@sha256:[0-9a-f]{64}`
	// ociRepoChars are the characters a repository name may hold, which a glob's '*', '?'
	// and classes are limited to ('/' only for a class: path.Match lets a class match it, never
	// '*' or '?'). The order matters: '-' last, where it is literal in a class.
	ociRepoChars = "abcdefghijklmnopqrstuvwxyz0123456789._/-"
)

// modelURIGrammar is the whole grammar of an admissible model location: hf://, or oci://.
var modelURIGrammar = `^(?:hf://` + segmentRE + `/` + segmentRE + `(?:[@:]` + revisionRE + `)?` +
	`|oci://` + ociHostRE + `/` + ociRepoRE + ociTagRE + `(?:` + ociDigestRE + `)?)$`

// admissionRules is everything the admission policies and the scanner decide with.
type admissionRules struct {
	// Patterns are the publishers' namespaces, one per entry, most specific first.
	Patterns []namespaceRule `json:"publishers"`
	// Registries are the approved image prefixes ("ghcr.io/echelongraph/").
	Registries []string `json:"imageRegistries"`
	// Namespaces are the namespaces whose pods are model-serving whatever their labels.
	Namespaces []string `json:"namespaces"`
	// ModelRegistries are the hosts of the policy's approved OCI registries, for messages.
	ModelRegistries []string `json:"modelRegistries"`

	image  *regexp.Regexp
	policy *modelverify.Policy
}

// namespaceRule is one namespace of a publisher as a regular expression.
type namespaceRule struct {
	Publisher string `json:"publisher"`
	Namespace string `json:"namespace"`
	Pinned    bool   `json:"requirePinnedRevision"`
	// Admit matches the URIs this namespace admits, revision rule included.
	Admit string `json:"admit"`
	// Shadow, when set, matches the repositories that another publisher claims at least as
	// specifically: such a repository is not this publisher's (the policy gives it to the more
	// specific one, or refuses a tie), so this rule must not admit it. One string, not a list,
	// because CEL map literals must be homogeneous.
	Shadow string `json:"shadow"`
	// Registry, on an oci:// entry, matches the repositories the policy's registries entry for
	// the host lists (its repositories globs): the gate needs both the registry's list and a
	// publisher's claim, and RE2 cannot intersect two expressions, so both are kept. Empty on
	// an hf:// entry.
	Registry string `json:"registry"`
	// RequireDigest, on an oci:// entry, is the publisher's requireDigest (Admit then wants
	// @sha256:...); Pinned is its requirePinnedRevision, for hf://.
	RequireDigest bool `json:"requireDigest"`

	rank       int
	host       string // oci:// entries: the registry host, the repository glob and it as RE2
	glob       string
	repoRE     string
	admit      *regexp.Regexp
	shadowRE   *regexp.Regexp
	registryRE *regexp.Regexp
}

// newAdmissionRules makes the rules from a policy and the approved image registries.
func newAdmissionRules(p *modelverify.Policy, registries, namespaces []string) (*admissionRules, error) {
	r := &admissionRules{Namespaces: slices.Clone(namespaces), policy: p}
	if len(p.Publishers) == 0 {
		return nil, fmt.Errorf("the policy has no publishers: the admission policy would admit no model")
	}
	for _, reg := range registries {
		if err := checkRegistryPrefix(reg); err != nil {
			return nil, err
		}
		r.Registries = append(r.Registries, reg)
	}
	if len(r.Registries) == 0 {
		return nil, usagef("give the approved image registries with --image-registry (for example ghcr.io/your-org/)")
	}
	for _, ns := range namespaces {
		if !regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`).MatchString(ns) || len(ns) > 63 {
			return nil, usagef("--namespace %q is not a Kubernetes namespace name", ns)
		}
	}
	type parsed struct {
		pub, ns, org, nameRE string
		rank                 int
		pinned               bool
	}
	var all []parsed
	for _, pub := range p.Publishers {
		for _, ns := range pub.Namespaces {
			org, nameRE, rank, err := namespaceRegexp(ns)
			if err != nil {
				return nil, fmt.Errorf("publisher %s: %w", pub.Name, err)
			}
			all = append(all, parsed{pub.Name, ns, org, nameRE, rank, pub.RequirePinnedRevision})
		}
	}
	// Most specific first, so that the generated lists read in the order the policy decides.
	slices.SortStableFunc(all, func(a, b parsed) int { return b.rank - a.rank })
	for _, a := range all {
		rev := `(?:[@:]` + revisionRE + `)?`
		if a.pinned {
			rev = `[@:]` + commitRE
		}
		nr := namespaceRule{Publisher: a.pub, Namespace: a.ns, Pinned: a.pinned, rank: a.rank,
			Admit: `^hf://` + regexp.QuoteMeta(a.org) + `/` + a.nameRE + rev + `$`}
		var shadows []string
		for _, b := range all {
			if b.pub != a.pub && b.org == a.org && b.rank >= a.rank {
				shadows = append(shadows, b.nameRE)
			}
		}
		if len(shadows) > 0 {
			nr.Shadow = `^hf://` + regexp.QuoteMeta(a.org) + `/(?:` + strings.Join(shadows, "|") + `)(?:[@:].*)?$`
		}
		r.Patterns = append(r.Patterns, nr)
	}
	oci, err := ociRules(p)
	if err != nil {
		return nil, err
	}
	for _, reg := range p.Registries {
		r.ModelRegistries = append(r.ModelRegistries, reg.Host)
	}
	r.Patterns = append(r.Patterns, oci...)
	return r, r.compile()
}

// ociRules are the publishers' oci entries as rules: the repository glob on its host, the
// registry's repository globs, digest pinning, and the entries of other publishers on the same
// host at least as specific (as modelverify.Policy.OCIPublisher ranks them: an exact repository,
// then the glob with the most literal characters; a tie is refused by the gate, so neither
// entry admits it).
func ociRules(p *modelverify.Policy) ([]namespaceRule, error) {
	type parsed struct {
		pub, entry, host, glob, repoRE string
		rank                           int
		digest                         bool
	}
	var all []parsed
	for _, pub := range p.Publishers {
		for _, entry := range pub.OCI {
			host, glob, ok := strings.Cut(strings.TrimPrefix(entry, "oci://"), "/")
			if !ok {
				return nil, fmt.Errorf("publisher %s: oci entry %q is not host/repository", pub.Name, entry)
			}
			if !regexp.MustCompile(`^` + ociHostRE + `$`).MatchString(host) {
				return nil, fmt.Errorf("publisher %s: oci entry %q: host %q is outside the admission grammar (%s)", pub.Name, entry, host, ociHostRE)
			}
			if _, ok := p.Registry(host); !ok {
				return nil, fmt.Errorf("publisher %s: oci entry %q names %s, which is not in the policy's registries", pub.Name, entry, host)
			}
			// A host the gate's own parser refuses (docker.io, which go-containerregistry
			// rewrites; a name without a dot) would be admitted here and refused at load.
			if _, err := registry.ParseReference(registry.Scheme + host + "/x"); err != nil {
				return nil, fmt.Errorf("publisher %s: oci entry %q: the load gate refuses every reference to %s: %v", pub.Name, entry, host, err)
			}
			re, rank, err := ociGlobRegexp(glob)
			if err != nil {
				return nil, fmt.Errorf("publisher %s: oci entry %q: %w", pub.Name, entry, err)
			}
			all = append(all, parsed{pub.Name, entry, host, glob, re, rank, pub.RequireDigest})
		}
	}
	slices.SortStableFunc(all, func(a, b parsed) int { return b.rank - a.rank })
	var out []namespaceRule
	for _, a := range all {
		ref := ociTagRE + `(?:` + ociDigestRE + `)?`
		if a.digest {
			ref = ociTagRE + ociDigestRE
		}
		host := regexp.QuoteMeta(a.host)
		nr := namespaceRule{Publisher: a.pub, Namespace: "oci://" + a.entry, RequireDigest: a.digest, rank: a.rank, host: a.host, glob: a.glob, repoRE: a.repoRE,
			Admit: `^oci://` + host + `/` + a.repoRE + ref + `$`}
		var shadows []string
		for _, b := range all {
			if b.pub != a.pub && b.host == a.host && b.rank >= a.rank && globsMayOverlap(a.glob, b.glob) {
				shadows = append(shadows, b.repoRE)
			}
		}
		if len(shadows) > 0 {
			nr.Shadow = `^oci://` + host + `/(?:` + strings.Join(shadows, "|") + `)(?:[:@].*)?$`
		}
		reg, _ := p.Registry(a.host)
		if len(reg.Repositories) == 0 {
			nr.Registry = `^oci://` + host + `/`
		} else {
			var globs []string
			for _, g := range reg.Repositories {
				re, _, err := ociGlobRegexp(g)
				if err != nil {
					return nil, fmt.Errorf("registry %s: repositories %q: %w", reg.Host, g, err)
				}
				globs = append(globs, re)
			}
			nr.Registry = `^oci://` + host + `/(?:` + strings.Join(globs, "|") + `)(?:[:@].*)?$`
		}
		out = append(out, nr)
	}
	return out, nil
}

// globsMayOverlap is false when two repository globs cannot match the same repository because
// their literal beginnings differ ("acme/models/*" and "acme/research/*"): such a claim cannot
// shadow the other, and leaving it out keeps the generated expressions to what matters. It is
// true whenever it cannot tell, which only costs a redundant (never a wrong) exclusion.
func globsMayOverlap(a, b string) bool {
	prefix := func(g string) string {
		if i := strings.IndexAny(g, `*?[\`); i >= 0 {
			return g[:i]
		}
		return g
	}
	// Every repository a glob matches begins with its literal beginning: a repository both
	// match begins with both, so one of them begins the other.
	pa, pb := prefix(a), prefix(b)
	return strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa)
}

// ociGlobRegexp turns a path.Match glob of repositories into RE2, and ranks it as the gate
// does (exact above every glob, globs by their literal characters). '*' and '?' never match
// '/' (path.Match's rule) and, like classes, match only characters a repository name may hold,
// so a glob can never reach past the repository into its tag or digest: each wildcard and
// class is written out as the explicit set of those characters that path.Match itself accepts
// for it. A class may match '/', as in path.Match.
func ociGlobRegexp(glob string) (string, int, error) {
	if _, err := path.Match(glob, ""); err != nil {
		return "", 0, fmt.Errorf("glob %q: %v", glob, err)
	}
	// Repository names are ASCII; a glob outside printable ASCII names nothing (and the
	// byte-wise conversion below relies on it).
	for i := 0; i < len(glob); i++ {
		if glob[i] < 0x21 || glob[i] > 0x7e {
			return "", 0, fmt.Errorf("glob %q holds a character no repository name has", glob)
		}
	}
	if !strings.ContainsAny(glob, "*?[") {
		return regexp.QuoteMeta(strings.ReplaceAll(glob, `\`, "")), 1 << 20, nil
	}
	set := func(pattern string, chars string) string {
		var in []string
		for _, c := range chars {
			if ok, _ := path.Match(pattern, string(c)); ok {
				in = append(in, string(c))
			}
		}
		if len(in) == 0 {
			return `[^\x00-\x{10FFFF}]` // matches nothing, as the class does among name characters
		}
		// Whole runs as ranges, for readable policies; '.', '_' and '/' are literal in a class,
		// and so is '-' last.
		class := strings.Join(in, "")
		class = strings.Replace(class, "abcdefghijklmnopqrstuvwxyz", "a-z", 1)
		class = strings.Replace(class, "0123456789", "0-9", 1)
		return "[" + class + "]"
	}
	var b strings.Builder
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			b.WriteString(set("?", ociRepoChars) + "*")
		case '?':
			b.WriteString(set("?", ociRepoChars))
		case '[':
			end := i + 1
			if end < len(glob) && glob[end] == '^' {
				end++
			}
			for end < len(glob) && glob[end] != ']' {
				if glob[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(glob) {
				return "", 0, fmt.Errorf("glob %q: unterminated '['", glob)
			}
			b.WriteString(set(glob[i:end+1], ociRepoChars))
			i = end
		case '\\':
			i++
			if i < len(glob) {
				b.WriteString(regexp.QuoteMeta(string(glob[i])))
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String(), 1<<10 + policyglob.Literals(glob), nil
}

func (r *admissionRules) compile() error {
	var err error
	if r.image, err = regexp.Compile(r.imageRegexp()); err != nil {
		return err
	}
	for i := range r.Patterns {
		nr := &r.Patterns[i]
		if nr.admit, err = regexp.Compile(nr.Admit); err != nil {
			return fmt.Errorf("publisher %s namespace %s: %w", nr.Publisher, nr.Namespace, err)
		}
		nr.shadowRE, nr.registryRE = nil, nil
		if nr.Registry != "" {
			if nr.registryRE, err = regexp.Compile(nr.Registry); err != nil {
				return fmt.Errorf("publisher %s entry %s: %w", nr.Publisher, nr.Namespace, err)
			}
		}
		if nr.Shadow != "" {
			if nr.shadowRE, err = regexp.Compile(nr.Shadow); err != nil {
				return fmt.Errorf("publisher %s namespace %s: %w", nr.Publisher, nr.Namespace, err)
			}
		}
	}
	return nil
}

// checkRegistryPrefix accepts "host[:port]/path/" prefixes, or a Docker Hub short name
// ("kserve/", which Docker Hub resolves to docker.io/kserve/): the trailing '/' keeps
// "ghcr.io/acme" from approving "ghcr.io/acme-evil/...".
func checkRegistryPrefix(reg string) error {
	if !strings.HasSuffix(reg, "/") {
		return usagef("--image-registry %q must end with '/' (ghcr.io/your-org/), or it would also approve %s-evil/...", reg, strings.TrimSuffix(reg, "/"))
	}
	if !regexp.MustCompile(`^[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?/(?:[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*/)*$`).MatchString(reg) {
		return usagef("--image-registry %q is not a registry host followed by an optional repository path, each ending with '/'", reg)
	}
	return nil
}

// namespaceRegexp turns a publisher namespace ("org", "org/name", "org/<glob>") into its
// organisation, a regular expression for the name, and its specificity rank as
// modelverify.Policy.Publisher orders them: exact names, then globs by their literal
// characters, then whole organisations.
func namespaceRegexp(ns string) (org, nameRE string, rank int, err error) {
	org, name, hasName := strings.Cut(ns, "/")
	if !hasName || strings.Trim(name, "*") == "" {
		return org, segmentRE, 0, nil
	}
	if !strings.ContainsAny(name, "*?[") {
		return org, regexp.QuoteMeta(name), 1 << 20, nil
	}
	// A glob: path.Match's syntax in RE2, limited to the characters a repository name may hold.
	if _, err := path.Match(name, ""); err != nil {
		return "", "", 0, fmt.Errorf("namespace %q: %v", ns, err)
	}
	const nameChar = `[A-Za-z0-9_.-]`
	var b strings.Builder
	literals := 0
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '*':
			b.WriteString(nameChar + `*`)
		case '?':
			b.WriteString(nameChar)
		case '[':
			end := strings.IndexByte(name[i+1:], ']')
			if end < 0 {
				return "", "", 0, fmt.Errorf("namespace %q: unterminated '['", ns)
			}
			class := name[i+1 : i+1+end]
			if strings.ContainsAny(class, `\[`) {
				return "", "", 0, fmt.Errorf("namespace %q: escapes and nested '[' are not supported in a class", ns)
			}
			// Both path.Match and RE2 negate a class with a leading '^'; the class is
			// intersected with the name characters by the grammar check that runs first.
			b.WriteString("[" + class + "]")
			i += 1 + end
		default:
			literals++
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return org, b.String(), 1<<10 + literals, nil
}

// admitsModel reports whether the rules admit a model location: the same test the generated
// policies make (the grammar, then a publisher namespace that admits it and is not shadowed).
func (r *admissionRules) admitsModel(uri string) bool {
	if !modelGrammar.MatchString(uri) {
		return false
	}
	for i := range r.Patterns {
		nr := &r.Patterns[i]
		if nr.admit.MatchString(uri) && (nr.registryRE == nil || nr.registryRE.MatchString(uri)) &&
			(nr.shadowRE == nil || !nr.shadowRE.MatchString(uri)) {
			return true
		}
	}
	return false
}

var modelGrammar = regexp.MustCompile(modelURIGrammar)

// imageRegexp is the one expression an approved image matches.
func (r *admissionRules) imageRegexp() string {
	alts := make([]string, len(r.Registries))
	for i, reg := range r.Registries {
		alts[i] = regexp.QuoteMeta(reg)
	}
	return `^(?:` + strings.Join(alts, "|") + `)` + imagePathRE + `$`
}

// admitsImage reports whether an image comes from an approved registry, by imageRegexp.
func (r *admissionRules) admitsImage(image string) bool {
	return r.image.MatchString(image)
}

// publisherNames lists the publishers, for messages.
func (r *admissionRules) publisherNames() []string {
	var names []string
	for _, nr := range r.Patterns {
		if !slices.Contains(names, nr.Publisher) {
			names = append(names, nr.Publisher)
		}
	}
	slices.Sort(names)
	return names
}

// modelFinding says why a model location is not admitted, in the policy's own terms, for the
// scanner's reports. It is asked only about URIs admitsModel refused.
func (r *admissionRules) explainModel(p *modelverify.Policy, uri string) (rule, message, remedy string) {
	scheme, _, hasScheme := strings.Cut(uri, "://")
	switch {
	case uri == "":
		return "model-location-unverifiable", "the model location is empty or comes from elsewhere (valueFrom), so admission cannot check it",
			"give the model location as a literal hf://<org>/<name>@<commit> value"
	case hasScheme && scheme == "oci":
		return r.explainOCI(p, uri)
	case hasScheme && strings.HasPrefix(scheme, "oci+"):
		return "model-location-unverifiable", fmt.Sprintf("%q uses KServe's %s:// scheme, which KServe's own storage initializer fetches: the load gate verifies oci:// only", uri, scheme),
			"write the location as oci://<host>/<repository>@sha256:<digest>, which the modelverify storage initializer claims"
	case !hasScheme || scheme != "hf":
		return "model-location-unverifiable", fmt.Sprintf("%q is not an hf:// location: the load gate verifies only Hub repositories, so the model would load unverified", uri),
			"publish the model to an approved publisher's Hub repository and use hf://<org>/<name>@<commit>"
	case !modelGrammar.MatchString(uri):
		return "model-location-malformed", fmt.Sprintf("%q is not a well-formed hf://<org>/<name>[@<revision>] location (no '..', no empty or extra segments)", uri),
			"write the location as hf://<org>/<name>@<commit>"
	}
	ref, err := hub.ParseReference(uri)
	if err != nil {
		return "model-location-malformed", fmt.Sprintf("%q: %v", uri, err), "write the location as hf://<org>/<name>@<commit>"
	}
	pub, err := p.Publisher(ref.RepoID())
	if err != nil {
		return "model-publisher-unapproved", fmt.Sprintf("%s: no approved publisher owns %s (approved: %s)", uri, ref.RepoID(), strings.Join(r.publisherNames(), ", ")),
			"use a model of an approved publisher, or have the publisher added to the policy"
	}
	if pub.RequirePinnedRevision && !hub.IsCommit(ref.Revision) {
		rev := ref.Revision
		if rev == "" {
			rev = "none"
		}
		return "model-revision-unpinned", fmt.Sprintf("%s: publisher %s requires a pinned revision (a 40-hex commit), the location has %s", uri, pub.Name, rev),
			"pin the commit: hf://" + ref.RepoID() + "@<40-hex commit>"
	}
	return "model-publisher-unapproved", fmt.Sprintf("%s is not admitted by the publisher rules", uri),
		"use a model of an approved publisher"
}

// explainOCI says why an oci:// location is not admitted, in the order the gate checks: the
// reference, the registry, the registry's repositories, a publisher's claim, the digest.
func (r *admissionRules) explainOCI(p *modelverify.Policy, uri string) (rule, message, remedy string) {
	const form = "oci://<host>/<repository>@sha256:<digest>"
	ref, err := registry.ParseReference(uri)
	if err != nil || !modelGrammar.MatchString(uri) {
		detail := "lower-case repository components, no '..' or empty components, a valid tag, sha256:<64 lower-case hex>"
		if err != nil {
			detail = err.Error()
		}
		return "model-location-malformed", fmt.Sprintf("%q is not a well-formed oci:// location: %s", uri, detail),
			"write the location as " + form
	}
	reg, ok := p.Registry(ref.Registry)
	if !ok {
		return "model-registry-unapproved", fmt.Sprintf("%s: the registry %s is not approved (approved: %s)", uri, ref.Registry, strings.Join(r.ModelRegistries, ", ")),
			"use a model in an approved registry, or have the registry added to the policy's registries"
	}
	if !reg.AllowsRepository(ref.Repository) {
		return "model-registry-unapproved", fmt.Sprintf("%s: the registry %s is approved, but not the repository %s (it lists %s)", uri, reg.Host, ref.Repository, strings.Join(reg.Repositories, ", ")),
			"use a model in a repository the registry lists, or have the repository added to its repositories"
	}
	pub, err := p.OCIPublisher(ref.Name())
	if err != nil {
		return "model-publisher-unapproved", fmt.Sprintf("%s: %v", uri, strings.TrimPrefix(err.Error(), modelverify.ErrPublisherNotAllowed.Error()+": ")),
			"use a model of an approved publisher, or have the publisher's oci entries claim the repository"
	}
	if pub.RequireDigest && !ref.Pinned() {
		return "model-revision-unpinned", fmt.Sprintf("%s: publisher %s requires a reference pinned by digest (requireDigest), the location has the tag %s", uri, pub.Name, ref.Tag),
			"pin the digest: oci://" + ref.Name() + "@sha256:<digest>"
	}
	return "model-publisher-unapproved", fmt.Sprintf("%s is not admitted by the publisher rules", uri),
		"use a model of an approved publisher"
}
