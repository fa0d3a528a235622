package modelverify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Policy document identity: a policy file must declare both, so that a future schema change is
// explicit rather than guessed.
const (
	PolicyAPIVersion = "modelverify.echelongraph.io/v1alpha1"
	PolicyKind       = "ModelPolicy"
)

// Defaults applied when a policy omits a field. POLICY.md documents each one.
const (
	DefaultSignatureFile = "model.sig"
)

// Size limits on what the policy loader reads, so that a policy, a key or a trust root named by
// mistake (a device, a model file) cannot exhaust memory.
const (
	maxPolicySize   = 1 << 20
	maxPEMFileSize  = 1 << 20
	maxTrustRootLen = 8 << 20
)

// Mode says what happens to a model the policy refuses.
type Mode string

const (
	// ModeEnforce refuses the model: the caller gets a *Refusal and nothing to load.
	ModeEnforce Mode = "enforce"
	// ModeAudit records the refusal in the audit log as "audit-allowed" and lets the model load.
	ModeAudit Mode = "audit"
)

// PickleAction says what happens to files of the formats that carry pickle data: pickle and
// PyTorch checkpoints.
type PickleAction string

const (
	// PickleDeny refuses every file of a pickle format (pickle, PyTorch checkpoints).
	PickleDeny PickleAction = "deny"
	// PickleScan lets such a file load only when its format is allowed and the static scan
	// proves every global it imports safe.
	PickleScan PickleAction = "scan"
)

// knownFormats are the format names internal/scan reports (scan.Format's strings). They are
// repeated here because the policy is plain data; keep the two lists the same.
var knownFormats = []string{
	"safetensors", "safetensors-index", "gguf", "pickle", "pytorch-zip", "pytorch-legacy",
	"pytorch-tar", "numpy", "numpy-zip", "zip", "tar", "7z", "unknown",
}

// pickleFormats always carry pickle data, so allowing one while pickle is denied is a
// contradiction the loader reports.
var pickleFormats = []string{"pickle", "pytorch-zip", "pytorch-legacy", "pytorch-tar"}

// DefaultAllowFormats is the allowed-format list of a policy that names none: the weight formats
// that cannot execute code, and "unknown", which covers configuration, tokenizer and text files.
var DefaultAllowFormats = []string{"safetensors", "safetensors-index", "gguf", "unknown"}

// Policy is the load gate's rule book: where models may come from, who may publish them, how
// they must be signed, what they may contain, and where decisions are recorded. Load it with
// LoadPolicy or ParsePolicy, which apply the defaults and validate it; after that it is only read,
// and is safe to share between goroutines.
type Policy struct {
	// APIVersion must be PolicyAPIVersion.
	APIVersion string `json:"apiVersion"`
	// Kind must be PolicyKind.
	Kind string `json:"kind"`
	// Mode is enforce (the default) or audit.
	Mode Mode `json:"mode,omitempty"`
	// Endpoints are the approved Hubs. Nothing is fetched from anywhere else.
	Endpoints []Endpoint `json:"endpoints"`
	// Publishers are the verified providers; a repository no publisher claims is refused.
	Publishers []Publisher `json:"publishers"`
	// Content limits what the files may be.
	Content ContentRules `json:"content,omitempty"`
	// Audit says where decisions are recorded.
	Audit AuditConfig `json:"audit,omitempty"`
}

// Endpoint is an approved Hub: huggingface.co, a mirror, an internal hub.
type Endpoint struct {
	// Name is an optional short name that publishers can refer to ("hf").
	Name string `json:"name,omitempty"`
	// URL is the Hub's base URL, as HF_ENDPOINT would give it. Loading normalises it: lower-case
	// scheme and host, no default port, no trailing slash.
	URL string `json:"url"`
	// CDNHosts are the hosts the Hub may redirect downloads to: exact names ("cdn-lfs.hf.co"),
	// or "*.suffix" for any subdomain of suffix, each optionally with ":port".
	CDNHosts []string `json:"cdnHosts,omitempty"`
}

