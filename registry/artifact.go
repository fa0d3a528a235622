package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxConfigSize bounds a config blob read into memory (a ModelPack or KitOps config, an image config).
const maxConfigSize = 4 << 20

// Format is a way of packing a model into an OCI artefact.
type Format string

// The formats Open recognises.
const (
	// FormatModelcar is a KServe modelcar: a container image with the model under /models.
	FormatModelcar Format = "modelcar"
	// FormatModelPack is a CNCF ModelPack artefact (application/vnd.cncf.model.*).
	FormatModelPack Format = "modelpack"
	// FormatModelKit is a KitOps ModelKit (application/vnd.kitops.modelkit.*).
	FormatModelKit Format = "modelkit"
)

// Media types of the model formats (ModelPack's are copied from github.com/modelpack/model-spec,
// which the module proxy does not serve).
const (
	MediaTypeModelPackManifest = "application/vnd.cncf.model.manifest.v1+json"
	MediaTypeModelPackConfig   = "application/vnd.cncf.model.config.v1+json"
	MediaTypeModelKitManifest  = "application/vnd.kitops.modelkit.manifest.v1+json"
	MediaTypeModelKitConfig    = "application/vnd.kitops.modelkit.config.v1+json"
	// AnnotationModelPackFilepath names the file a ModelPack layer holds.
	AnnotationModelPackFilepath = "org.cncf.model.filepath"
	// ModelcarPrefix is where a modelcar image keeps its model.
	ModelcarPrefix = "models/"
)

// layerKind says how a layer's bytes become files.
type layerKind int

const (
	layerTar layerKind = iota + 1 // a tar stream of files
	layerRaw                      // the blob is one file
)

// compression of a tar layer.
type compression int

const (
	compressNone compression = iota
	compressGzip
	compressZstd
)

// Layer is one layer of an artefact and what it becomes.
type Layer struct {
	// Descriptor is the layer as the manifest gives it: digest, size, media type, annotations.
	Descriptor v1.Descriptor
	// Path is the model file a raw layer is (ModelPack .raw layers); empty for tar layers.
	Path string

	kind        layerKind
	compression compression
}

// Artifact is a model in a registry, pinned to a digest, read as far as its manifest and
// config: what it holds, before any layer is fetched.
type Artifact struct {
	// Reference is the pinned reference: Digest is set, the Tag is only a label.
	Reference Reference
	// Digest is the digest the reference names (an index or a manifest): the one cosign signs.
	Digest v1.Hash
	// ManifestDigest is the image manifest's digest: Digest itself, or the platform's entry in
	// an index.
	ManifestDigest v1.Hash
	// Platform is the platform chosen from an index; nil when the reference names a manifest.
	Platform *v1.Platform
	// Format says how the layers map to model files.
	Format Format
	// Manifest is the image manifest, and RawManifest its exact bytes (which hash to ManifestDigest).
	Manifest    *v1.Manifest
	RawManifest []byte
	// Config is the config blob's bytes (checked against its digest).
	Config []byte
	// Layers are the manifest's layers, in order.
	Layers []Layer
}

// manifestTypes are the manifest media types Open asks for.
var manifestTypes = []types.MediaType{types.OCIManifestSchema1, types.DockerManifestSchema2, types.OCIImageIndex, types.DockerManifestList}

// Resolve pins ref: a tag is resolved to the digest it names now; a pinned reference is
// returned as it is. Everything after uses the digest, so a tag moved later changes nothing.
func (c *Client) Resolve(ctx context.Context, ref Reference) (Reference, error) {
	if ref.Pinned() {
		return ref, nil
	}
	repo, err := ref.repository(false)
	if err != nil {
		return Reference{}, err
	}
	opts, err := c.remoteOptions(ctx, ref)
	if err != nil {
		return Reference{}, err
	}
	desc, err := remote.Get(repo.Tag(ref.Tag), opts...)
	if err != nil {
		return Reference{}, fmt.Errorf("registry: resolving %s: %w", ref, registryError(http.MethodGet, err))
	}
	ref.Digest = desc.Digest.String()
	return ref, nil
}

