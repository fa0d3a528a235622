package modelverify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/registry"
	"github.com/opencontainers/go-digest"
)

// ociOMS is what the OMS (model_signing) bundles of an OCI model proved: each bundle that
// verified, where it was found, and the manifest it signs.
type ociOMS struct {
	sources []string
	results []*manifest.Result
	// found counts the bundles found, verified or not.
	found int
}

// verifyOMSReferrers finds the model_signing bundles stored as referrers of art's manifest
// (registry.OMSBundles) and checks each with the publisher's identities and the Hub's code
// (verifySignature, which also applies requireSubjectName and pinnedManifests), before anything
// is pulled; verifyOCIOMS checks the files against them. A bundle that is present is never
// skipped: one that does not verify refuses the model, even when a cosign signature verified.
func (v *Verifier) verifyOMSReferrers(ctx context.Context, c *registry.Client, d *decision, pub *Publisher, art *registry.Artifact) (*ociOMS, error) {
	out := &ociOMS{}
	if pub == nil {
		return out, nil // no identities to check a bundle against; the refusal is on record
	}
	refs, err := c.OMSBundles(ctx, art.Reference, art.Digest)
	if err != nil {
		return nil, d.fatal(registryProblem(err, "finding OMS bundle referrers"), err)
	}
	for _, r := range refs {
		if err := out.verify(ctx, v, d, pub, r.Source, r.Bundle); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// verify checks one bundle found at source, and keeps its result when it verifies.
func (o *ociOMS) verify(ctx context.Context, v *Verifier, d *decision, pub *Publisher, source string, bundle []byte) error {
	o.found++
	res, err := v.verifySignature(ctx, d, pub, source, bundle)
	if err != nil || res == nil {
		return err // res == nil: refused in audit mode, and on record
	}
	o.sources = append(o.sources, source)
	o.results = append(o.results, res)
	return nil
}

// verifyOCIOMS completes the OMS check once the files are pulled: the publisher's signature
// file among them (a modelcar's /models/model.sig, a ModelPack or KitOps layer holding it) is
// verified as the referrers were, and then every pulled file is checked against every bundle
// that verified: a file a bundle does not cover, a file it signs that the artefact lacks, or
// different bytes are refused as on the Hub. Files the signature leaves out on purpose (the
// signature file, git paths, the publisher's and the manifest's ignorePaths) are then dropped
// from the model, so that only signed bytes are published.
func (v *Verifier) verifyOCIOMS(ctx context.Context, d *decision, pub *Publisher, oms *ociOMS, pulled *registry.Pulled) error {
	if pub == nil {
		return nil
	}
	sigPath := pub.SignaturePath()
	if slices.ContainsFunc(pulled.Files, func(f registry.File) bool { return f.Path == sigPath }) {
		data, err := readBounded(filepath.Join(pulled.Dir, filepath.FromSlash(sigPath)), maxSignatureSize)
		if err != nil {
			return d.fatal(Problem{Reason: ErrSignature, File: sigPath, Detail: "reading the signature file: " + firstLine(err)}, err)
		}
		// The file first: it names the model's own signature in the evidence.
		refs := *oms
		*oms = ociOMS{}
		if err := oms.verify(ctx, v, d, pub, sigPath, data); err != nil {
			return err
		}
		oms.found += refs.found
		oms.sources = append(oms.sources, refs.sources...)
		oms.results = append(oms.results, refs.results...)
	}
	for _, res := range oms.results {
		if err := checkOCIFiles(ctx, d, pub, sigPath, res.Manifest, pulled); err != nil {
			return err
		}
	}
	if len(oms.results) > 0 {
		return dropUnsigned(d, oms.results, pulled)
	}
	return nil
}

// omsIgnores are the paths a model_signing manifest leaves out on purpose, as on the Hub: the
// signature file, git's paths, the publisher's ignorePaths and the manifest's own.
func omsIgnores(pub *Publisher, sigPath string, signed *manifest.Manifest) []string {
	ignores := append([]string{sigPath}, manifest.GitPaths...)
	ignores = append(ignores, pub.IgnorePaths...)
	return append(ignores, signed.Serialization.IgnorePaths...)
}

// checkOCIFiles compares the pulled files with a signed manifest both ways, and each signed
// file's bytes with its signed digest (checkSignedDigest, the Hub's check).
func checkOCIFiles(ctx context.Context, d *decision, pub *Publisher, sigPath string, signed *manifest.Manifest, pulled *registry.Pulled) error {
	signedFiles := signed.Files()
	if len(signedFiles) == 1 && signedFiles[0] == "." {
		return d.fatal(Problem{Reason: ErrManifest, Detail: "the manifest describes a single-file model, not the model directory the artefact holds"}, nil)
	}
	byPath := make(map[string]registry.File, len(pulled.Files))
	for _, f := range pulled.Files {
		byPath[f.Path] = f
	}
	byFile := signed.ByFile()
	for _, name := range signedFiles {
		pf, ok := byPath[name]
		if !ok {
			if err := d.fail(Problem{Reason: ErrMissingFile, File: name, Detail: "signed, but not in the artefact"}, nil); err != nil {
				return err
			}
			continue
		}
		sf := hub.StagedFile{Path: name, LocalPath: filepath.Join(pulled.Dir, filepath.FromSlash(name)), Size: pf.Size,
			SHA256: digest.NewDigestFromEncoded(digest.SHA256, pf.Digest.Hex)}
		_, p, err := checkSignedDigest(ctx, signed.Serialization, byFile[name], sf)
		if err != nil {
			return d.fatal(Problem{Reason: ErrHub, File: name, Detail: "hashing as the manifest says: " + firstLine(err)}, err)
		}
		if p != nil {
			if err := d.fail(*p, nil); err != nil {
				return err
			}
		}
	}
	ignores := omsIgnores(pub, sigPath, signed)
	for _, f := range pulled.Files {
		if _, ok := byFile[f.Path]; !ok && !ignoredPath(f.Path, ignores) {
			if err := d.fail(Problem{Reason: ErrUnexpectedFile, File: f.Path, Detail: "in the artefact, but not covered by the signature"}, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// dropUnsigned removes from the staged model the files that no verified manifest signs (those
// checkOCIFiles let through: the ignored ones), so that the published model holds signed bytes
// only, as a Hub model never downloads them.
func dropUnsigned(d *decision, results []*manifest.Result, pulled *registry.Pulled) error {
	// By file, once: a lookup through ResourcesFor per file would make this quadratic.
	byFile := make([]map[string][]manifest.Resource, len(results))
	for i, r := range results {
		byFile[i] = r.Manifest.ByFile()
	}
	keep := pulled.Files[:0:0]
	for _, f := range pulled.Files {
		signed := slices.ContainsFunc(byFile, func(m map[string][]manifest.Resource) bool { return len(m[f.Path]) > 0 })
		if signed {
			keep = append(keep, f)
			continue
		}
		if err := os.Remove(filepath.Join(pulled.Dir, filepath.FromSlash(f.Path))); err != nil {
			return d.fatal(Problem{Reason: ErrHub, File: f.Path, Detail: "dropping a file the signature does not cover: " + firstLine(err)}, err)
		}
	}
	pulled.Files = keep
	return nil
}

// recordOCISignatures names every signature that verified in the evidence and the audit
// record, and, where no cosign signature did, makes the OMS bundle's signer the model's.
// An OMS manifest becomes the model's manifest, as on the Hub.
func (v *Verifier) recordOCISignatures(d *decision, ev *Evidence, cosign *registry.VerifiedSignature, s *ociSigner, oms *ociOMS) {
	if cosign != nil && s != nil {
		ev.Signatures = append(ev.Signatures, fmt.Sprintf("cosign %s by %s", cosign.Signature.Source, ociSignerOf(cosign, s).Identity))
	}
	if oms != nil {
		for i, res := range oms.results {
			who := signerOf(res.Signer)
			ev.Signatures = append(ev.Signatures, fmt.Sprintf("oms %s by %s", oms.sources[i], who.Identity))
			if i == 0 {
				ev.ManifestDigest, ev.SubjectName = res.Manifest.RootDigest().String(), res.Manifest.ModelName
				if ev.Verification != VerifiedSignature {
					ev.Verification, ev.Signer, ev.SignedAt = VerifiedSignature, who, res.SignedAt
				}
			}
		}
	}
	d.rec.Verification, d.rec.Signatures = ev.Verification, ev.Signatures
	d.rec.Signer, d.rec.SignerIssuer, d.rec.SignerExtensions = ev.Signer.Identity, ev.Signer.Issuer, ev.Signer.Extensions
	d.rec.ManifestDigest, d.rec.SubjectName = ev.ManifestDigest, ev.SubjectName
}