// Publisher is one verified provider: the namespaces it owns and how its models must be proved.
type Publisher struct {
	// Name identifies the publisher in refusals and the audit log.
	Name string `json:"name"`
	// Namespaces are the repositories the publisher owns: "org" (all of org's repositories),
	// "org/name", or "org/<glob>" with path.Match syntax in the name part.
	Namespaces []string `json:"namespaces"`
	// Endpoints, when set, restricts the publisher to these endpoints (by name or URL).
	Endpoints []string `json:"endpoints,omitempty"`
	// RequireSignature requires a signature by one of Identities. Default true; read it with
	// SignatureRequired.
	RequireSignature *bool `json:"requireSignature,omitempty"`
	// Identities are who may sign the publisher's models; any one of them is enough.
	Identities []Identity `json:"identities,omitempty"`
	// TrustRoot is a Sigstore trusted_root.json or ClientTrustConfig for the sigstore
	// identities; empty means the public-good production root.
	TrustRoot string `json:"trustRoot,omitempty"`
	// RequirePinnedRevision refuses references that name a branch or tag instead of a commit.
	RequirePinnedRevision bool `json:"requirePinnedRevision,omitempty"`
	// RequireVerifiedOrg refuses repositories whose organisation the Hub does not mark verified.
	RequireVerifiedOrg bool `json:"requireVerifiedOrg,omitempty"`
	// SignatureFile is the signature's path in the repository. Default "model.sig".
	SignatureFile string `json:"signatureFile,omitempty"`
	// IgnorePaths are repository paths the signature does not cover and that are never loaded
	// (files, or directories and everything under them). The signature file is always ignored.
	IgnorePaths []string `json:"ignorePaths,omitempty"`
}

// Identity is one signer a publisher accepts. Exactly one of its fields is set.
type Identity struct {
	// Sigstore is a keyless signer: a certificate from Fulcio for this identity and issuer.
	Sigstore *SigstoreIdentity `json:"sigstore,omitempty"`
	// PublicKey is a signer holding the private half of this key.
	PublicKey *PEMSource `json:"publicKey,omitempty"`
	// Certificate is a signer whose certificate chains to one of these roots.
	Certificate *CertificateIdentity `json:"certificate,omitempty"`
}

// SigstoreIdentity is a keyless signer: the certificate's subject alternative name and the OIDC
// issuer that vouched for it, each given exactly or as an anchored regular expression.
type SigstoreIdentity struct {
	// Identity is the exact SAN: an e-mail address or a URI such as a workflow's.
	Identity string `json:"identity,omitempty"`
	// IdentityRegexp is a Go regular expression for the SAN, anchored with ^ and $.
	IdentityRegexp string `json:"identityRegexp,omitempty"`
	// Issuer is the exact OIDC issuer URL ("https://token.actions.githubusercontent.com").
	Issuer string `json:"issuer,omitempty"`
	// IssuerRegexp is a Go regular expression for the issuer, anchored with ^ and $.
	IssuerRegexp string `json:"issuerRegexp,omitempty"`
}

// CertificateIdentity is a signer with an X.509 certificate chaining to one of Roots.
type CertificateIdentity struct {
	// Roots are the trusted CA certificates, PEM, one or more per source.
	Roots []PEMSource `json:"roots"`
}

// PEMSource is PEM material given either as a file or inline. Exactly one field is set.
type PEMSource struct {
	// Path is a file; when relative in a policy file, it is relative to that file's directory.
	Path string `json:"path,omitempty"`
	// PEM is the material itself.
	PEM string `json:"pem,omitempty"`
}

// ContentRules limit what a model's files may be.
type ContentRules struct {
	// AllowFormats are the formats that may load, by internal/scan's names. Default
	// DefaultAllowFormats.
	AllowFormats []string `json:"allowFormats,omitempty"`
	// Pickle is deny (the default) or scan.
	Pickle PickleAction `json:"pickle,omitempty"`
	// MaxFiles is the most files a model may have; 0 means no limit.
	MaxFiles int `json:"maxFiles,omitempty"`
	// MaxFileSize is the largest a single file may be; 0 means no limit.
	MaxFileSize ByteSize `json:"maxFileSize,omitempty"`
	// MaxTotalSize is the largest the whole model may be; 0 means no limit.
	MaxTotalSize ByteSize `json:"maxTotalSize,omitempty"`
}

// AuditConfig says where decisions are recorded. Both sinks may be on at once.
type AuditConfig struct {
	// Path is a JSON-lines file that decisions are appended to; relative to the policy file.
	Path string `json:"path,omitempty"`
	// Slog also sends each decision to the caller's slog.Logger.
	Slog bool `json:"slog,omitempty"`
}

// ErrInvalidPolicy is matched (errors.Is) by every error that loading or validating a policy
// returns for a problem in the document.
var ErrInvalidPolicy = errors.New("invalid policy")

// FieldError is one problem in a policy document, at Field: a path such as
// "publishers[2].namespaces[0]" (empty for the document as a whole).
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// PolicyError reports every problem found in a policy document. errors.As on it, or on each
// *FieldError it wraps, gives the fields at fault.
type PolicyError struct {
	// Source is the file the policy came from, empty when it was parsed from bytes.
	Source string
	// Problems lists each problem, in document order.
	Problems []*FieldError
}

