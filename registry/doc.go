// Package registry is the OCI side of the load gate, beside package hub: models in container
// registries, named by oci:// references, fetched with every byte checked against the digest
// that names it, mapped to model files, and their cosign signatures found and verified.
//
// # References and digests
//
// A Reference is "oci://host/repository:tag" or "oci://host/repository@sha256:<hex>" (the host
// is always explicit). Client.Resolve turns a tag into the manifest digest it names now, once;
// Client.Open does the same and reads the manifest (the linux/amd64 entry of an image index,
// unless WithPlatform says otherwise) and the config. Everything after uses the digest, so a tag
// moved meanwhile changes nothing, and the registry's manifests are checked against it.
//
// # Model formats
//
// Open recognises three ways of packing a model, and Pull maps each to files:
//   - KServe modelcar images: the layers are flattened in order (later layers replace earlier
//     files, whiteouts and opaque whiteouts remove them) and the regular files under models/
//     become the model, the prefix stripped; the rest of the image is ignored.
//   - CNCF ModelPack artefacts (application/vnd.cncf.model.*): a .raw layer is one file, named
//     by its org.cncf.model.filepath annotation, whose digest is the layer's; a tar layer holds
//     files at their paths.
//   - KitOps ModelKits (application/vnd.kitops.modelkit.*): each layer a tar of its files.
//
// Pull downloads the layers in parallel (WithJobs), reads each from the network once, hashes it
// and extracts it as it streams, and accepts it only when its size and SHA-256 match the
// manifest: a transfer cut off or stalled is resumed with a Range request within the retry
// budget, and a layer whose bytes differ is refused (*DigestError, ErrDigestMismatch). Every
// tar entry is checked as it is read: no absolute path, no "..", no link leaving the model (links
// inside it become copies, so the model holds regular files only), no device or FIFO, no name
// twice in a layer, and Limits on the number of files, one file's size and the total (decompression
// bombs stop there). Pull writes into a staging directory the caller gives and never publishes:
// the caller checks the Pulled files (sizes and SHA-256 digests, computed as they were written)
// and only then makes them visible.
//
// # Signatures
//
// Client.Signatures finds cosign's signatures of a digest in both of its storage forms, first
// the Sigstore bundle stored as an OCI 1.1 referrer (through the referrers API, or the
// sha256-<hex> tag schema where a registry has none; a referrer's own manifest decides what it
// is, never the index entry), then the legacy sha256-<hex>.sig tag with simple-signing payloads.
// Signature.Verify checks one with a sigstore-go verifier built from the publisher's trust
// material (NewKeyVerifier for cosign sign --key; verify.NewVerifier with a trusted root for
// keyless; NewCertificateVerifier for cosign sign --key --certificate, with the caller's check of
// the certificate the signature carries) and an identity policy (verify.WithKey, or verify.WithCertificateIdentity with the
// SAN, the issuer and Fulcio extensions), and then checks what was signed: a bundle must be
// cosign's in-toto statement (predicate https://sigstore.dev/cosign/sign/v1, not an SBOM or
// another attestation) whose only subject is the digest; a simple-signing payload must name the
// digest as its docker-manifest-digest, so a signature copied from another image is refused.
// The result carries sigstore-go's VerificationResult (the certificate summary with its Fulcio
// extensions, the verified timestamps) for the caller's own identity rules and its evidence.
//
// This package does not import package manifest (the gate composes the two): it hands the
// gate files, sizes, digests and a verified signature; OMS bundles about the files, where a
// publisher ships one, are manifest's to verify. Client.OMSBundles finds those stored as
// referrers (Sigstore bundle referrers whose statement has model_signing's predicate type,
// which Client.Signatures leaves out); one shipped as a file in the model is pulled like the
// others.
//
// # Network
//
// Credentials come from the Docker config ($DOCKER_CONFIG/config.json or
// ~/.docker/config.json: auths entries, credHelpers and credsStore helpers) or from the file
// WithDockerConfig names (what KServe's KSERVE_OCI_DOCKER_CONFIG points at), or from
// WithKeychain. They are never sent to another host across a redirect (registries redirect blob
// downloads to storage hosts). Plain HTTP is used only for loopback registries; a redirect to
// plain HTTP elsewhere is refused (ErrPlainHTTP). Requests are retried on 408, 429, 5xx and
// broken connections with exponential backoff within a retry budget (WithRetry); every read
// waits at most the idle timeout for a byte (WithTimeouts). Progress goes to WithProgress; the
// package prints nothing. Errors match sentinels with errors.Is (ErrNotFound, ErrUnauthorized,
// ErrDigestMismatch, ErrUnsafeArchive, ErrLimitExceeded, ErrUnsigned, ErrSignature, ...) and
// carry details in *RegistryError, *DigestError, *EntryError and *SignatureError.
//
// Package registry/registrytest is an in-process registry to test against, with fault knobs,
// with and without the referrers API.
package registry
