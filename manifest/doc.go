// Package manifest builds, encodes, signs and verifies the digest manifest of a model, in the
// OpenSSF Model Signing (OMS) v1.0 format that Python's model_signing reads and writes.
//
// A Manifest lists every file (or byte-range shard) of a model with its digest. FromDir builds
// one from a directory exactly as model_signing does, in parallel; EncodeStatement and
// DecodeStatement turn it into and out of the in-toto statement that a signature covers; Compare
// and CheckDir report how a model differs from a signed manifest.
//
// Sign and SignDir write the signature file (model.sig): a Sigstore bundle v0.3 whose DSSE
// envelope carries the statement, signed with an ECDSA key (NewKeySigner), a key and its
// certificate chain (NewCertificateSigner), or Sigstore keyless (NewSigstoreSigner). Verify and
// VerifyDir check one against a public key, certificate roots, or a Sigstore identity and trusted
// root (NewKeyVerifier, NewCertificateVerifier, NewSigstoreVerifier), offline, and return a
// Result: the verified manifest, who signed it and, for Sigstore, when. Bundles written by either
// tool verify with the other, including every released model_signing version's.
//
// Who may sign is said precisely. A certificate signer's leaf must carry the codeSigning
// extended key usage unless told otherwise, and may be held to a subject and subject alternative
// names (CertificateSubject); a Sigstore signer is held to its identity, OIDC issuer and any of
// the extensions Fulcio records about a CI workflow (FulcioExtensions): repository, ref,
// commit, trigger. Every regular expression is matched against the whole value (CompileAnchored),
// and every refusal names the value, what was wanted and what was found.
package manifest