func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("modelverify: invalid policy")
	if e.Source != "" {
		b.WriteString(" " + e.Source)
	}
	if len(e.Problems) == 1 {
		b.WriteString(": " + e.Problems[0].Error())
		return b.String()
	}
	fmt.Fprintf(&b, ": %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n\t" + p.Error())
	}
	return b.String()
}

// Unwrap returns ErrInvalidPolicy and each problem.
func (e *PolicyError) Unwrap() []error {
	out := []error{ErrInvalidPolicy}
	for _, p := range e.Problems {
		out = append(out, p)
	}
	return out
}

// problems collects field errors while a policy is checked.
type problems []*FieldError

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (ps problems) err(source string) error {
	if len(ps) == 0 {
		return nil
	}
	return &PolicyError{Source: source, Problems: ps}
}

// LoadPolicy reads, decodes, defaults and validates the policy file at path (YAML or JSON).
// Relative paths inside it (keys, certificate roots, the trust root, the audit log) are
// resolved against the file's directory, so a policy and its keys can ship together, as in a
// mounted ConfigMap.
func LoadPolicy(path string) (*Policy, error) {
	data, err := readBounded(path, maxPolicySize)
	if err != nil {
		return nil, fmt.Errorf("modelverify: policy: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("modelverify: policy %s: %w", path, err)
	}
	return parsePolicy(data, dir, path)
}

// ParsePolicy decodes, defaults and validates a policy document (YAML or JSON). Relative paths
// inside it stay relative to the process's working directory; use LoadPolicy for a file.
func ParsePolicy(data []byte) (*Policy, error) {
	return parsePolicy(data, "", "")
}

func parsePolicy(data []byte, baseDir, source string) (*Policy, error) {
	if len(data) > maxPolicySize {
		return nil, (problems{{Message: fmt.Sprintf("document is larger than %d bytes", maxPolicySize)}}).err(source)
	}
	if err := singleDocument(data); err != nil {
		return nil, (problems{{Message: err.Error()}}).err(source)
	}
	// Strict YAML refuses duplicate keys, which would otherwise let a later line silently
	// override an earlier one.
	jsonDoc, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, (problems{{Message: "not valid YAML or JSON: " + err.Error()}}).err(source)
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(jsonDoc))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, (problems{{Message: "not valid YAML or JSON: " + err.Error()}}).err(source)
	}
	if _, ok := tree.(map[string]any); !ok {
		return nil, (problems{{Message: "the document must be a mapping (apiVersion, kind, mode, endpoints, ...)"}}).err(source)
	}
	// encoding/json matches keys case-insensitively and reports unknown fields without their
	// path, so the document's shape is checked first, exactly and everywhere at once.
	var ps problems
	checkShape(tree, reflect.TypeFor[Policy](), "", &ps)
	if len(ps) > 0 {
		return nil, ps.err(source)
	}
	p := new(Policy)
	strict := json.NewDecoder(bytes.NewReader(jsonDoc))
	strict.DisallowUnknownFields()
	if err := strict.Decode(p); err != nil {
		return nil, (problems{{Message: err.Error()}}).err(source)
	}
	if p.APIVersion == "" {
		ps.add("apiVersion", "required: %q", PolicyAPIVersion)
	}
	if p.Kind == "" {
		ps.add("kind", "required: %q", PolicyKind)
	}
	p.resolvePaths(baseDir)
	p.normalise()
	p.applyDefaults()
	ps = append(ps, p.check()...)
	if len(ps) > 0 {
		return nil, ps.err(source)
	}
	return p, nil
}

// singleDocument refuses a YAML stream of several documents: the decoder reads only the first,
// so rules in a second one would be silently ignored. A document marker ("---" or "...") is
// recognised only at the start of a line, where YAML allows nothing else to begin with it.
func singleDocument(data []byte) error {
	seenContent, ended := false, false
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		marker := func(m string) bool {
			return line == m || strings.HasPrefix(line, m+" ") || strings.HasPrefix(line, m+"\t")
		}
		switch {
		case marker("---"):
			if seenContent || ended {
				return fmt.Errorf("line %d: a second YAML document; a policy is one document", n+1)
			}
			if rest := strings.TrimSpace(strings.TrimPrefix(line, "---")); rest != "" && !strings.HasPrefix(rest, "#") {
				seenContent = true
			}
		case marker("..."):
			ended = true
		case strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#"):
		case strings.HasPrefix(line, "%") && !seenContent:
			// A directive (%YAML 1.1) before the document.
		default:
			if ended {
				return fmt.Errorf("line %d: content after the end of the YAML document", n+1)
			}
			seenContent = true
		}
	}
	return nil
}

// Validate checks the policy and every file it names (keys, roots, trust root) and returns a
// *PolicyError listing every problem, or nil. LoadPolicy and ParsePolicy call it; call it
// yourself only for a policy built in code, where zero values mean the documented defaults.
func (p *Policy) Validate() error {
	return problems(p.check()).err("")
}

