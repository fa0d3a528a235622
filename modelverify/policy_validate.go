package modelverify

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/echelongraph/go-modelverify/manifest"
)

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
	p.checkRegistries(&ps)
	p.Content.check(&ps)
	if p.Audit.Path != "" && strings.ContainsRune(p.Audit.Path, 0) {
		ps.add("audit.path", "contains a NUL byte")
	}
	p.Records.check(&ps)
	return ps
}

var endpointName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (p *Policy) checkEndpoints(ps *problems) {
	if len(p.Endpoints) == 0 && len(p.Registries) == 0 {
		// A policy may approve registries only (models come from OCI registries alone), or
		// Hub endpoints only; one that approves no source at all can only refuse, and is a
		// mistake.
		ps.add("endpoints", "the policy approves no source: list at least one Hub endpoint (endpoints) or OCI registry (registries)")
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
		if len(pub.Namespaces) == 0 && len(pub.OCI) == 0 {
			ps.add(at+".namespaces", "at least one namespace (or oci repository) is required")
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
		p.checkPins(pub, at, ps)
	}
}

var rootDigest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// checkPins refuses pins that could never apply: to a repository another publisher owns, or
// for a publisher whose models need no signature (there is no signed manifest to compare).
func (p *Policy) checkPins(pub *Publisher, at string, ps *problems) {
	if len(pub.PinnedManifests) > 0 && !pub.SignatureRequired() {
		ps.add(at+".pinnedManifests", "pins signed manifests, but requireSignature is false; require a signature or remove the pins")
	}
	if pub.RequireSubjectName && !pub.SignatureRequired() {
		ps.add(at+".requireSubjectName", "set, but requireSignature is false: there is no signed subject to check")
	}
	seen := map[ManifestPin]int{}
	for j, pin := range pub.PinnedManifests {
		field := fmt.Sprintf("%s.pinnedManifests[%d]", at, j)
		if pat, err := parseNamespacePattern(pin.Repo); err != nil {
			ps.add(field+".repo", "%v", err)
		} else if pat.glob {
			ps.add(field+".repo", "%q must be one repository (org/name), not a pattern", pin.Repo)
		} else if owner, err := p.Publisher(pin.Repo); err == nil && owner != pub {
			ps.add(field+".repo", "%q belongs to publisher %q, so this pin would never apply; move it there", pin.Repo, owner.Name)
		} else if err != nil {
			ps.add(field+".repo", "%q is not a repository of this publisher: %v", pin.Repo, err)
		}
		if !rootDigest.MatchString(pin.Digest) {
			ps.add(field+".digest", "%q must be \"sha256:\" and 64 lower-case hex digits (the manifest's root digest)", pin.Digest)
		}
		if k, dup := seen[pin]; dup {
			ps.add(field, "repeats pinnedManifests[%d]", k)
		}
		seen[pin] = j
	}
}

func (pub *Publisher) checkSigning(at string, ps *problems) {
	hasSigstore := false
	for j := range pub.Identities {
		id := &pub.Identities[j]
		field := fmt.Sprintf("%s.identities[%d]", at, j)
		before := len(*ps)
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
			addOptionErrors(field+".certificate", manifest.CheckExtendedKeyUsages(id.Certificate.ExtendedKeyUsages), ps)
			if id.Certificate.Subject != nil {
				addOptionErrors(field+".certificate.subject", id.Certificate.Subject.Check(), ps)
			}
		}
		if set != 1 {
			ps.add(field, "exactly one of sigstore, publicKey or certificate is required, found %d", set)
		}
		// The identity is then built as NewVerifier builds it, so that what the verifier would
		// refuse at start-up (a key model_signing cannot verify, a trust root that does not
		// parse) is reported here, by the same code.
		if len(*ps) == before && (pub.TrustRoot == "" || checkTrustRoot(pub.TrustRoot, at+".trustRoot", &problems{})) {
			if _, sub, err := identityVerifier(pub, *id); err != nil {
				ps.add(field+sub, "%v", err)
			}
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
		checkIdentityRegexp(s.IdentityRegexp, at+".identityRegexp", ps)
	case strings.ContainsFunc(s.Identity, isSpaceOrControl):
		ps.add(at+".identity", "contains white space or a control character")
	}
	switch {
	case s.Issuer == "" && s.IssuerRegexp == "":
		ps.add(at, "one of issuer or issuerRegexp is required")
	case s.Issuer != "" && s.IssuerRegexp != "":
		ps.add(at, "issuer and issuerRegexp are exclusive")
	case s.IssuerRegexp != "":
		checkIdentityRegexp(s.IssuerRegexp, at+".issuerRegexp", ps)
	case !strings.HasPrefix(s.Issuer, "https://") || strings.ContainsFunc(s.Issuer, isSpaceOrControl):
		ps.add(at+".issuer", "%q must be an https:// OIDC issuer URL", s.Issuer)
	}
	if s.Extensions != nil {
		addOptionErrors(at+".extensions", s.Extensions.Check(), ps)
	}
}

// checkIdentityRegexp checks a pattern as the verifier will match it: against the whole value
// (so "alice@example\.com" cannot accept "malice@example.com.evil.net", with or without a
// written ^ and $), and never accepting an empty value.
func checkIdentityRegexp(expr, at string, ps *problems) {
	if _, err := manifest.CompileAnchored(expr); err != nil {
		ps.add(at, "%v", err)
	}
}

// addOptionErrors reports the verifier's own checks of a set of options at their fields.
func addOptionErrors(at string, errs []*manifest.OptionError, ps *problems) {
	for _, e := range errs {
		ps.add(at+"."+e.Field, "%s", e.Message)
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

// checkPublicKey checks the key's PEM; which keys are accepted is the key verifier's to say
// (checkSigning builds it): ECDSA on P-256, P-384 or P-521, as model_signing signs with.
func checkPublicKey(s *PEMSource, at string, ps *problems) {
	data, ok := checkSource(s, at, ps)
	if !ok {
		return
	}
	field := sourceField(s, at)
	keys, certificate := 0, false
	found := eachPEMBlock(data, func(n int, block *pem.Block) bool {
		keys += boolInt(block.Type == "PUBLIC KEY")
		certificate = certificate || block.Type == "CERTIFICATE"
		return true
	})
	switch {
	case found == 0:
		ps.add(field, "no PEM block found")
	case keys > 1:
		ps.add(field, "holds %d public keys; give one key per identity", keys)
	case keys == 0 && certificate:
		ps.add(field, "PEM block \"CERTIFICATE\" is not a PUBLIC KEY; a signer with a certificate is a certificate identity (certificate.roots)")
	}
}

func checkCertificates(s *PEMSource, at string, ps *problems) {
	data, ok := checkSource(s, at, ps)
	if !ok {
		return
	}
	field := sourceField(s, at)
	found := eachPEMBlock(data, func(n int, block *pem.Block) bool {
		if block.Type != "CERTIFICATE" {
			ps.add(field, "PEM block %d is %q, not a CERTIFICATE", n, block.Type)
			return false
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			ps.add(field, "PEM block %d is not a valid certificate: %v", n, err)
			return false
		}
		return true
	})
	if found == 0 {
		ps.add(field, "no PEM CERTIFICATE block found")
	}
}

// eachPEMBlock calls fn with each PEM block in data, numbered from 1, until fn returns false,
// and returns how many blocks it saw.
func eachPEMBlock(data []byte, fn func(n int, block *pem.Block) bool) int {
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return n
		}
		n++
		if !fn(n, block) {
			return n
		}
	}
}

// checkTrustRoot checks that the file is a Sigstore trusted root or ClientTrustConfig by its
// media type; the signing library parses it fully when the verifier is built.
func checkTrustRoot(file, at string, ps *problems) bool {
	data, err := readBounded(file, maxTrustRootLen)
	if err != nil {
		ps.add(at, "%v", err)
		return false
	}
	var doc struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		ps.add(at, "%s is not JSON: %v", file, err)
		return false
	}
	if !strings.HasPrefix(doc.MediaType, "application/vnd.dev.sigstore.trustedroot+json") &&
		!strings.HasPrefix(doc.MediaType, "application/vnd.dev.sigstore.clienttrustconfig") {
		ps.add(at, "%s has mediaType %q; want a Sigstore trusted root or ClientTrustConfig", file, doc.MediaType)
		return false
	}
	return true
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
// a FIFO that would block) is refused before it is opened, and again on the opened file, should
// the path have been swapped in between (O_NONBLOCK keeps that open from blocking on a FIFO).
// The buffer is sized from the file once: a signature of 100,000 files is read without regrowth.
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
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", file)
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(fi.Size(), limit)+1))
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", file, limit)
	}
	return buf.Bytes(), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func isSpaceOrControl(r rune) bool { return r == ' ' || isControl(r) }

func (r *RecordRules) check(ps *problems) {
	switch r.Recheck {
	case "", RecheckMetadata, RecheckFull:
	default:
		ps.add("records.recheck", "%q is not a recheck rule; use %q or %q", r.Recheck, RecheckMetadata, RecheckFull)
	}
	if strings.ContainsRune(r.KeyFile, 0) {
		ps.add("records.keyFile", "contains a NUL byte")
	}
}