// Open resolves ref (once, if it is a tag), reads its manifest (choosing the platform's entry of
// an index), reads the config, and says which model format the artefact is. It fetches no layer.
func (c *Client) Open(ctx context.Context, ref Reference) (*Artifact, error) {
	ref, err := c.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	art := &Artifact{Reference: ref}
	if art.Digest, err = v1.NewHash(ref.Digest); err != nil {
		return nil, fmt.Errorf("registry: %s: %w: %v", ref, ErrInvalidReference, err)
	}
	raw, mt, err := c.manifest(ctx, ref, art.Digest)
	if err != nil {
		return nil, err
	}
	art.ManifestDigest = art.Digest
	if mt.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("registry: %s: index: %w", ref, err)
		}
		child, err := c.platform.pick(idx)
		if err != nil {
			return nil, fmt.Errorf("registry: %s: %w", ref, err)
		}
		art.ManifestDigest, art.Platform = child.Digest, child.Platform
		if raw, mt, err = c.manifest(ctx, ref, child.Digest); err != nil {
			return nil, err
		}
		if mt.IsIndex() {
			return nil, fmt.Errorf("registry: %s: %w: the index entry for %s is itself an index", ref, ErrUnsupportedFormat, c.platform)
		}
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("registry: %s: manifest %s: %w", ref, art.ManifestDigest, err)
	}
	art.Manifest, art.RawManifest = m, raw
	if art.Format, err = detectFormat(m); err != nil {
		return nil, fmt.Errorf("registry: %s: %w", ref, err)
	}
	if art.Config, err = c.smallBlob(ctx, ref, m.Config, "config"); err != nil {
		return nil, err
	}
	if art.Layers, err = planLayers(art.Format, m.Layers); err != nil {
		return nil, fmt.Errorf("registry: %s: %w", ref, err)
	}
	return art, nil
}

// manifest fetches the manifest with digest d; go-containerregistry checks the bytes against d.
func (c *Client) manifest(ctx context.Context, ref Reference, d v1.Hash) ([]byte, types.MediaType, error) {
	dn, err := ref.digestName(false, d.String())
	if err != nil {
		return nil, "", err
	}
	o, err := c.remoteOptions(ctx, ref)
	if err != nil {
		return nil, "", err
	}
	desc, err := remote.Get(dn, o...)
	if err != nil {
		return nil, "", fmt.Errorf("registry: manifest %s of %s: %w", d, ref.Name(), registryError(http.MethodGet, err))
	}
	if desc.Digest != d { // go-containerregistry checks this too; the gate does not rely on it alone
		return nil, "", &DigestError{What: "manifest of " + ref.Name(), Expected: d.String(), Found: desc.Digest.String()}
	}
	return desc.Manifest, desc.MediaType, nil
}

// smallBlob reads a small blob (a config, a signature layer) into memory, checked against desc.
func (c *Client) smallBlob(ctx context.Context, ref Reference, desc v1.Descriptor, what string) ([]byte, error) {
	if desc.Size > maxConfigSize || desc.Size < 0 {
		return nil, fmt.Errorf("registry: %s: %s %s is %d bytes, more than the %d allowed", ref, what, desc.Digest, desc.Size, maxConfigSize)
	}
	if len(desc.Data) > 0 {
		// Embedded data is part of the manifest, whose digest is checked; it must still match.
		if h, n, _ := v1.SHA256(bytes.NewReader(desc.Data)); h == desc.Digest && n == desc.Size {
			return desc.Data, nil
		}
	}
	hc, repo, err := c.blobClient(ctx, ref)
	if err != nil {
		return nil, err
	}
	br, err := c.openBlob(ctx, hc, repo, desc, what+" of "+ref.Name())
	if err != nil {
		return nil, err
	}
	defer br.Close()
	return io.ReadAll(br) // bounded: the reader refuses a byte past desc.Size
}

// detectFormat reads the manifest's artifactType and config media type.
func detectFormat(m *v1.Manifest) (Format, error) {
	at, cfg := m.ArtifactType, string(m.Config.MediaType)
	switch {
	case at == MediaTypeModelPackManifest || cfg == MediaTypeModelPackConfig:
		return FormatModelPack, nil
	case at == MediaTypeModelKitManifest || cfg == MediaTypeModelKitConfig:
		return FormatModelKit, nil
	case cfg == string(types.OCIConfigJSON) || cfg == string(types.DockerConfigJSON):
		return FormatModelcar, nil
	}
	return "", fmt.Errorf("%w: artifactType %q, config media type %q: not a modelcar image, a ModelPack or a ModelKit", ErrUnsupportedFormat, at, cfg)
}