// SignatureRequired reports whether the publisher's models must be signed (default true).
func (pub *Publisher) SignatureRequired() bool {
	return pub.RequireSignature == nil || *pub.RequireSignature
}

// SignaturePath is the signature file's path in the repository: SignatureFile or the default.
func (pub *Publisher) SignaturePath() string {
	if pub.SignatureFile == "" {
		return DefaultSignatureFile
	}
	return pub.SignatureFile
}

// Enforcing reports whether refusals are enforced (mode enforce, the default) rather than only
// recorded (mode audit).
func (p *Policy) Enforcing() bool { return p.Mode != ModeAudit }

// FormatAllowed reports whether files of format (internal/scan's name) may load under the
// format list alone; pickle-bearing formats must also pass the Pickle rule.
func (c *ContentRules) FormatAllowed(format string) bool {
	list := c.AllowFormats
	if list == nil {
		list = DefaultAllowFormats
	}
	return slices.Contains(list, format)
}

// PickleRule is Pickle, or PickleDeny when it is unset.
func (c *ContentRules) PickleRule() PickleAction {
	if c.Pickle == "" {
		return PickleDeny
	}
	return c.Pickle
}

// Bytes returns the PEM material: the inline text, or the file's contents (a regular file of at
// most 1 MiB).
func (s *PEMSource) Bytes() ([]byte, error) {
	if s.PEM != "" {
		return []byte(s.PEM), nil
	}
	if s.Path == "" {
		return nil, errors.New("neither path nor pem is set")
	}
	return readBounded(s.Path, maxPEMFileSize)
}

// String names the source for messages: its path, or "inline PEM".
func (s PEMSource) String() string {
	if s.Path != "" {
		return s.Path
	}
	return "inline PEM"
}

// String describes the identity for messages: who was expected to sign.
func (id Identity) String() string {
	switch {
	case id.Sigstore != nil:
		s := id.Sigstore
		who := s.Identity
		if who == "" {
			who = "matching " + s.IdentityRegexp
		}
		iss := s.Issuer
		if iss == "" {
			iss = "matching " + s.IssuerRegexp
		}
		return fmt.Sprintf("sigstore identity %s issued by %s", who, iss)
	case id.PublicKey != nil:
		return "public key " + id.PublicKey.String()
	case id.Certificate != nil:
		names := make([]string, len(id.Certificate.Roots))
		for i, r := range id.Certificate.Roots {
			names[i] = r.String()
		}
		return "certificate chaining to " + strings.Join(names, ", ")
	}
	return "empty identity"
}

func (p *Policy) resolvePaths(baseDir string) {
	if baseDir == "" {
		return
	}
	abs := func(s *string) {
		if *s != "" && !filepath.IsAbs(*s) {
			*s = filepath.Join(baseDir, *s)
		}
	}
	abs(&p.Audit.Path)
	for i := range p.Publishers {
		pub := &p.Publishers[i]
		abs(&pub.TrustRoot)
		for j := range pub.Identities {
			id := &pub.Identities[j]
			if id.PublicKey != nil {
				abs(&id.PublicKey.Path)
			}
			if id.Certificate != nil {
				for k := range id.Certificate.Roots {
					abs(&id.Certificate.Roots[k].Path)
				}
			}
		}
	}
}

// normalise puts endpoint URLs and CDN hosts in canonical form; values that cannot be
// normalised are left for check to report.
func (p *Policy) normalise() {
	for i := range p.Endpoints {
		e := &p.Endpoints[i]
		if u, err := normaliseEndpointURL(e.URL); err == nil {
			e.URL = u
		}
		for j, h := range e.CDNHosts {
			if hp, err := parseHostPattern(h); err == nil {
				e.CDNHosts[j] = hp.String()
			}
		}
	}
}

func (p *Policy) applyDefaults() {
	if p.Mode == "" {
		p.Mode = ModeEnforce
	}
	for i := range p.Publishers {
		pub := &p.Publishers[i]
		if pub.RequireSignature == nil {
			t := true
			pub.RequireSignature = &t
		}
		if pub.SignatureFile == "" {
			pub.SignatureFile = DefaultSignatureFile
		}
	}
	if p.Content.AllowFormats == nil {
		p.Content.AllowFormats = slices.Clone(DefaultAllowFormats)
	}
	if p.Content.Pickle == "" {
		p.Content.Pickle = PickleDeny
	}
}

