// Package modelverify is the load gate: it decides whether a model's weights may be loaded.
//
// A service loads a Policy (LoadPolicy), makes a Verifier from it (NewVerifier), and asks for a
// model by reference ("hf://org/name@rev"). Verify answers with a *Model, whose Dir is the only
// path the service should load from, or with a *Refusal that names every reason
// (errors.Is(err, ErrDigestMismatch), ...), the file, and the expected and actual values. Every
// decision, allowed or refused, is written to the audit log the policy names.
//
// Match refusals with this package's reasons. There is one per idea: where the hub and manifest
// packages have a sentinel for the same idea, the reason matches it too (ErrDigestMismatch
// matches hub.ErrDigestMismatch and manifest.ErrMismatch, ErrRedirectNotAllowed matches
// hub.ErrRedirectNotAllowed), so errors.Is gives one answer whichever one a caller holds.
//
// The checks, in order: the endpoint is approved; a publisher claims the namespace; the revision
// is pinned if the publisher requires it; the Hub resolves it to a commit; the signature file at
// that commit (an OpenSSF Model Signing bundle, as Python model_signing writes) verifies against
// one of the publisher's identities; the signed manifest and the Hub's file tree agree both ways;
// every file is downloaded into staging, hashed as it streams, and checked against the Hub's
// digest, the signed digest and the content rules (formats, a static pickle scan); and only then
// is the model published into the Hugging Face cache, in huggingface_hub's layout, so that
// transformers can load the snapshot too. VerifyDir runs the same checks on a directory already
// on disk.
//
// Models in OCI registries ("oci://ghcr.io/acme/llama:v1", "oci://host/repo@sha256:...") take
// the same path through package registry: the registry and repository are approved (Policy's
// Registries), a publisher claims the repository (Publisher.OCI) and, if it requires, the
// reference is pinned by digest; the tag is resolved to a digest once; cosign's signature of that
// digest verifies against one of the publisher's identities (a signature copied from another
// image is refused); every layer is checked against its digest and extracted with the archive
// rules and content limits; an OMS bundle the model carries (model.sig in the model, or a
// model_signing bundle referrer) is verified as on the Hub and every file checked against it,
// either kind of signature sufficing and a bad one of either kind refusing; every file is scanned with the content rules; and only then is the
// model renamed, whole, into <cache>/oci/<host>/<repository>/<alg>-<hex>/. Evidence and the
// audit record give the registry as Endpoint ("oci://ghcr.io"), the repository as Repo and the
// digest as Commit.
//
// In audit mode (Policy.Mode "audit"), what enforce mode would refuse is recorded as
// "audit-allowed" and the model is returned with Evidence.Problems listing it. Failures to reach
// the Hub, or downloads that do not match the Hub's own digests, refuse in both modes.
//
// A signature says who signed a model, not for which repository or version: a publisher can
// require the signed subject name to name the repository, and pin repositories to signed
// manifests by root digest, which refuses another model (substitution) and an older signed
// commit (rollback).
//
// A later Verify of a commit (or an OCI digest) already verified reuses the earlier decision's
// verification record, authenticated with an HMAC key kept outside the cache, when nothing has
// changed; an OCI model's signature is still verified online, but its layers are not pulled
// again. The policy's records.recheck: full hashes everything on every load instead (see
// Verifier.Verify and POLICY.md for exactly what is trusted).
//
// Model.Open opens a verified file only if its inode, size and times are those it was verified
// with; Model.Recheck hashes everything again; Model.Export copies the verified files elsewhere,
// checking each as it is copied, and Model.Link hard-links them into a directory on the same
// file system, so that publishing a model out of a staging cache needs no second copy.
package modelverify
