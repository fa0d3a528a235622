// Package registry is the OCI side of the load gate, beside package hub: references to models
// in container registries (oci://host/repository:tag or @sha256:...), resolved to a manifest
// digest once, manifests and layers fetched with every blob checked against its digest as it
// streams, and the model formats people push mapped to model files: KServe modelcar images,
// CNCF ModelPack artefacts and KitOps ModelKits.
//
// Package registry/registrytest is an in-process registry to test against.
package registry