func (p *Policy) check() problems {
	var ps problems
	if p.APIVersion != "" && p.APIVersion != PolicyAPIVersion {
		ps.add("apiVersion", "%q is not supported; use %q", p.APIVersion, PolicyAPIVersion)
	}
	if p.Kind != "" && p.Kind != PolicyKind {
		ps.add("kind", "%q is not supported; use %q", p.Kind, PolicyKind)
	}
	switch p.Mode {
	case "", ModeEnforce, ModeAudit:
	default:
		ps.add("mode", "%q is not a mode; use %q or %q", p.Mode, ModeEnforce, ModeAudit)
	}
	p.checkEndpoints(&ps)
	p.checkPublishers(&ps)
	p.Content.check(&ps)
	if p.Audit.Path != "" && strings.ContainsRune(p.Audit.Path, 0) {
		ps.add("audit.path", "contains a NUL byte")
	}
	return ps
}

var endpointName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (p *Policy) checkEndpoints(ps *problems) {
	if len(p.Endpoints) == 0 {
		ps.add("endpoints", "at least one endpoint is required")
	}
	urls := map[string]int{}
	names := map[string]int{}
	for i, e := range p.Endpoints {
		at := fmt.Sprintf("endpoints[%d]", i)
		if e.Name != "" {
			if !endpointName.MatchString(e.Name) {
				ps.add(at+".name", "%q must be lower-case letters, digits and '-' (at most 63)", e.Name)
			} else if j, dup := names[e.Name]; dup {
				ps.add(at+".name", "%q is already the name of endpoints[%d]", e.Name, j)
			} else {
				names[e.Name] = i
			}
		}
		if e.URL == "" {
			ps.add(at+".url", "required")
		} else if u, err := normaliseEndpointURL(e.URL); err != nil {
			ps.add(at+".url", "%v", err)
		} else if j, dup := urls[u]; dup {
			ps.add(at+".url", "%q is already endpoints[%d]", u, j)
		} else {
			urls[u] = i
		}
		seen := map[string]int{}
		for j, h := range e.CDNHosts {
			hp, err := parseHostPattern(h)
			if err != nil {
				ps.add(fmt.Sprintf("%s.cdnHosts[%d]", at, j), "%v", err)
				continue
			}
			if k, dup := seen[hp.String()]; dup {
				ps.add(fmt.Sprintf("%s.cdnHosts[%d]", at, j), "%q is listed twice (also cdnHosts[%d])", h, k)
			}
			seen[hp.String()] = j
		}
	}
}

func (p *Policy) checkPublishers(ps *problems) {
	if len(p.Publishers) == 0 {
		ps.add("publishers", "at least one publisher is required")
	}
	names := map[string]int{}
	type claim struct{ pub, ns int }
	claims := map[string]claim{}
	for i := range p.Publishers {
		pub := &p.Publishers[i]
		at := fmt.Sprintf("publishers[%d]", i)
		if pub.Name == "" {
			ps.add(at+".name", "required")
		} else if strings.ContainsFunc(pub.Name, isControl) {
			ps.add(at+".name", "contains a control character")
		} else if j, dup := names[pub.Name]; dup {
			ps.add(at+".name", "%q is already the name of publishers[%d]", pub.Name, j)
		} else {
			names[pub.Name] = i
		}
		if len(pub.Namespaces) == 0 {
			ps.add(at+".namespaces", "at least one namespace is required")
		}
		for j, ns := range pub.Namespaces {
			field := fmt.Sprintf("%s.namespaces[%d]", at, j)
			pat, err := parseNamespacePattern(ns)
			if err != nil {
				ps.add(field, "%v", err)
				continue
			}
			key := pat.key()
			if c, dup := claims[key]; dup {
				if c.pub == i {
					ps.add(field, "%q is listed twice (also namespaces[%d])", ns, c.ns)
				} else {
					ps.add(field, "%q is already claimed by publisher %q (publishers[%d].namespaces[%d])",
						ns, p.Publishers[c.pub].Name, c.pub, c.ns)
				}
				continue
			}
			claims[key] = claim{i, j}
		}
		for j, ref := range pub.Endpoints {
			if _, ok := p.Endpoint(ref); !ok {
				ps.add(fmt.Sprintf("%s.endpoints[%d]", at, j), "%q is not the name or URL of any endpoint", ref)
			}
		}
		pub.checkSigning(at, ps)
		if pub.SignatureFile != "" {
			if err := checkRepoPath(pub.SignatureFile); err != nil {
				ps.add(at+".signatureFile", "%v", err)
			}
		}
		for j, ip := range pub.IgnorePaths {
			if err := checkRepoPath(ip); err != nil {
				ps.add(fmt.Sprintf("%s.ignorePaths[%d]", at, j), "%v", err)
			}
		}
	}
}

