package manifest

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// CertificateVerifierOptions says which certificates may sign: those chaining to Roots, with
// the extended key usages and the subject asked for.
type CertificateVerifierOptions struct {
	// Roots are the trust anchors, each a PEM file's content that may hold several
	// certificates.
	Roots [][]byte
	// ExtendedKeyUsages are the extended key usages (EKUs) the leaf must carry at least one
	// of. Nil means DefaultExtendedKeyUsages: codeSigning, so that a TLS server certificate
	// from the same CA cannot sign models. Each entry is a name (codeSigning, serverAuth,
	// clientAuth, emailProtection, timeStamping, ocspSigning, anyExtendedKeyUsage, ...), a
	// dotted OID, or "none", which accepts a leaf that has no EKU extension at all.
	ExtendedKeyUsages []string
	// Subject constrains whom the leaf names. Empty accepts any leaf that chains to Roots.
	Subject CertificateSubject
}

// DefaultExtendedKeyUsages is what a certificate signer's leaf must carry when
// CertificateVerifierOptions.ExtendedKeyUsages is nil.
var DefaultExtendedKeyUsages = []string{"codeSigning"}

// CertificateSubject constrains the names in a signer's leaf certificate: its subject's
// attributes and its subject alternative names. Each is given exactly (X) or as a regular
// expression (XRegexp) that must match the whole value (see CompileAnchored); set at most one of
// each pair. Every constraint that is set must hold, and holds when any one of the leaf's values
// of that kind satisfies it (a certificate may carry several e-mail addresses, as it may serve
// several host names).
type CertificateSubject struct {
	// CommonName is the subject's CN (OID 2.5.4.3).
	CommonName       string `json:"commonName,omitempty"`
	CommonNameRegexp string `json:"commonNameRegexp,omitempty"`
	// Organization is the subject's O (OID 2.5.4.10).
	Organization       string `json:"organization,omitempty"`
	OrganizationRegexp string `json:"organizationRegexp,omitempty"`
	// OrganizationalUnit is the subject's OU (OID 2.5.4.11).
	OrganizationalUnit       string `json:"organizationalUnit,omitempty"`
	OrganizationalUnitRegexp string `json:"organizationalUnitRegexp,omitempty"`
	// Email is an rfc822Name subject alternative name.
	Email       string `json:"email,omitempty"`
	EmailRegexp string `json:"emailRegexp,omitempty"`
	// URI is a uniformResourceIdentifier subject alternative name.
	URI       string `json:"uri,omitempty"`
	URIRegexp string `json:"uriRegexp,omitempty"`
	// DNSName is a dNSName subject alternative name.
	DNSName       string `json:"dnsName,omitempty"`
	DNSNameRegexp string `json:"dnsNameRegexp,omitempty"`
}

// Check reports every constraint that cannot be used: both halves of a pair set, or a regular
// expression that does not compile or would match an absent name.
func (s *CertificateSubject) Check() []*OptionError {
	_, problems := compileConstraints(s)
	return problems
}

// String lists the constraints that are set, for messages.
func (s *CertificateSubject) String() string { return describeConstraints(s) }

