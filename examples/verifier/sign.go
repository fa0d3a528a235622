package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/echelongraph/go-modelverify/manifest"
)

// The signing methods, as model_signing names them.
const (
	methodKey         = "key"
	methodCertificate = "certificate"
	methodSigstore    = "sigstore"
)

// methods are the signing methods, in the order help lists them.
var methods = []string{methodKey, methodCertificate, methodSigstore}

// splitMethod takes the method off the front of the positional arguments. As in model_signing,
// a missing method means sigstore, but not silently: implicit is true, and the caller says so
// (or, when the flags belong to another method, says which method to write).
func splitMethod(cmd string, pos []string) (method string, rest []string, implicit bool, err error) {
	if len(pos) > 0 {
		switch pos[0] {
		case methodKey, methodCertificate, methodSigstore:
			if len(pos) != 2 {
				return "", nil, false, usagef("%s %s: want one MODEL_PATH after the method, got %d arguments", cmd, pos[0], len(pos)-1)
			}
			return pos[0], pos[1:], false, nil
		case "pkcs11-key", "pkcs11-certificate":
			return "", nil, false, usagef("%s: method %q is not supported (PKCS#11 needs cgo)", cmd, pos[0])
		}
		if len(pos) == 2 {
			hint := ""
			if near := nearest(pos[0], methods); near != "" {
				hint = fmt.Sprintf(" (did you mean %s?)", near)
			}
			return "", nil, false, usagef("%s: unknown method %q%s; the methods are %s", cmd, pos[0], hint, strings.Join(methods, ", "))
		}
	}
	if len(pos) != 1 {
		return "", nil, false, usagef("%s: want METHOD MODEL_PATH, where METHOD is %s; got %d arguments", cmd, strings.Join(methods, ", "), len(pos))
	}
	return methodSigstore, pos, true, nil
}

// checkFlagsFor refuses flags that belong to another method, so a mistyped method is noticed
// rather than silently ignoring the key the user gave. With no method given (implicit), the
// refusal says which method the flags belong to, rather than that sigstore does not take them.
func checkFlagsFor(fs *flagSet, cmd, method string, implicit bool) error {
	own := fs.own
	var bad []string
	var theirs []string
	fs.Visit(func(f *flag.Flag) {
		for _, m := range methods {
			if m != method && slices.Contains(own[m], f.Name) && !slices.Contains(own[method], f.Name) {
				if !slices.Contains(bad, "--"+f.Name) {
					bad = append(bad, "--"+f.Name)
				}
				if !slices.Contains(theirs, m) {
					theirs = append(theirs, m)
				}
			}
		}
	})
	switch {
	case len(bad) > 0 && implicit:
		verb := "belongs"
		if len(bad) > 1 {
			verb = "belong"
		}
		return usagef("%s: no method given, and %s %s to %s: write 'verifier %s %s MODEL_PATH ...' (the methods are %s)",
			cmd, strings.Join(bad, ", "), verb, strings.Join(theirs, " or "), cmd, theirs[0], strings.Join(methods, ", "))
	case len(bad) > 0:
		return usagef("%s %s: %s not allowed with this method", cmd, method, strings.Join(bad, ", "))
	case implicit:
		fmt.Fprintf(fs.env.stderr, "verifier: no method given; using sigstore, as model_signing does (the methods are %s)\n", strings.Join(methods, ", "))
	}
	return nil
}

// signatureFlags are the signature path and its place in the model.
type signatureFlags struct {
	signature string
}

func (s *signatureFlags) register(fs *flagSet, required bool) {
	help := "where the signature is written (default model.sig in the working directory, as model_signing)"
	if required {
		help = "the signature to verify (required)"
	}
	def := manifest.DefaultSignatureFile
	if required {
		def = ""
	}
	fs.StringVar(&s.signature, "signature", def, help)
}

// withinModel sets opts' signature file to the signature's path relative to the model, when it
// lies inside the model, so that it is left out of the manifest.
func (s *signatureFlags) withinModel(modelPath string) string {
	if rel, ok := relativeToModel(modelPath, s.signature); ok {
		return rel
	}
	return ""
}

