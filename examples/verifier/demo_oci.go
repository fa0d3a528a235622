package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// The demo registry's repositories: the model as a modelcar, the same pushed unsigned, and the
// same with a hostile pickle added and signed (a publisher's pipeline compromised upstream).
const (
	ociGood     = "acme/tiny-llm"
	ociUnsigned = "acme/tiny-llm-unsigned"
	ociPickle   = "acme/tiny-llm-pickle"
	// ociUnapproved is a registry the demo policy does not list; nothing is sent to it.
	ociUnapproved = "registry.example.com"
)

// demoHostilePickle is a pickle whose loading runs os.system("id").
var demoHostilePickle = []byte("\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")

// demoOCI is the demo's registry, on loopback, and the signed modelcar it serves.
type demoOCI struct {
	host string
	good string // the signed modelcar's manifest digest
	stop func()
}

// startDemoRegistry serves registrytest's in-process registry (with the referrers API, as
// cosign 3 uses it) on loopback, and pushes the demo's images: the model's files as a KServe
// modelcar signed the way `cosign sign --key` does (a Sigstore bundle referrer) with the
// publisher's key, the same unsigned, and a signed one with a hostile pickle.
func startDemoRegistry(ctx context.Context, files map[string][]byte, priv []byte) (*demoOCI, error) {
	srv, err := registrytest.New(registrytest.WithReferrersAPI())
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	o := &demoOCI{host: ln.Addr().String()}
	o.stop = func() {
		srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}
	signer, err := manifest.NewKeySigner(priv, nil)
	if err != nil {
		o.stop()
		return nil, err
	}
	var entries []registrytest.Entry
	for _, n := range []string{"config.json", "tokenizer.json", "model.safetensors"} {
		entries = append(entries, registrytest.File("models/"+n, files[n]))
	}
	steps := []struct {
		repo    string
		entries []registrytest.Entry
		sign    bool
	}{
		{ociGood, entries, true},
		{ociUnsigned, entries, false},
		{ociPickle, append(entries, registrytest.File("models/pytorch_model.bin", demoHostilePickle)), true},
	}
	for _, s := range steps {
		d, err := o.push(ctx, s.repo, "v1", registrytest.Modelcar(registrytest.Tar(s.entries...)))
		if err == nil && s.sign {
			err = o.sign(ctx, s.repo, d, signer)
		}
		if err != nil {
			o.stop()
			return nil, fmt.Errorf("demo registry: %s: %w", s.repo, err)
		}
		if s.repo == ociGood {
			o.good = d.Digest
		}
	}
	return o, nil
}

func (o *demoOCI) ref(repo, tag string) string {
	return registry.Scheme + o.host + "/" + repo + ":" + tag
}

// rawManifest is a manifest pushed byte for byte, so that its digest is the one signed.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// push uploads m's blobs and m, tagged tag unless it is empty.
func (o *demoOCI) push(ctx context.Context, repo, tag string, m registrytest.Manifest) (registrytest.Descriptor, error) {
	r, err := name.NewRepository(o.host + "/" + repo)
	if err != nil {
		return registrytest.Descriptor{}, err
	}
	for _, b := range append([]registrytest.Blob{m.Config}, m.Layers...) {
		if err := remote.WriteLayer(r, static.NewLayer(b.Data, types.MediaType(b.MediaType)), remote.WithContext(ctx)); err != nil {
			return registrytest.Descriptor{}, err
		}
	}
	raw := m.JSON()
	d := registrytest.Descriptor{MediaType: registrytest.MediaTypeOCIManifest, Digest: registrytest.Digest(raw), Size: int64(len(raw))}
	refs := []name.Reference{r.Digest(d.Digest)}
	if tag != "" {
		refs = append(refs, r.Tag(tag))
	}
	for _, ref := range refs {
		if err := remote.Put(ref, rawManifest{raw, types.OCIManifestSchema1}, remote.WithContext(ctx)); err != nil {
			return registrytest.Descriptor{}, err
		}
	}
	return d, nil
}

// sign stores a cosign signature of the digest `signs` as a referrer of subject: cosign 3's
// Sigstore bundle, a DSSE envelope over an in-toto statement with cosign's predicate. The
// envelope is what manifest's key signer writes for model_signing too; only the statement
// differs.
func (o *demoOCI) sign(ctx context.Context, repo string, subject registrytest.Descriptor, s manifest.Signer) error {
	return o.signAs(ctx, repo, subject, subject.Digest, s)
}

func (o *demoOCI) signAs(ctx context.Context, repo string, subject registrytest.Descriptor, signs string, s manifest.Signer) error {
	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "", "digest": map[string]string{"sha256": strings.TrimPrefix(signs, "sha256:")}}},
		"predicateType": registry.CosignPredicateType,
		"predicate":     map[string]any{},
	})
	if err != nil {
		return err
	}
	bundle, err := s.SignPayload(ctx, stmt)
	if err != nil {
		return err
	}
	_, err = o.push(ctx, repo, "", demoSignatureManifest(subject, bundle))
	return err
}

// demoSignatureManifest is the referrer cosign 3 pushes for a bundle.
func demoSignatureManifest(subject registrytest.Descriptor, bundle []byte) registrytest.Manifest {
	return registrytest.Manifest{
		ArtifactType: registry.MediaTypeSigstoreBundle,
		Config:       registrytest.Blob{MediaType: registrytest.MediaTypeEmptyJSON, Data: []byte("{}")},
		Layers:       []registrytest.Blob{{MediaType: registry.MediaTypeSigstoreBundle, Data: bundle}},
		Subject:      &registrytest.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: map[string]string{"dev.sigstore.bundle.content": "dsse-envelope",
			"dev.sigstore.bundle.predicateType": registry.CosignPredicateType},
	}
}