// subjectValues returns the leaf's values that a CertificateSubject field constrains, and how
// to name them in a refusal.
func subjectValues(field string, c *x509.Certificate) (what string, values []string) {
	switch field {
	case "commonName":
		// Every CN, not only the last one that pkix.Name.CommonName keeps.
		for _, atv := range c.Subject.Names {
			if s, ok := atv.Value.(string); ok && atv.Type.Equal(oidCommonName) {
				values = append(values, s)
			}
		}
		return "certificate subject commonName (CN)", values
	case "organization":
		return "certificate subject organization (O)", c.Subject.Organization
	case "organizationalUnit":
		return "certificate subject organizationalUnit (OU)", c.Subject.OrganizationalUnit
	case "email":
		return "certificate e-mail SAN", c.EmailAddresses
	case "uri":
		for _, u := range c.URIs {
			values = append(values, u.String())
		}
		return "certificate URI SAN", values
	case "dnsName":
		return "certificate DNS SAN", c.DNSNames
	}
	panic("manifest: CertificateSubject field " + field + " has no certificate value")
}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// extKeyUsages names every extended key usage crypto/x509 knows, with its OID, so that a
// policy can name one either way and a refusal can name what a certificate carries.
var extKeyUsages = []extKeyUsage{
	{"anyExtendedKeyUsage", x509.ExtKeyUsageAny, "2.5.29.37.0"},
	{"serverAuth", x509.ExtKeyUsageServerAuth, "1.3.6.1.5.5.7.3.1"},
	{"clientAuth", x509.ExtKeyUsageClientAuth, "1.3.6.1.5.5.7.3.2"},
	{"codeSigning", x509.ExtKeyUsageCodeSigning, "1.3.6.1.5.5.7.3.3"},
	{"emailProtection", x509.ExtKeyUsageEmailProtection, "1.3.6.1.5.5.7.3.4"},
	{"ipsecEndSystem", x509.ExtKeyUsageIPSECEndSystem, "1.3.6.1.5.5.7.3.5"},
	{"ipsecTunnel", x509.ExtKeyUsageIPSECTunnel, "1.3.6.1.5.5.7.3.6"},
	{"ipsecUser", x509.ExtKeyUsageIPSECUser, "1.3.6.1.5.5.7.3.7"},
	{"timeStamping", x509.ExtKeyUsageTimeStamping, "1.3.6.1.5.5.7.3.8"},
	{"ocspSigning", x509.ExtKeyUsageOCSPSigning, "1.3.6.1.5.5.7.3.9"},
	{"microsoftServerGatedCrypto", x509.ExtKeyUsageMicrosoftServerGatedCrypto, "1.3.6.1.4.1.311.10.3.3"},
	{"netscapeServerGatedCrypto", x509.ExtKeyUsageNetscapeServerGatedCrypto, "2.16.840.1.113730.4.1"},
	{"microsoftCommercialCodeSigning", x509.ExtKeyUsageMicrosoftCommercialCodeSigning, "1.3.6.1.4.1.311.2.1.22"},
	{"microsoftKernelCodeSigning", x509.ExtKeyUsageMicrosoftKernelCodeSigning, "1.3.6.1.4.1.311.61.1.1"},
}

type extKeyUsage struct {
	name  string
	usage x509.ExtKeyUsage
	oid   string
}

// noExtKeyUsage is the ExtendedKeyUsages entry that accepts a leaf without the extension.
const noExtKeyUsage = "none"

