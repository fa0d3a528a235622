package main

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/modelverify"
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

// modelURIGrammar is the whole grammar of an admissible model location.
var modelURIGrammar = `^hf://` + segmentRE + `/` + segmentRE + `(?:[@:]` + revisionRE + `)?$`

// admissionRules is everything the admission policies and the scanner decide with.
type admissionRules struct {
	// Patterns are the publishers' namespaces, one per entry, most specific first.
	Patterns []namespaceRule `json:"publishers"`
	// Registries are the approved image prefixes ("ghcr.io/echelongraph/").
	Registries []string `json:"imageRegistries"`
	// Namespaces are the namespaces whose pods are model-serving whatever their labels.
	Namespaces []string `json:"namespaces"`

	image *regexp.Regexp
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

	rank     int
	admit    *regexp.Regexp
	shadowRE *regexp.Regexp
}

// newAdmissionRules makes the rules from a policy and the approved image registries.
func newAdmissionRules(p *modelverify.Policy, registries, namespaces []string) (*admissionRules, error) {
	r := &admissionRules{Namespaces: slices.Clone(namespaces)}
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
	return r, r.compile()
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
		nr.shadowRE = nil
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
		if nr.admit.MatchString(uri) && (nr.shadowRE == nil || !nr.shadowRE.MatchString(uri)) {
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
