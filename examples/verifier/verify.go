package main

import (
	"context"
	"errors"
	"fmt"
	"os"
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
		"  sigstore:    --identity ID --identity-provider URL [--trust-config F]")
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
	identity := fs.String("identity", "", "sigstore: the signer's identity, the certificate's SAN (required)")
	identityProvider := fs.String("identity-provider", "", "sigstore: the OIDC issuer that vouched for the identity (required)")
	staging := fs.Bool("use-staging", false, "sigstore: trust Sigstore's staging instance (needs --trust-config with its trusted root)")
	trustConfig := fs.String("trust-config", "", "sigstore: a trusted_root.json or ClientTrustConfig (default: the embedded production root)")
	fs.StringVar(trustConfig, "trust-root", "", "sigstore: alias of --trust-config")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	method, pos, err := splitMethod("verify", pos)
	if err != nil {
		return err
	}
	if err := checkFlagsFor(fs, "verify", method, map[string][]string{
		methodKey:         {"public-key"},
		methodCertificate: {"certificate-chain", "log-fingerprints"},
		methodSigstore:    {"identity", "identity-provider", "use-staging", "trust-config", "trust-root"},
	}); err != nil {
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
		if v, err = manifest.NewCertificateVerifier(manifest.CertificateVerifierOptions{Roots: roots}); err != nil {
			return fmt.Errorf("--certificate-chain: %w", err)
		}
	case methodSigstore:
		if *identity == "" || *identityProvider == "" {
			return usagef("verify sigstore: --identity and --identity-provider are required")
		}
		if *staging && *trustConfig == "" {
			return usagef("verify sigstore: --use-staging needs --trust-config with the staging trusted root (this tool does not fetch trust roots over the network)")
		}
		if v, err = manifest.NewSigstoreVerifier(manifest.SigstoreVerifierOptions{
			Identity: *identity, Issuer: *identityProvider, TrustRootPath: *trustConfig,
		}); err != nil {
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
		fmt.Fprintf(e.stderr, "signer: %s\ndigest: %s\n", describeSigner(res.Signer), res.Manifest.RootDigest())
	}
	return nil
}

func signerJSON(s manifest.SignerInfo) map[string]any {
	out := map[string]any{"kind": string(s.Kind), "keyFingerprint": s.KeyFingerprint}
	if s.Identity != "" {
		out["identity"], out["issuer"] = s.Identity, s.OIDCIssuer
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