// dottedOID matches an OID written out: at least two arcs, no leading zeros.
var dottedOID = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$`)

// canonicalExtKeyUsage returns the name an ExtendedKeyUsages entry stands for: a known name as
// it is, a known usage's OID as its name, any other OID as itself, and "none".
func canonicalExtKeyUsage(entry string) (string, error) {
	if entry == noExtKeyUsage {
		return entry, nil
	}
	for _, u := range extKeyUsages {
		if entry == u.name || entry == u.oid {
			return u.name, nil
		}
	}
	if dottedOID.MatchString(entry) {
		return entry, nil
	}
	names := make([]string, len(extKeyUsages))
	for i, u := range extKeyUsages {
		names[i] = u.name
	}
	return "", fmt.Errorf("%q is not an extended key usage; use one of %s, a dotted OID, or %q", entry, strings.Join(names, ", "), noExtKeyUsage)
}

// CheckExtendedKeyUsages reports every entry of a CertificateVerifierOptions.ExtendedKeyUsages
// list that names no extended key usage.
func CheckExtendedKeyUsages(entries []string) []*OptionError {
	var problems []*OptionError
	if entries != nil && len(entries) == 0 {
		problems = append(problems, &OptionError{Field: "extendedKeyUsages", Message: "is empty; list at least one usage (leave it out for the default, codeSigning)"})
	}
	for i, e := range entries {
		if _, err := canonicalExtKeyUsage(e); err != nil {
			problems = append(problems, &OptionError{Field: fmt.Sprintf("extendedKeyUsages[%d]", i), Message: err.Error()})
		}
	}
	return problems
}

// leafExtKeyUsages names the extended key usages c carries.
func leafExtKeyUsages(c *x509.Certificate) []string {
	var out []string
	for _, got := range c.ExtKeyUsage {
		name := fmt.Sprintf("unnamed usage %d", got)
		for _, u := range extKeyUsages {
			if u.usage == got {
				name = u.name
			}
		}
		out = append(out, name)
	}
	for _, oid := range c.UnknownExtKeyUsage {
		out = append(out, oid.String())
	}
	return out
}

type certificateVerifier struct {
	roots *x509.CertPool
	// ekus are the canonical names the leaf must carry one of (see chainUsages).
	ekus        []string
	chainUsages []x509.ExtKeyUsage
	subject     []valueConstraint
	now         func() time.Time
}

// NewCertificateVerifier returns a Verifier for bundles signed with a certificate that chains
// to one of opts.Roots. It reads model_signing's x509CertificateChain (leaf first, then
// untrusted intermediates) under the v0.3 media type, which sigstore-go alone refuses. The
// leaf must carry one of the extended key usages asked for (codeSigning unless told
// otherwise), its key usage, when it has one, must allow digitalSignature, and it must name the
// subject asked for. The whole chain must be valid now: a bundle made with a plain key and
// certificate carries no trusted time of signing, so the time of verification is the only one
// that can be checked, as the OMS spec asks.
func NewCertificateVerifier(opts CertificateVerifierOptions) (Verifier, error) {
	pool := x509.NewCertPool()
	n := 0
	for i, r := range opts.Roots {
		certs, err := parseCertificatesPEM(r)
		if err != nil {
			return nil, fmt.Errorf("trust anchor %d: %w", i, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: no trust anchor certificates given", ErrUntrustedChain)
	}
	entries := opts.ExtendedKeyUsages
	if entries == nil {
		entries = DefaultExtendedKeyUsages
	}
	problems := CheckExtendedKeyUsages(entries)
	subject, subjectProblems := compileConstraints(&opts.Subject)
	if err := optionErrors(append(problems, subjectProblems...)); err != nil {
		return nil, err
	}
	v := &certificateVerifier{roots: pool, subject: subject, now: time.Now}
	for _, e := range entries {
		name, _ := canonicalExtKeyUsage(e)
		v.ekus = append(v.ekus, name)
	}
	v.chainUsages = chainUsages(v.ekus)
	return v, nil
}

// chainUsages says the usages to crypto/x509, which then also refuses an intermediate restricted
// to other usages. "none" and unnamed OIDs cannot be said to it, and anyExtendedKeyUsage means
// no restriction to it: with those, only the leaf is checked.
func chainUsages(ekus []string) []x509.ExtKeyUsage {
	var out []x509.ExtKeyUsage
	for _, name := range ekus {
		i := slices.IndexFunc(extKeyUsages, func(u extKeyUsage) bool { return u.name == name })
		if i < 0 || extKeyUsages[i].usage == x509.ExtKeyUsageAny {
			return []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
		}
		out = append(out, extKeyUsages[i].usage)
	}
	return out
}

// checkUsage refuses a leaf that may not sign models: one whose key usage excludes
// digitalSignature, or that carries none of the extended key usages asked for.
func (v *certificateVerifier) checkUsage(c *x509.Certificate) error {
	if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("%w: certificate %q has a key usage without digitalSignature, so its key may not sign", ErrCertificateUsage, c.Subject.String())
	}
	have := leafExtKeyUsages(c)
	for _, want := range v.ekus {
		if want == noExtKeyUsage && len(have) == 0 {
			return nil
		}
		if slices.Contains(have, want) {
			return nil
		}
	}
	found := "no extended key usage extension"
	if len(have) > 0 {
		found = "extended key usages [" + strings.Join(have, ", ") + "]"
	}
	return fmt.Errorf("%w: certificate %q has %s; want one of [%s]", ErrCertificateUsage, c.Subject.String(), found, strings.Join(v.ekus, ", "))
}

// checkSubject refuses a leaf that does not name the subject asked for.
func (v *certificateVerifier) checkSubject(c *x509.Certificate) error {
	for _, want := range v.subject {
		what, values := subjectValues(want.field, c)
		if err := want.matchAny(what, values); err != nil {
			return fmt.Errorf("certificate %q: %w", c.Subject.String(), err)
		}
	}
	return nil
}

func (v *certificateVerifier) Kind() SignerKind { return SignerCertificate }

func (v *certificateVerifier) verifySignature(_ context.Context, data []byte) (*verifiedEnvelope, error) {
	b, err := parseBundleV03(data)
	if err != nil {
		return nil, err
	}
	vm := b.VerificationMaterial
	if vm.X509CertificateChain == nil && vm.Certificate == nil {
		if vm.PublicKey != nil {
			return nil, fmt.Errorf("%w: the bundle is signed with a bare public key, not a certificate; verify it as a key signature", ErrVerificationMaterial)
		}
		return nil, fmt.Errorf("%w: verificationMaterial has no x509CertificateChain", ErrBundle)
	}
	ders, err := vm.certificates()
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrBundle, i, err)
		}
	}
	leaf := certs[0]
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: the signing certificate %q holds a %T key; model_signing signs with ECDSA only", ErrUnsupportedKey, leaf.Subject.String(), leaf.PublicKey)
	}
	if err := v.checkChain(leaf, certs[1:]); err != nil {
		return nil, err
	}
	payload, err := b.payload()
	if err != nil {
		return nil, err
	}
	sig, err := b.signature()
	if err != nil {
		return nil, err
	}
	compat, err := verifyDSSE(pub, b.DSSEEnvelope.PayloadType, payload, sig)
	if err != nil {
		if errors.Is(err, ErrSignature) {
			return nil, fmt.Errorf("%w: the DSSE signature does not verify with the key of certificate %q", ErrSignature, leaf.Subject.String())
		}
		return nil, err
	}
	// Last, with the signature known good, whether it is the signer asked for.
	if err := v.checkSubject(leaf); err != nil {
		return nil, err
	}
	info := SignerInfo{Kind: SignerCertificate}
	describeCertificate(&info, leaf)
	return &verifiedEnvelope{
		payload:     payload,
		payloadType: b.DSSEEnvelope.PayloadType,
		mediaType:   b.MediaType,
		signer:      info,
		compat:      compat,
	}, nil
}

// checkChain refuses a leaf that may not sign models (checkUsage), that is not valid now, or
// that does not chain to the verifier's roots through intermediates.
func (v *certificateVerifier) checkChain(leaf *x509.Certificate, intermediates []*x509.Certificate) error {
	if err := v.checkUsage(leaf); err != nil {
		return err
	}
	now := v.now()
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	if err := checkValidity(leaf, now); err != nil {
		return err
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: pool,
		CurrentTime:   now,
		// The leaf's usages were checked above, with a message that names them; here
		// crypto/x509 also refuses an intermediate that is restricted to other usages.
		KeyUsages: v.chainUsages,
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return fmt.Errorf("%w: %v", ErrCertificateExpired, err)
		}
		return fmt.Errorf("%w: signing certificate %q (issuer %q): %v", ErrUntrustedChain, leaf.Subject.String(), leaf.Issuer.String(), err)
	}
	return nil
}

// CheckCertificate judges a signer's certificate as v, made by NewCertificateVerifier, judges
// the certificate of a model_signing bundle, with the same code: the leaf's extended key usages
// and key usage, its validity now, its chain through intermediates (untrusted) to v's roots,
// and the subject asked for. It is for signatures made by other tools with a certificate's key
// (cosign sign --key K --certificate C), whose signature is checked elsewhere with the leaf's
// key; it checks no signature. Refusals wrap ErrCertificateUsage, ErrCertificateExpired,
// ErrUntrustedChain or ErrIdentity, and are *VerificationErrors like Verify's.
func CheckCertificate(v Verifier, leaf *x509.Certificate, intermediates []*x509.Certificate) (SignerInfo, error) {
	cv, ok := v.(*certificateVerifier)
	if !ok || leaf == nil {
		return SignerInfo{}, errors.New("manifest: CheckCertificate needs a leaf and a Verifier made by NewCertificateVerifier")
	}
	if err := cv.checkChain(leaf, intermediates); err != nil {
		return SignerInfo{}, &VerificationError{Kind: SignerCertificate, Err: err}
	}
	if err := cv.checkSubject(leaf); err != nil {
		return SignerInfo{}, &VerificationError{Kind: SignerCertificate, Err: err}
	}
	info := SignerInfo{Kind: SignerCertificate}
	describeCertificate(&info, leaf)
	return info, nil
}

// checkValidity names an expired (or not yet valid) leaf as such, with its dates.
func checkValidity(c *x509.Certificate, at time.Time) error {
	if at.Before(c.NotBefore) || at.After(c.NotAfter) {
		return fmt.Errorf("%w: certificate %q is valid from %s to %s, not at %s", ErrCertificateExpired,
			c.Subject.String(), c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return nil
}
