// Package registrytest is an OCI registry for tests, in the spirit of net/http/httptest and of
// hub/hubtest: go-containerregistry's in-process registry (pkg/registry) behind real HTTP, with
// knobs to inject the faults a real registry and network produce (5xx answers, dropped
// connections, stalls, wrong bytes, redirects to a storage host), credentials to demand, and
// helpers that build and push the model artefacts people publish: KServe modelcar images, CNCF
// ModelPack artefacts and KitOps ModelKits, referrers (PushReferrer keeps the tag schema's index
// up to date when the API is off), and whole OCI image layouts (PushLayout, byte for byte).
// KeylessBundle makes a cosign v3 keyless signature with sigstore-go's VirtualSigstore, for
// tests of keyless identities without Fulcio or Rekor.
//
// The registry runs without the OCI 1.1 referrers API by default, so clients must use the
// referrers tag schema (an index tagged sha256-<hex>), as against many real registries;
// WithReferrersAPI turns the API on. go-containerregistry's implementation of that API reports a
// referrer's artifactType as its config media type and ignores the artifactType filter: clients
// must read a referrer's own manifest before trusting what it is, and tests should run against
// both modes.
package registrytest
