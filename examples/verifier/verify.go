package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/echelongraph/go-modelverify/manifest"
)

// verificationFailures are the manifest errors that mean the model or its signature is not
// what it claims (exit 1), as opposed to a failure to check it at all (exit 2).
var verificationFailures = []error{
	manifest.ErrInvalid, manifest.ErrRootDigest, manifest.ErrUnsafeName, manifest.ErrStatementType,
	manifest.ErrPredicateType, manifest.ErrSubject, manifest.ErrSymlink, manifest.ErrFileType,
	manifest.ErrMismatch, manifest.ErrBundle, manifest.ErrMediaType, manifest.ErrPayloadType,
	manifest.ErrVerificationMaterial, manifest.ErrSignature, manifest.ErrWrongKey,
	manifest.ErrUnsupportedKey, manifest.ErrUntrustedChain, manifest.ErrCertificateUsage,
	manifest.ErrCertificateExpired, manifest.ErrIdentity, manifest.ErrTransparencyLog,
}

func isVerificationFailure(err error) bool {
	for _, target := range verificationFailures {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func runVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "verify", "verifier verify [key|certificate|sigstore] MODEL_PATH --signature F [flags]\n"+
		"  key:         --public-key PEM\n"+
		"  certificate: --certificate-chain PEM [--certificate-chain PEM]... [--log-fingerprints]\n"+
		"               [--extended-key-usage EKU]... [--subject NAME=VALUE]...\n"+
		"  sigstore:    --identity ID | --identity-regexp RE, --identity-provider URL | --identity-provider-regexp RE\n"+
		"               [--extension NAME=VALUE]... [--trust-config F]")
	var (
		mf    modelFlags
		sf    signatureFlags
		chain stringList
	)
	mf.register(fs)
	// The signed manifest records whether links were followed and which paths were left out,
	// and the model is hashed as it says; these flags add to it, as in model_signing.
	fs.Lookup("allow-symlinks").Usage = "accepted for model_signing compatibility: the signed manifest records whether links were followed"
	sf.register(fs, true)
	ignoreUnsigned := fs.Bool("ignore-unsigned-files", false, "accept files the signature does not list (only the signed ones are checked)")
	publicKey := fs.String("public-key", "", "key: the signer's public key (PEM)")
	fs.Var(&chain, "certificate-chain", "certificate: a trusted root certificate file, PEM (repeatable)")
	logFingerprints := fs.Bool("log-fingerprints", false, "certificate: print the signing key's SHA-256 fingerprint")
	var ekus, subject, extensions stringList
	fs.Var(&ekus, "extended-key-usage", "certificate: an extended key usage the leaf may carry, by name or OID, or none (repeatable; default codeSigning)")
	fs.Var(&subject, "subject", "certificate: a constraint on the leaf's names, as a policy's certificate.subject writes it: commonName=X, emailRegexp=RE, ... (repeatable)")
	identity := fs.String("identity", "", "sigstore: the signer's identity, the certificate's SAN (this or --identity-regexp is required)")
	identityRegexp := fs.String("identity-regexp", "", "sigstore: a regular expression the whole identity must match")
	identityProvider := fs.String("identity-provider", "", "sigstore: the OIDC issuer that vouched for the identity (this or --identity-provider-regexp is required)")
	identityProviderRegexp := fs.String("identity-provider-regexp", "", "sigstore: a regular expression the whole OIDC issuer must match")
	fs.Var(&extensions, "extension", "sigstore: a constraint on a Fulcio certificate extension, as a policy's sigstore.extensions writes it: sourceRepositoryURI=X, sourceRepositoryRefRegexp=RE, ... (repeatable)")
	staging := fs.Bool("use-staging", false, "sigstore: trust Sigstore's staging instance (needs --trust-config with its trusted root)")
	trustConfig := fs.String("trust-config", "", "sigstore: a trusted_root.json or ClientTrustConfig (default: the embedded production root)")
	fs.StringVar(trustConfig, "trust-root", "", "sigstore: alias of --trust-config")
	fs.own = map[string][]string{
		methodKey:         {"public-key"},
		methodCertificate: {"certificate-chain", "log-fingerprints", "extended-key-usage", "subject"},
		methodSigstore:    {"identity", "identity-regexp", "identity-provider", "identity-provider-regexp", "extension", "use-staging", "trust-config", "trust-root"},
	}
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	method, pos, implicit, err := splitMethod("verify", pos)
	if err != nil {
		return err
	}
	if err := checkFlagsFor(fs, "verify", method, implicit); err != nil {
		return err
	}
	if sf.signature == "" {
		return usagef("verify: --signature is required")
	}
	modelPath := pos[0]
	if _, err := os.Stat(modelPath); err != nil {
		return err
	}

	var v manifest.Verifier
	switch method {
	case methodKey:
		if *publicKey == "" {
			return usagef("verify key: --public-key is required")
		}
		pub, err := readPEMFile("--public-key", *publicKey)
		if err != nil {
			return err
		}
		if v, err = manifest.NewKeyVerifier(pub); err != nil {
			return fmt.Errorf("--public-key %s: %w", *publicKey, err)
		}
	case methodCertificate:
		if len(chain) == 0 {
			return usagef("verify certificate: at least one --certificate-chain (a trusted root) is required")
		}
		var roots [][]byte
		for _, c := range chain {
			b, err := readPEMFile("--certificate-chain", c)
			if err != nil {
				return err
			}
			roots = append(roots, b)
		}
		opts := manifest.CertificateVerifierOptions{Roots: roots, ExtendedKeyUsages: ekus}
		if err := parseConstraints("--subject", subject, &opts.Subject); err != nil {
			return err
		}
		if v, err = manifest.NewCertificateVerifier(opts); err != nil {
			return fmt.Errorf("verify certificate: %w", err)
		}
	case methodSigstore:
		if (*identity == "" && *identityRegexp == "") || (*identityProvider == "" && *identityProviderRegexp == "") {
			return usagef("verify sigstore: --identity (or --identity-regexp) and --identity-provider (or --identity-provider-regexp) are required")
		}
		if *staging && *trustConfig == "" {
			return usagef("verify sigstore: --use-staging needs --trust-config with the staging trusted root (this tool does not fetch trust roots over the network)")
		}
		opts := manifest.SigstoreVerifierOptions{
			Identity: *identity, IdentityRegexp: *identityRegexp,
			Issuer: *identityProvider, IssuerRegexp: *identityProviderRegexp,
			TrustRootPath: *trustConfig,
		}
		if err := parseConstraints("--extension", extensions, &opts.Extensions); err != nil {
			return err
		}
		if v, err = manifest.NewSigstoreVerifier(opts); err != nil {
			return fmt.Errorf("verify sigstore: %w", err)
		}
	}

	bundle, err := os.ReadFile(sf.signature)
	if err != nil {
		return fmt.Errorf("--signature: %w", err)
	}
	bar := newProgress(e, "hashing")
	res, err := manifest.VerifyDir(ctx, modelPath, bundle, v, manifest.CheckOptions{
		IgnorePaths:     mf.resolveIgnorePaths(modelPath),
		IncludeGitPaths: !mf.ignoreGitPaths,
		SignatureFile:   sf.withinModel(modelPath),
		IgnoreUnsigned:  *ignoreUnsigned,
		Progress:        bar.set,
	})
	bar.finish()
	if err != nil {
		err = fmt.Errorf("verification failed: %w", err)
		if isVerificationFailure(err) {
			return refusal{err}
		}
		return err
	}
	if *logFingerprints && method == methodCertificate {
		fmt.Fprintf(e.stderr, "signing key fingerprint (sha256): %s\n", res.Signer.KeyFingerprint)
	}
	if e.json {
		out := map[string]any{
			"verified": true, "method": method,
			"signer": signerJSON(res.Signer),
			"digest": res.Manifest.RootDigest().String(), "resources": len(res.Manifest.Resources),
		}
		if !res.SignedAt.IsZero() {
			out["signedAt"] = res.SignedAt.UTC().Format(time.RFC3339)
		}
		return writeJSON(e, out)
	}
	fmt.Fprintln(e.stdout, "Verification succeeded")
	if e.verbose {
		fmt.Fprintf(e.stderr, "signer: %s\n", describeSigner(res.Signer))
		for _, l := range extensionLines(res.Signer.Extensions) {
			fmt.Fprintf(e.stderr, "  %s\n", l)
		}
		fmt.Fprintf(e.stderr, "digest: %s\n", res.Manifest.RootDigest())
	}
	return nil
}

