// Package manifest builds, encodes, signs and verifies the digest manifest of a model, in the
// OpenSSF Model Signing (OMS) v1.0 format that Python's model_signing reads and writes.
//
// A Manifest lists every file (or byte-range shard) of a model with its digest. FromDir builds
// one from a directory exactly as model_signing does, Compare reports how two manifests differ,
// and the in-toto statement codec turns a manifest into the payload that a signature covers.
package manifest
