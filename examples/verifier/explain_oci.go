package main

import (
	"fmt"
	"strings"

	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
)

// explainOCI adds the steps the policy alone decides for an oci:// reference: the registry and
// repository approved, the publisher claiming it, the digest pinned if required; the rest is
// decided online.
func explainOCI(p *modelverify.Policy, ref string, add func(step, result, detail string, reason *modelverify.Reason)) error {
	r, err := registry.ParseReference(ref)
	if err != nil {
		return err
	}
	kind := "a tag, resolved to a digest once online"
	if r.Pinned() {
		kind = "a digest"
	}
	rev := r.Digest
	if rev == "" {
		rev = r.Tag
	}
	add("reference", "info", fmt.Sprintf("registry %s, repository %s, %s (%s)", r.Registry, r.Repository, rev, kind), nil)
	reg, ok := p.Registry(r.Registry)
	switch {
	case !ok:
		add("registry", "refuse", fmt.Sprintf("%s is not one of the policy's registries", r.Registry), modelverify.ErrEndpointNotAllowed)
	case !reg.AllowsRepository(r.Repository):
		add("registry", "refuse", fmt.Sprintf("%s is approved, but only for %s", r.Registry, strings.Join(reg.Repositories, ", ")), modelverify.ErrEndpointNotAllowed)
	default:
		add("registry", "pass", fmt.Sprintf("%s is an approved registry%s", r.Registry, nameSuffix(reg.Name)), nil)
	}
	pub, err := p.OCIPublisher(r.Name())
	if err != nil {
		add("publisher", "refuse", err.Error(), modelverify.ErrPublisherNotAllowed)
		add("content", "online", describeContent(&p.Content), nil)
		return nil
	}
	add("publisher", "pass", fmt.Sprintf("%s claims %s (oci: %s)", pub.Name, r.Name(), strings.Join(pub.OCI, ", ")), nil)
	switch {
	case !pub.RequireDigest:
		add("pinned digest", "pass", "not required", nil)
	case r.Pinned():
		add("pinned digest", "pass", "required, and the reference names "+r.Digest, nil)
	default:
		add("pinned digest", "refuse", fmt.Sprintf("required, and %q names a tag", r.String()), modelverify.ErrUnpinnedRevision)
	}
	if pub.SignatureRequired() {
		var ids []string
		for _, id := range pub.Identities {
			ids = append(ids, id.String())
		}
		add("signature", "online", "required: a cosign signature of the digest (bundle referrer or .sig tag), by any of: "+strings.Join(ids, "; "), nil)
	} else {
		add("signature", "pass", "not required: the layers are checked against their digests (integrity, not authenticity)", nil)
	}
	add("manifest", "online", "every layer must match its digest, and its entries the archive rules (no '..', absolute path, link out, device, duplicate)", nil)
	add("content", "online", describeContent(&p.Content), nil)
	return nil
}