func (pub *Publisher) checkSigning(at string, ps *problems) {
	hasSigstore := false
	for j := range pub.Identities {
		id := &pub.Identities[j]
		field := fmt.Sprintf("%s.identities[%d]", at, j)
		set := 0
		if id.Sigstore != nil {
			set++
			hasSigstore = true
			id.Sigstore.check(field+".sigstore", ps)
		}
		if id.PublicKey != nil {
			set++
			checkPublicKey(id.PublicKey, field+".publicKey", ps)
		}
		if id.Certificate != nil {
			set++
			if len(id.Certificate.Roots) == 0 {
				ps.add(field+".certificate.roots", "at least one root is required")
			}
			for k := range id.Certificate.Roots {
				checkCertificates(&id.Certificate.Roots[k], fmt.Sprintf("%s.certificate.roots[%d]", field, k), ps)
			}
		}
		if set != 1 {
			ps.add(field, "exactly one of sigstore, publicKey or certificate is required, found %d", set)
		}
	}
	switch {
	case pub.SignatureRequired() && len(pub.Identities) == 0:
		ps.add(at+".identities", "at least one identity is required when requireSignature is true")
	case !pub.SignatureRequired() && len(pub.Identities) > 0:
		// Verifying a signature only when one happens to be present would let anyone who can
		// delete the signature file downgrade the check, so the policy must say which it means.
		ps.add(at+".identities", "identities are listed but requireSignature is false; require a signature or remove the identities")
	}
	if pub.TrustRoot != "" {
		if !hasSigstore {
			ps.add(at+".trustRoot", "set, but no sigstore identity uses it")
		}
		checkTrustRoot(pub.TrustRoot, at+".trustRoot", ps)
	}
}

func (s *SigstoreIdentity) check(at string, ps *problems) {
	switch {
	case s.Identity == "" && s.IdentityRegexp == "":
		ps.add(at, "one of identity or identityRegexp is required")
	case s.Identity != "" && s.IdentityRegexp != "":
		ps.add(at, "identity and identityRegexp are exclusive")
	case s.IdentityRegexp != "":
		checkAnchoredRegexp(s.IdentityRegexp, at+".identityRegexp", ps)
	case strings.ContainsFunc(s.Identity, isSpaceOrControl):
		ps.add(at+".identity", "contains white space or a control character")
	}
	switch {
	case s.Issuer == "" && s.IssuerRegexp == "":
		ps.add(at, "one of issuer or issuerRegexp is required")
	case s.Issuer != "" && s.IssuerRegexp != "":
		ps.add(at, "issuer and issuerRegexp are exclusive")
	case s.IssuerRegexp != "":
		checkAnchoredRegexp(s.IssuerRegexp, at+".issuerRegexp", ps)
	case !strings.HasPrefix(s.Issuer, "https://") || strings.ContainsFunc(s.Issuer, isSpaceOrControl):
		ps.add(at+".issuer", "%q must be an https:// OIDC issuer URL", s.Issuer)
	}
}

// checkAnchoredRegexp insists on ^...$ because a signer-identity pattern is matched anywhere in
// the value otherwise: "alice@example\.com" would accept "malice@example.com.evil.net".
func checkAnchoredRegexp(expr, at string, ps *problems) {
	if _, err := regexp.Compile(expr); err != nil {
		ps.add(at, "not a valid regular expression: %v", err)
		return
	}
	if !strings.HasPrefix(expr, "^") || !strings.HasSuffix(expr, "$") || strings.HasSuffix(expr, `\$`) {
		ps.add(at, "%q must be anchored: start with ^ and end with $", expr)
	}
}

func checkSource(s *PEMSource, at string, ps *problems) ([]byte, bool) {
	if (s.Path == "") == (s.PEM == "") {
		ps.add(at, "exactly one of path or pem is required")
		return nil, false
	}
	data, err := s.Bytes()
	if err != nil {
		ps.add(at+".path", "%v", err)
		return nil, false
	}
	return data, true
}

func sourceField(s *PEMSource, at string) string {
	if s.Path != "" {
		return at + ".path"
	}
	return at + ".pem"
}

// checkPublicKey accepts the key types Sigstore bundles are verified with: ECDSA on P-256,
// P-384 or P-521 (what model_signing makes), Ed25519, and RSA of at least 2048 bits.
func checkPublicKey(s *PEMSource, at string, ps *problems) {
	data, ok := checkSource(s, at, ps)
	if !ok {
		return
	}
	field := sourceField(s, at)
	var found int
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		found++
		if block.Type != "PUBLIC KEY" {
			ps.add(field, "PEM block %q is not a PUBLIC KEY", block.Type)
			return
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			ps.add(field, "not a valid public key: %v", err)
			return
		}
		switch k := key.(type) {
		case *ecdsa.PublicKey:
			switch k.Curve {
			case elliptic.P256(), elliptic.P384(), elliptic.P521():
			default:
				ps.add(field, "ECDSA curve %s is not accepted; use P-256, P-384 or P-521", k.Curve.Params().Name)
			}
		case ed25519.PublicKey:
		case *rsa.PublicKey:
			if k.N.BitLen() < 2048 {
				ps.add(field, "RSA key of %d bits is too short; at least 2048 are required", k.N.BitLen())
			}
		default:
			ps.add(field, "public key type %T is not accepted", key)
		}
	}
	switch {
	case found == 0:
		ps.add(field, "no PEM block found")
	case found > 1:
		ps.add(field, "holds %d PEM blocks; give one key per identity", found)
	}
}