func runSign(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "sign", "verifier sign [key|certificate|sigstore] MODEL_PATH [--signature model.sig] [flags]\n"+
		"  key:         --private-key PEM [--password PW]\n"+
		"  certificate: --private-key PEM --signing-certificate PEM [--certificate-chain PEM]...\n"+
		"  sigstore:    --identity-token T [--use-staging] [--trust-config F] [--fulcio-url U --rekor-url U]")
	var (
		mf    modelFlags
		hf    hashFlags
		sf    signatureFlags
		chain stringList
	)
	mf.register(fs)
	hf.register(fs)
	sf.register(fs, false)
	privateKey := fs.String("private-key", "", "key, certificate: the signing key (PEM)")
	password := fs.String("password", "", "key: the private key's password, if it is encrypted")
	signingCert := fs.String("signing-certificate", "", "certificate: the signing key's certificate (PEM)")
	fs.Var(&chain, "certificate-chain", "certificate: a certificate chaining the signing certificate to a root, issuer first (repeatable)")
	idToken := fs.String("identity-token", "", "sigstore: the OIDC identity token Fulcio certifies (default $SIGSTORE_ID_TOKEN)")
	staging := fs.Bool("use-staging", false, "sigstore: sign with Sigstore's staging instance")
	trustConfig := fs.String("trust-config", "", "sigstore: a ClientTrustConfig naming the Fulcio and Rekor to use, for a private Sigstore")
	fs.StringVar(trustConfig, "trust-root", "", "sigstore: alias of --trust-config")
	fulcioURL := fs.String("fulcio-url", "", "sigstore: the Fulcio to request a certificate from")
	rekorURL := fs.String("rekor-url", "", "sigstore: the Rekor log to record the signature in")
	ambient := fs.Bool("use-ambient-credentials", false, "sigstore: not supported; pass --identity-token")
	fs.own = map[string][]string{
		methodKey:         {"private-key", "password"},
		methodCertificate: {"private-key", "signing-certificate", "certificate-chain"},
		methodSigstore:    {"identity-token", "use-staging", "trust-config", "trust-root", "fulcio-url", "rekor-url", "use-ambient-credentials"},
	}
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	method, pos, implicit, err := splitMethod("sign", pos)
	if err != nil {
		return err
	}
	if err := checkFlagsFor(fs, "sign", method, implicit); err != nil {
		return err
	}
	modelPath := pos[0]
	if _, err := os.Stat(modelPath); err != nil {
		return err
	}
	opts, err := mf.options(modelPath, hf)
	if err != nil {
		return err
	}
	opts.SignatureFile = sf.withinModel(modelPath)

	var signer manifest.Signer
	switch method {
	case methodKey:
		if *privateKey == "" {
			return usagef("sign key: --private-key is required")
		}
		priv, err := readPEMFile("--private-key", *privateKey)
		if err != nil {
			return err
		}
		if signer, err = manifest.NewKeySigner(priv, []byte(*password)); err != nil {
			return fmt.Errorf("--private-key %s: %w", *privateKey, err)
		}
	case methodCertificate:
		if *privateKey == "" || *signingCert == "" {
			return usagef("sign certificate: --private-key and --signing-certificate are required")
		}
		priv, err := readPEMFile("--private-key", *privateKey)
		if err != nil {
			return err
		}
		cert, err := readPEMFile("--signing-certificate", *signingCert)
		if err != nil {
			return err
		}
		var chainPEM [][]byte
		for _, c := range chain {
			b, err := readPEMFile("--certificate-chain", c)
			if err != nil {
				return err
			}
			chainPEM = append(chainPEM, b)
		}
		if signer, err = manifest.NewCertificateSigner(priv, cert, chainPEM...); err != nil {
			return fmt.Errorf("sign certificate: %w", err)
		}
	case methodSigstore:
		if *ambient {
			return usagef("sign sigstore: --use-ambient-credentials is not supported; pass the CI provider's token with --identity-token")
		}
		token := *idToken
		if token == "" {
			token = e.getenv("SIGSTORE_ID_TOKEN")
		}
		if token == "" {
			return usagef("sign sigstore: an OIDC token is required: --identity-token T or $SIGSTORE_ID_TOKEN (the interactive browser flow is not supported)")
		}
		so := manifest.SigstoreSignerOptions{IDToken: token, FulcioURL: *fulcioURL, RekorURL: *rekorURL, Staging: *staging}
		if *trustConfig != "" {
			tc, err := manifest.LoadTrustConfig(*trustConfig)
			if err != nil {
				return fmt.Errorf("--trust-config %s: %w", *trustConfig, err)
			}
			so.SigningConfig, so.TrustedRoot = tc.SigningConfig, tc.TrustedRoot
		}
		if signer, err = manifest.NewSigstoreSigner(so); err != nil {
			return fmt.Errorf("sign sigstore: %w", err)
		}
	}

	bar := newProgress(e, "hashing")
	opts.Progress = bar.set
	bundle, m, err := manifest.SignDir(ctx, modelPath, opts, signer)
	bar.finish()
	if err != nil {
		return fmt.Errorf("signing failed: %w", err)
	}
	if err := os.WriteFile(sf.signature, bundle, 0o644); err != nil {
		return fmt.Errorf("writing the signature: %w", err)
	}
	if e.json {
		return writeJSON(e, map[string]any{
			"signed": true, "method": method, "signature": sf.signature,
			"digest": m.RootDigest().String(), "resources": len(m.Resources),
		})
	}
	fmt.Fprintln(e.stdout, "Signing succeeded")
	return nil
}

// readPEMFile reads a key or certificate file named by a flag, refusing anything that is not
// a small regular file, so that a mistaken path (a directory, a device) gets a clear error.
func readPEMFile(flagName, path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s: not a regular file", flagName, path)
	}
	if st.Size() > 1<<20 {
		return nil, fmt.Errorf("%s %s: %d bytes is too large for a key or certificate", flagName, path, st.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	return b, nil
}
