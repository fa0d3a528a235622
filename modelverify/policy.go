package modelverify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/echelongraph/go-modelverify/internal/scan"
	"github.com/echelongraph/go-modelverify/manifest"
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

// knownFormats are the format names the scanner reports; allowFormats must use them.
var knownFormats = formatNames(scan.Formats)

// pickleFormats always carry pickle data, so allowing one while pickle is denied is a
// contradiction the loader reports.
var pickleFormats = formatNames(scan.PickleFormats)

func formatNames(fs []scan.Format) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}

// DefaultAllowFormats is the allowed-format list of a policy that names none: the weight formats
// that cannot execute code, the model formats whose code the scanner finds and the code rule
// judges (ONNX and TFLite custom operators, Keras Lambda layers; their file and import
// references, and a TensorFlow graph's file and Python ops, are scan findings), and the
// configuration and tokenizer files: "json", "text", "sentencepiece". "unknown" (content the
// scanner does not recognise) is not in it: a policy that must load such files lists it.
var DefaultAllowFormats = []string{"safetensors", "safetensors-index", "gguf", "onnx",
	"keras", "keras-config", "keras-h5", "hdf5", "keras-metadata", "tf-savedmodel", "tflite",
	"json", "text", "sentencepiece"}

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
	// Records says how far a verification of the same commit made earlier is trusted.
	Records RecordRules `json:"records,omitempty"`
	// Registries are the approved OCI registries (policy_oci.go): oci:// references load only
	// from these, and only from the repositories they list.
	Registries []Registry `json:"registries,omitempty"`
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
	// RequireSubjectName requires the signed statement's subject name to name the repository:
	// its name ("tiny" for acme/tiny, as model_signing names a model after its directory) or
	// its id ("acme/tiny"). A signature made for another of the publisher's models is refused.
	RequireSubjectName bool `json:"requireSubjectName,omitempty"`
	// PinnedManifests pin repositories to signed manifests by root digest, as an image is
	// pinned by digest: a repository listed here loads only if its signed manifest is one of
	// those pinned for it, so neither an older signed commit nor another signed model passes.
	PinnedManifests []ManifestPin `json:"pinnedManifests,omitempty"`
	// OCI are the OCI repositories the publisher owns: "host/repository", with path.Match
	// globs in the repository part ("ghcr.io/acme/*"), on a host listed in Registries.
	OCI []string `json:"oci,omitempty"`
	// RequireDigest refuses oci:// references that name a tag instead of a manifest digest.
	RequireDigest bool `json:"requireDigest,omitempty"`
}

// ManifestPin pins one repository to one signed manifest. A repository may be pinned to
// several (during a roll-over, the old and the new).
type ManifestPin struct {
	// Repo is the repository id ("org/name"); one the publisher claims.
	Repo string `json:"repo"`
	// Digest is the signed manifest's root digest, "sha256:" and 64 lower-case hex digits, as
	// Evidence.ManifestDigest and the audit log's manifestDigest give it.
	Digest string `json:"digest"`
}

// PinnedDigests returns the root digests the publisher pins repoID to, or nil if it pins
// none.
func (pub *Publisher) PinnedDigests(repoID string) []string {
	var out []string
	for _, pin := range pub.PinnedManifests {
		if pin.Repo == repoID {
			out = append(out, pin.Digest)
		}
	}
	return out
}