// planLayers says what each layer becomes. A media type the format does not define is refused
// rather than skipped: a layer the gate ignores would be a part of the artefact nobody checked.
func planLayers(f Format, descs []v1.Descriptor) ([]Layer, error) {
	layers := make([]Layer, 0, len(descs))
	seenRaw := map[string]bool{}
	for i, d := range descs {
		if len(d.URLs) > 0 {
			return nil, fmt.Errorf("%w: layer %d (%s) is a foreign layer with URLs %v, which are not fetched", ErrUnsupportedFormat, i, d.Digest, d.URLs)
		}
		if d.Digest.Algorithm != "sha256" {
			return nil, fmt.Errorf("%w: layer %d: digest algorithm %q (only sha256 is supported)", ErrUnsupportedFormat, i, d.Digest.Algorithm)
		}
		l := Layer{Descriptor: d}
		mt := string(d.MediaType)
		switch f {
		case FormatModelcar:
			switch mt {
			case string(types.OCILayer), string(types.OCIUncompressedLayer), string(types.DockerLayer),
				"application/vnd.oci.image.layer.v1.tar+zstd", string(types.DockerUncompressedLayer):
			default:
				return nil, fmt.Errorf("%w: layer %d (%s) has media type %q, not an image layer", ErrUnsupportedFormat, i, d.Digest, mt)
			}
		case FormatModelPack:
			if !strings.HasPrefix(mt, "application/vnd.cncf.model.") {
				return nil, fmt.Errorf("%w: layer %d (%s) of a ModelPack has media type %q", ErrUnsupportedFormat, i, d.Digest, mt)
			}
			if strings.HasSuffix(mt, ".raw") {
				p, err := cleanModelPath(d.Annotations[AnnotationModelPackFilepath])
				if err != nil {
					return nil, &EntryError{Layer: d.Digest.String(), Entry: d.Annotations[AnnotationModelPackFilepath], Reason: "annotation " + AnnotationModelPackFilepath + ": " + err.Error(), Err: ErrUnsafeArchive}
				}
				if seenRaw[p] {
					return nil, &EntryError{Layer: d.Digest.String(), Entry: p, Reason: "a second layer names the same file", Err: ErrUnsafeArchive}
				}
				seenRaw[p] = true
				l.kind, l.Path = layerRaw, p
			}
		case FormatModelKit:
			if !strings.HasPrefix(mt, "application/vnd.kitops.modelkit.") {
				return nil, fmt.Errorf("%w: layer %d (%s) of a ModelKit has media type %q", ErrUnsupportedFormat, i, d.Digest, mt)
			}
		}
		if l.kind == 0 {
			switch {
			case strings.HasSuffix(mt, ".tar") || strings.HasSuffix(mt, ".tar.v1") || mt == string(types.DockerUncompressedLayer):
				l.kind = layerTar
			case strings.HasSuffix(mt, "+gzip") || strings.HasSuffix(mt, ".gzip"):
				l.kind, l.compression = layerTar, compressGzip
			case strings.HasSuffix(mt, "+zstd"):
				l.kind, l.compression = layerTar, compressZstd
			default:
				return nil, fmt.Errorf("%w: layer %d (%s): media type %q is neither a tar nor a raw file", ErrUnsupportedFormat, i, d.Digest, mt)
			}
		}
		layers = append(layers, l)
	}
	return layers, nil
}

// platformMatcher picks an index entry.
type platformMatcher v1.Platform

func (p platformMatcher) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func (p platformMatcher) pick(idx *v1.IndexManifest) (v1.Descriptor, error) {
	var seen []string
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			continue
		}
		seen = append(seen, d.Platform.String())
		if d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture && (p.Variant == "" || d.Platform.Variant == p.Variant) {
			return d, nil
		}
	}
	sort.Strings(seen)
	return v1.Descriptor{}, fmt.Errorf("%w: no manifest for %s (the index has %v); choose one with WithPlatform", ErrPlatformNotFound, p, seen)
}

// decodeJSONLimited decodes a bounded JSON document.
func decodeJSONLimited(r io.Reader, limit int64, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return err
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("larger than %d bytes", limit)
	}
	return json.Unmarshal(data, v)
}