func checkCertificates(s *PEMSource, at string, ps *problems) {
	data, ok := checkSource(s, at, ps)
	if !ok {
		return
	}
	field := sourceField(s, at)
	var found int
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		found++
		if block.Type != "CERTIFICATE" {
			ps.add(field, "PEM block %d is %q, not a CERTIFICATE", found, block.Type)
			return
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			ps.add(field, "PEM block %d is not a valid certificate: %v", found, err)
			return
		}
	}
	if found == 0 {
		ps.add(field, "no PEM CERTIFICATE block found")
	}
}

// checkTrustRoot checks that the file is a Sigstore trusted root or ClientTrustConfig by its
// media type; the signing library parses it fully when the verifier is built.
func checkTrustRoot(file, at string, ps *problems) {
	data, err := readBounded(file, maxTrustRootLen)
	if err != nil {
		ps.add(at, "%v", err)
		return
	}
	var doc struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		ps.add(at, "%s is not JSON: %v", file, err)
		return
	}
	if !strings.HasPrefix(doc.MediaType, "application/vnd.dev.sigstore.trustedroot+json") &&
		!strings.HasPrefix(doc.MediaType, "application/vnd.dev.sigstore.clienttrustconfig") {
		ps.add(at, "%s has mediaType %q; want a Sigstore trusted root or ClientTrustConfig", file, doc.MediaType)
	}
}

func (c *ContentRules) check(ps *problems) {
	if c.AllowFormats != nil && len(c.AllowFormats) == 0 {
		ps.add("content.allowFormats", "is empty, so nothing could load; list formats or omit the field for the default")
	}
	seen := map[string]int{}
	for i, f := range c.AllowFormats {
		at := fmt.Sprintf("content.allowFormats[%d]", i)
		switch {
		case !slices.Contains(knownFormats, f):
			ps.add(at, "%q is not a format; use one of %s", f, strings.Join(knownFormats, ", "))
		case seen[f] > 0:
			ps.add(at, "%q is listed twice", f)
		case c.PickleRule() == PickleDeny && slices.Contains(pickleFormats, f):
			ps.add(at, "%q always carries pickle data, but content.pickle is %q; set pickle to %q or remove it", f, PickleDeny, PickleScan)
		}
		seen[f]++
	}
	switch c.Pickle {
	case "", PickleDeny, PickleScan:
	default:
		ps.add("content.pickle", "%q is not a pickle rule; use %q or %q", c.Pickle, PickleDeny, PickleScan)
	}
	if c.MaxFiles < 0 {
		ps.add("content.maxFiles", "must not be negative")
	}
	if c.MaxFileSize < 0 {
		ps.add("content.maxFileSize", "must not be negative")
	}
	if c.MaxTotalSize < 0 {
		ps.add("content.maxTotalSize", "must not be negative")
	}
	if c.MaxFileSize > 0 && c.MaxTotalSize > 0 && c.MaxFileSize > c.MaxTotalSize {
		ps.add("content.maxFileSize", "%s is larger than content.maxTotalSize %s", c.MaxFileSize, c.MaxTotalSize)
	}
}