// subjectNames returns the subject names RequireSubjectName accepts for repoID: its name and
// its id.
func subjectNames(repoID string) []string {
	if _, name, ok := strings.Cut(repoID, "/"); ok {
		return []string{name, repoID}
	}
	return []string{repoID}
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
// issuer that vouched for it, each given exactly or as a regular expression, and optionally what
// else Fulcio recorded about the signer (for a CI workflow: repository, ref, commit, trigger).
// A regular expression always matches the whole value, as if written ^(?:...)$.
type SigstoreIdentity struct {
	// Identity is the exact SAN: an e-mail address or a URI such as a workflow's.
	Identity string `json:"identity,omitempty"`
	// IdentityRegexp is a Go regular expression for the whole SAN.
	IdentityRegexp string `json:"identityRegexp,omitempty"`
	// Issuer is the exact OIDC issuer URL ("https://token.actions.githubusercontent.com").
	Issuer string `json:"issuer,omitempty"`
	// IssuerRegexp is a Go regular expression for the whole issuer.
	IssuerRegexp string `json:"issuerRegexp,omitempty"`
	// Extensions constrain the certificate's Fulcio extensions, each exactly or by a regular
	// expression: "signed by this repository's release workflow on a tag".
	Extensions *manifest.FulcioExtensions `json:"extensions,omitempty"`
}

// CertificateIdentity is a signer with an X.509 certificate chaining to one of Roots, whose
// leaf carries one of ExtendedKeyUsages and names Subject.
type CertificateIdentity struct {
	// Roots are the trusted CA certificates, PEM, one or more per source.
	Roots []PEMSource `json:"roots"`
	// ExtendedKeyUsages are the extended key usages the leaf must carry one of: names
	// (codeSigning, serverAuth, ...), dotted OIDs, or "none" for a leaf without the extension.
	// Default [codeSigning], so that a TLS certificate from the same CA cannot sign models.
	ExtendedKeyUsages []string `json:"extendedKeyUsages,omitempty"`
	// Subject constrains the leaf's subject (commonName, organization, organizationalUnit) and
	// subject alternative names (email, uri, dnsName), each exactly or by a regular
	// expression. Unset, any leaf under Roots with the usage may sign.
	Subject *manifest.CertificateSubject `json:"subject,omitempty"`
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
	// AllowFormats are the formats that may load, by the names Scan reports in
	// ScanReport.Format (POLICY.md lists them). Default DefaultAllowFormats.
	AllowFormats []string `json:"allowFormats,omitempty"`
	// Pickle is deny (the default) or scan.
	Pickle PickleAction `json:"pickle,omitempty"`
	// AllowCode lets the model hold code that loaders run. Code is known by name (.py, .pyw,
	// .pyc, .pyo, .pyz, .pyd, .so and versioned .so.N, .dylib, .dll: transformers imports .py
	// files under trust_remote_code, Python and ctypes load the rest) and by content, whatever
	// the name (TorchScript archives, which torch.load runs through torch.jit.load; ELF,
	// Mach-O and PE binaries), in the file itself or in any archive member. Default false.
	// When true, code files load as they are; an archive that merely holds code must still
	// pass the format, pickle and scan rules.
	AllowCode bool `json:"allowCode,omitempty"`
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

// Recheck says what a Verify of a commit verified earlier, and still in the cache, checks again.
type Recheck string

const (
	// RecheckMetadata reuses the authenticated verification record of the earlier decision:
	// the policy, the signature and the tree are checked again, and each file's metadata
	// compared; a file is hashed again only when something differs. The default.
	RecheckMetadata Recheck = "metadata"
	// RecheckFull hashes and scans every file again on every Verify (from the cache, without
	// downloading it again), for those who do not trust the disk.
	RecheckFull Recheck = "full"
)

// RecordRules say how the verification record of an earlier decision is used (see
// Verifier.Verify).
type RecordRules struct {
	// Recheck is metadata (the default) or full.
	Recheck Recheck `json:"recheck,omitempty"`
	// KeyFile holds the key verification records are authenticated with (HMAC-SHA256): at
	// least 32 bytes, created with 32 random bytes, hex, mode 0600, if it does not exist. It must
	// lie outside the cache. Relative to the policy file. Default: MODELVERIFY_RECORD_KEY_FILE,
	// else modelverify/record.key under the user's configuration directory.
	KeyFile string `json:"keyFile,omitempty"`
}

// ErrInvalidPolicy is matched (errors.Is) by every error that loading or validating a policy
// returns for a problem in the document.
var ErrInvalidPolicy = errors.New("invalid policy")

// FieldError is one problem in a policy document, at Field: a path such as
// "publishers[2].namespaces[0]" (empty for the document as a whole).
type FieldError struct {
	Field   string
	Message string
	// meant are the fields a misspelt field was probably meant to be, whose absence is then
	// not reported again.
	meant []string
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
	// Problems lists each problem: first those of the document's shape (unknown fields,
	// values of the wrong kind), then the rest, which leave out what a shape problem already
	// explains.
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
	p, ps := decodePolicy(data, baseDir)
	if len(ps) > 0 {
		return nil, ps.err(source)
	}
	return p, nil
}

// decodePolicy decodes, defaults and checks a policy document. It returns the policy whenever
// the document could be decoded at all, with every problem found, so that CheckPolicyFile can
// go on to check the resources it names in the same round.
func decodePolicy(data []byte, baseDir string) (*Policy, problems) {
	if len(data) > maxPolicySize {
		return nil, problems{{Message: fmt.Sprintf("document is larger than %d bytes", maxPolicySize)}}
	}
	if err := singleDocument(data); err != nil {
		return nil, problems{{Message: err.Error()}}
	}
	// Strict YAML refuses duplicate keys, which would otherwise let a later line silently
	// override an earlier one.
	jsonDoc, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, problems{{Message: "not valid YAML or JSON: " + err.Error()}}
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(jsonDoc))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, problems{{Message: "not valid YAML or JSON: " + err.Error()}}
	}
	if _, ok := tree.(map[string]any); !ok {
		return nil, problems{{Message: "the document must be a mapping (apiVersion, kind, mode, endpoints, ...)"}}
	}
	// encoding/json matches keys case-insensitively and reports unknown fields without their
	// path, so the document's shape is checked first, exactly and everywhere at once.
	// checkShape removes what it reports, so the rest of the document is decoded and judged in
	// the same round, and every problem is reported at once.
	var shape problems
	checkShape(tree, reflect.TypeFor[Policy](), "", &shape)
	if len(shape) > 0 {
		if jsonDoc, err = json.Marshal(tree); err != nil {
			return nil, append(shape, &FieldError{Message: err.Error()})
		}
	}
	p := new(Policy)
	strict := json.NewDecoder(bytes.NewReader(jsonDoc))
	strict.DisallowUnknownFields()
	if err := strict.Decode(p); err != nil {
		return nil, append(shape, &FieldError{Message: err.Error()})
	}
	var ps problems
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
	all := shape
	for _, fe := range ps {
		if !shadowed(fe.Field, shape) {
			all = append(all, fe)
		}
	}
	return p, all
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

// Validate checks the policy and every file it names (keys, roots, trust root, each built into
// the signature verifier that will use it) and returns a *PolicyError listing every problem,
// or nil. LoadPolicy and ParsePolicy call it; call it yourself only for a policy built in code,
// where zero values mean the documented defaults. CheckPolicy also checks the resources the
// Verifier opens when it starts (the audit log, the record key).
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

// FormatAllowed reports whether files of format (a ScanReport.Format name) may load under the
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
		out := fmt.Sprintf("sigstore identity %s issued by %s", who, iss)
		if s.Extensions != nil {
			if c := s.Extensions.String(); c != "" {
				out += " with " + c
			}
		}
		return out
	case id.PublicKey != nil:
		return "public key " + id.PublicKey.String()
	case id.Certificate != nil:
		names := make([]string, len(id.Certificate.Roots))
		for i, r := range id.Certificate.Roots {
			names[i] = r.String()
		}
		c := id.Certificate
		out := "certificate chaining to " + strings.Join(names, ", ")
		if len(c.ExtendedKeyUsages) > 0 {
			out += " for " + strings.Join(c.ExtendedKeyUsages, " or ")
		}
		if c.Subject != nil {
			if s := c.Subject.String(); s != "" {
				out += " naming " + s
			}
		}
		return out
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
	abs(&p.Records.KeyFile)
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
		for _, id := range pub.Identities {
			if id.Certificate != nil && id.Certificate.ExtendedKeyUsages == nil {
				id.Certificate.ExtendedKeyUsages = slices.Clone(manifest.DefaultExtendedKeyUsages)
			}
		}
	}
	if p.Content.AllowFormats == nil {
		p.Content.AllowFormats = slices.Clone(DefaultAllowFormats)
	}
	if p.Content.Pickle == "" {
		p.Content.Pickle = PickleDeny
	}
	if p.Records.Recheck == "" {
		p.Records.Recheck = RecheckMetadata
	}
}