// moveTag is the attack on a tag: v1 of the good repository moves to an image with other
// weights, and the signature of the old digest is copied beside it, as a referrer of the new.
func (o *demoOCI) moveTag(ctx context.Context, files map[string][]byte, priv []byte) error {
	w := append([]byte(nil), files["model.safetensors"]...)
	w[len(w)-1] ^= 0xff
	var entries []registrytest.Entry
	for _, n := range []string{"config.json", "tokenizer.json"} {
		entries = append(entries, registrytest.File("models/"+n, files[n]))
	}
	entries = append(entries, registrytest.File("models/model.safetensors", w))
	d, err := o.push(ctx, ociGood, "v1", registrytest.Modelcar(registrytest.Tar(entries...)))
	if err != nil {
		return err
	}
	signer, err := manifest.NewKeySigner(priv, nil)
	if err != nil {
		return err
	}
	// The copied signature: the publisher's, made for the old digest.
	return o.signAs(ctx, ociGood, d, o.good, signer)
}

// demoOCISteps runs the OCI half of the demo: the signed modelcar allowed, then allowed again
// from the store, then the attacks refused. It returns the allowed model's evidence, the
// refusals in order, and whether every step came out as expected.
func demoOCISteps(ctx context.Context, out io.Writer, v *modelverify.Verifier, o *demoOCI, files map[string][]byte, priv []byte, first int) (allowed *modelverify.Evidence, refused []demoRefusal, ok bool, err error) {
	n := first
	step := func(ref, why string) {
		fmt.Fprintf(out, "\n%d. pull %s\n", n, ref)
		if why != "" {
			fmt.Fprintf(out, "   (%s)\n", why)
		}
		n++
	}
	ok = true
	goodRef := o.ref(ociGood, "v1")
	step(goodRef, "")
	m, gerr := v.Verify(ctx, goodRef)
	if gerr != nil {
		fmt.Fprintf(out, "   unexpectedly refused: %v\n", gerr)
		ok = false
	} else {
		ev := m.Evidence()
		allowed = &ev
		fmt.Fprintf(out, "   ALLOWED: %s\n", ev.Verification)
		printEvidence(out, ev, "   ")
		fmt.Fprintf(out, "   load from:    %s\n", m.Dir())
	}

	step(goodRef, "again: the tag resolved and the signature verified online, the layers not pulled")
	if m, err := v.Verify(ctx, goodRef); err != nil {
		fmt.Fprintf(out, "   unexpectedly refused: %v\n", err)
		ok = false
	} else {
		fmt.Fprintf(out, "   ALLOWED: %s, from the store (%s)\n", m.Evidence().Verification, m.Dir())
		ok = ok && m.Evidence().Cached
	}

	if err := o.moveTag(ctx, files, priv); err != nil {
		return nil, nil, false, fmt.Errorf("demo registry: %w", err)
	}
	for _, a := range []struct {
		ref, why string
		want     *modelverify.Reason
	}{
		{o.ref(ociUnsigned, "v1"), "the same model, pushed without a signature", modelverify.ErrUnsigned},
		{goodRef, "the tag moved to other weights, the old image's signature copied beside them", modelverify.ErrSignature},
		{o.ref(ociPickle, "v1"), "signed, but a layer adds a pickle that runs os.system", modelverify.ErrUnsafeContent},
		{registry.Scheme + ociUnapproved + "/" + ociGood + ":v1", "a registry the policy does not approve: nothing is sent to it", modelverify.ErrEndpointNotAllowed},
	} {
		step(a.ref, a.why)
		_, err := v.Verify(ctx, a.ref)
		var ref *modelverify.Refusal
		switch {
		case errors.As(err, &ref):
			fmt.Fprintf(out, "   REFUSED: %s\n", strings.Join(ref.ReasonNames(), ", "))
			for _, pr := range ref.Problems {
				fmt.Fprintf(out, "   - %s\n", pr)
			}
			fmt.Fprintln(out, "   nothing was published: there is no path to load")
			refused = append(refused, demoRefusal{Ref: a.ref, Refusal: ref})
			ok = ok && errors.Is(err, a.want)
		case err == nil:
			fmt.Fprintln(out, "   unexpectedly allowed")
			ok = false
		default:
			fmt.Fprintf(out, "   failed: %v\n", err)
			ok = false
		}
	}
	return allowed, refused, ok, nil
}

// demoRefusal is one refused OCI reference, for --json.
type demoRefusal struct {
	Ref     string               `json:"ref"`
	Refusal *modelverify.Refusal `json:"refused"`
}

// printOCIAudit lists the audit log's OCI decisions: registry, repository, digest, signer, and
// the reasons of a refusal. This is what an auditor asks of approved registries.
func printOCIAudit(out io.Writer, recs []modelverify.Record) {
	fmt.Fprintln(out, "\naudit log, the OCI decisions (decision, registry, repository, digest, signer or reasons):")
	for _, r := range recs {
		if !strings.HasPrefix(r.Endpoint, registry.Scheme) {
			continue
		}
		digest := r.Commit
		if digest == "" {
			digest = "-"
		} else if len(digest) > len("sha256:")+12 {
			digest = digest[:len("sha256:")+12] + "..."
		}
		who := r.Signer
		if r.Decision != modelverify.DecisionAllowed {
			who = strings.Join(r.Reasons, ", ")
		} else if r.VerificationRecord == modelverify.RecordReused {
			who += " (from the store)"
		}
		fmt.Fprintf(out, "   %-8s %-26s %-24s %-22s %s\n", r.Decision, r.Endpoint, r.Repo, digest, who)
	}
}