// checkRepoPath accepts a slash-separated path inside a repository: relative, clean, no "..".
func checkRepoPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.ContainsFunc(p, isControl) || strings.Contains(p, `\`):
		return fmt.Errorf("%q contains a control character or a backslash", p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q must be relative to the repository root", p)
	case path.Clean(p) != strings.TrimSuffix(p, "/") || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("%q must be a clean path inside the repository (no '.', '..' or '//')", p)
	}
	return nil
}

// readBounded reads a regular file of at most limit bytes. Anything else (a directory, a device,
// a FIFO that would block) is refused before it is opened.
func readBounded(file string, limit int64) ([]byte, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", file)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes; the limit is %d", file, fi.Size(), limit)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", file, limit)
	}
	return data, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func isSpaceOrControl(r rune) bool { return r == ' ' || isControl(r) }

// checkShape walks a decoded JSON value against the Go type it will be decoded into, and reports
// every unknown field (matched case-sensitively) and every value of the wrong kind, with its path.
func checkShape(v any, t reflect.Type, at string, ps *problems) {
	if v == nil {
		return // null leaves the field at its zero value, which check then judges
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		raw, err := json.Marshal(v)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw)
		}
		if err != nil {
			ps.add(at, "%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		checkShape(v, t.Elem(), at, ps)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			ps.add(at, "must be a mapping, found %s", kindOf(v))
			return
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fields[k]
			if !ok {
				ps.add(joinField(at, k), "unknown field%s", suggestField(k, fields))
				continue
			}
			checkShape(m[k], f.Type, joinField(at, k), ps)
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			ps.add(at, "must be a list, found %s", kindOf(v))
			return
		}
		for i, item := range list {
			checkShape(item, t.Elem(), fmt.Sprintf("%s[%d]", at, i), ps)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			ps.add(at, "must be a string, found %s (quote it)", kindOf(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			ps.add(at, "must be true or false, found %s", kindOf(v))
		}
	case reflect.Int, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			ps.add(at, "must be an integer, found %s", kindOf(v))
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			ps.add(at, "must be an integer, found %s", n)
		}
	}
}

func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f
	}
	return out
}

func suggestField(key string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf(" (did you mean %q?)", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return " (known fields: " + strings.Join(names, ", ") + ")"
}

func joinField(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

func kindOf(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return "the number " + string(x)
	}
	return fmt.Sprintf("%T", v)
}

// ByteSize is a size in bytes. In a policy it is a plain integer or a string with a unit:
// "500MB" (decimal: kB/KB, MB, GB, TB, PB) or "10GiB" (binary: KiB, MiB, GiB, TiB, PiB), with an
// optional space and decimal fraction ("1.5GiB") as long as the result is a whole number of bytes.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	size   int64
}{
	{"PiB", 1 << 50}, {"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"PB", 1e15}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"KB", 1e3}, {"B", 1},
}

var byteSizePattern = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))? ?([A-Za-z]*)$`)

// ParseByteSize parses "10GiB", "500 MB", "1.5GiB" or "1024".
func ParseByteSize(s string) (ByteSize, error) {
	m := byteSizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("size %q: want a whole number with an optional unit, such as 10GiB or 500MB", s)
	}
	unit := int64(1)
	if m[3] != "" {
		found := false
		for _, u := range byteUnits {
			if u.suffix == m[3] {
				unit, found = u.size, true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("size %q: unknown unit %q; use B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB", s, m[3])
		}
	}
	// Integer arithmetic with overflow checks: a float would round a byte limit silently.
	whole, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || whole > (1<<63-1)/unit {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	total := whole * unit
	if frac := m[2]; frac != "" {
		if len(frac) > 18 {
			return 0, fmt.Errorf("size %q has too many decimal places", s)
		}
		num, _ := strconv.ParseInt(frac, 10, 64)
		den := int64(1)
		for range len(frac) {
			den *= 10
		}
		// num/den*unit must be a whole number of bytes: unit*num divisible by den. unit is at most
		// 2^50 and num below 10^18, so compute in two steps to stay within int64.
		g := gcd(num, den)
		num, den = num/g, den/g
		if unit%den != 0 {
			return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
		}
		part := unit / den
		if num > 0 && part > (1<<63-1-total)/num {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		total += part * num
	}
	return ByteSize(total), nil
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	if a == 0 {
		return 1
	}
	return a
}

// String is the size in the unit that divides it exactly with the smallest count ("10GiB",
// "50GB"), or the bare number of bytes.
func (b ByteSize) String() string {
	if b <= 0 {
		return strconv.FormatInt(int64(b), 10)
	}
	best, bestUnit := int64(b), ""
	for _, u := range byteUnits {
		if u.suffix == "KB" || u.suffix == "B" {
			continue
		}
		if int64(b)%u.size == 0 && int64(b)/u.size < best {
			best, bestUnit = int64(b)/u.size, u.suffix
		}
	}
	return strconv.FormatInt(best, 10) + bestUnit
}

// MarshalJSON writes the size as String does: a string with a unit, or a plain integer.
func (b ByteSize) MarshalJSON() ([]byte, error) {
	s := b.String()
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return []byte(s), nil
	}
	return json.Marshal(s)
}

// UnmarshalJSON accepts a non-negative integer or a size string; null leaves the size unset.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		v, err := ParseByteSize(s)
		if err != nil {
			return err
		}
		*b = v
		return nil
	}
	n, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil {
		return fmt.Errorf("size %s: want a whole number of bytes or a string such as \"10GiB\"", data)
	}
	if n < 0 {
		return fmt.Errorf("size %d must not be negative", n)
	}
	*b = ByteSize(n)
	return nil
}