// parseConstraints reads NAME=VALUE flags into a constraints struct (manifest.CertificateSubject,
// manifest.FulcioExtensions) by the names a policy gives its fields, spelt exactly as there, so
// that the command line and the policy say the same thing the same way.
func parseConstraints(flagName string, pairs []string, into any) error {
	v := reflect.ValueOf(into).Elem()
	fields := map[string]reflect.Value{}
	var names []string
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		fields[name] = v.Field(i)
		names = append(names, name)
	}
	for _, p := range pairs {
		name, value, ok := strings.Cut(p, "=")
		if !ok || value == "" {
			return usagef("%s %q: want NAME=VALUE", flagName, p)
		}
		f, ok := fields[name]
		switch {
		case !ok:
			return usagef("%s: unknown name %q; use one of %s", flagName, name, strings.Join(names, ", "))
		case f.String() != "":
			return usagef("%s: %s is given twice", flagName, name)
		}
		f.SetString(value)
	}
	return nil
}

func signerJSON(s manifest.SignerInfo) map[string]any {
	out := map[string]any{"kind": string(s.Kind), "keyFingerprint": s.KeyFingerprint}
	if s.Identity != "" {
		out["identity"], out["issuer"] = s.Identity, s.OIDCIssuer
	}
	if len(s.Extensions) > 0 {
		out["extensions"] = s.Extensions
	}
	if s.Subject != "" {
		out["subject"], out["certificateIssuer"] = s.Subject, s.Issuer
	}
	return out
}

func describeSigner(s manifest.SignerInfo) string {
	switch {
	case s.Identity != "":
		return fmt.Sprintf("%s %s (issuer %s)", s.Kind, s.Identity, s.OIDCIssuer)
	case s.Subject != "":
		return fmt.Sprintf("%s %s (issued by %s)", s.Kind, s.Subject, s.Issuer)
	}
	return fmt.Sprintf("%s sha256:%s", s.Kind, s.KeyFingerprint)
}

// extensionLines are a Sigstore signer's Fulcio extensions, "extension NAME: VALUE", sorted by
// name (the names a policy's sigstore.extensions and --extension use), for --verbose.
func extensionLines(ext map[string]string) []string {
	out := make([]string, 0, len(ext))
	for _, name := range slices.Sorted(maps.Keys(ext)) {
		out = append(out, fmt.Sprintf("extension %s: %s", name, ext[name]))
	}
	return out
}
