package registrytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Media types the builders use.
const (
	MediaTypeOCIManifest  = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex     = "application/vnd.oci.image.index.v1+json"
	MediaTypeOCIConfig    = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayerTar     = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeLayerGzip    = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeLayerZstd    = "application/vnd.oci.image.layer.v1.tar+zstd"
	MediaTypeEmptyJSON    = "application/vnd.oci.empty.v1+json"
	MediaTypeModelPackRaw = "application/vnd.cncf.model.weight.v1.raw"
	MediaTypeModelPackTar = "application/vnd.cncf.model.weight.v1.tar"
	MediaTypeModelKitTar  = "application/vnd.kitops.modelkit.model.v1.tar"
)

// Entry is one tar entry. Type defaults to a regular file (tar.TypeReg).
type Entry struct {
	Name     string
	Body     []byte
	Type     byte
	Linkname string
	// Size overrides len(Body) in the header, to build truncated or lying entries.
	Size int64
}

// File is a regular file entry.
func File(name string, body []byte) Entry { return Entry{Name: name, Body: body} }

// Tar writes entries as a tar stream, in order (duplicates and hostile names included: that is
// what tests need).
func Tar(entries ...Entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		size := int64(len(e.Body))
		if typ != tar.TypeReg {
			size = 0
		}
		if e.Size != 0 {
			size = e.Size
		}
		h := &tar.Header{Name: e.Name, Typeflag: typ, Linkname: e.Linkname, Size: size, Mode: 0o644, Format: tar.FormatPAX}
		if typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(fmt.Sprintf("registrytest: tar header %q: %v", e.Name, err))
		}
		if typ == tar.TypeReg {
			_, _ = tw.Write(e.Body)
		}
	}
	// No Close: a stream cut short by a lying Size must stay cut short. The end marker is added
	// only when every entry is whole.
	_ = tw.Flush()
	buf.Write(make([]byte, 1024))
	return buf.Bytes()
}

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// Zstd compresses b.
func Zstd(b []byte) []byte {
	enc, _ := zstd.NewWriter(nil)
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// Digest is "sha256:<hex>" of b.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// Blob is a blob and how a manifest refers to it.
type Blob struct {
	MediaType   string
	Data        []byte
	Annotations map[string]string
	// ArtifactType, Platform: for index entries.
	ArtifactType string
	Platform     map[string]string
}

// Descriptor is the OCI descriptor of b.
func (b Blob) Descriptor() Descriptor {
	return Descriptor{MediaType: b.MediaType, Digest: Digest(b.Data), Size: int64(len(b.Data)), Annotations: b.Annotations, ArtifactType: b.ArtifactType, Platform: b.Platform}
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     map[string]string `json:"platform,omitempty"`
}

// Manifest is an OCI image manifest to build.
type Manifest struct {
	ArtifactType string
	Config       Blob
	Layers       []Blob
	Subject      *Descriptor
	Annotations  map[string]string
}

// JSON is the manifest's bytes.
func (m Manifest) JSON() []byte {
	doc := struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		ArtifactType  string            `json:"artifactType,omitempty"`
		Config        Descriptor        `json:"config"`
		Layers        []Descriptor      `json:"layers"`
		Subject       *Descriptor       `json:"subject,omitempty"`
		Annotations   map[string]string `json:"annotations,omitempty"`
	}{2, MediaTypeOCIManifest, m.ArtifactType, m.Config.Descriptor(), []Descriptor{}, m.Subject, m.Annotations}
	for _, l := range m.Layers {
		doc.Layers = append(doc.Layers, l.Descriptor())
	}
	b, _ := json.Marshal(doc)
	return b
}

// Modelcar is a KServe modelcar image: one layer per tar stream given (each gzip-compressed),
// with an OCI image config for linux/amd64. Put the model under models/.
func Modelcar(tars ...[]byte) Manifest {
	var diffIDs []string
	var layers []Blob
	for _, t := range tars {
		diffIDs = append(diffIDs, Digest(t))
		layers = append(layers, Blob{MediaType: MediaTypeLayerGzip, Data: Gzip(t)})
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"WorkingDir": "/"},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	return Manifest{Config: Blob{MediaType: MediaTypeOCIConfig, Data: cfg}, Layers: layers}
}

// ModelPack is a CNCF ModelPack artefact with one .raw layer per file, named by its
// org.cncf.model.filepath annotation.
func ModelPack(files map[string][]byte) Manifest {
	var layers []Blob
	var diffIDs []string
	for _, name := range sortedKeys(files) {
		layers = append(layers, Blob{MediaType: MediaTypeModelPackRaw, Data: files[name], Annotations: map[string]string{"org.cncf.model.filepath": name}})
		diffIDs = append(diffIDs, Digest(files[name]))
	}
	cfg, _ := json.Marshal(map[string]any{
		"descriptor": map[string]any{"name": "test-model", "version": "1"},
		"modelfs":    map[string]any{"type": "layers", "diffIds": diffIDs},
		"config":     map[string]any{"format": "safetensors"},
	})
	return Manifest{ArtifactType: "application/vnd.cncf.model.manifest.v1+json",
		Config: Blob{MediaType: "application/vnd.cncf.model.config.v1+json", Data: cfg}, Layers: layers}
}

// ModelKit is a KitOps ModelKit whose model layer is a tar of files.
func ModelKit(files map[string][]byte) Manifest {
	var entries []Entry
	for _, name := range sortedKeys(files) {
		entries = append(entries, File(name, files[name]))
	}
	cfg, _ := json.Marshal(map[string]any{
		"manifestVersion": "1.0.0",
		"package":         map[string]any{"name": "test-kit"},
		"model":           map[string]any{"name": "model", "path": "."},
	})
	return Manifest{ArtifactType: "application/vnd.kitops.modelkit.manifest.v1+json",
		Config: Blob{MediaType: "application/vnd.kitops.modelkit.config.v1+json", Data: cfg},
		Layers: []Blob{{MediaType: MediaTypeModelKitTar, Data: Tar(entries...)}}}
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// PushBlob uploads a blob to repo (monolithic upload).
func (ts *TestServer) PushBlob(t testing.TB, repo string, data []byte) {
	t.Helper()
	u := fmt.Sprintf("%s/v2/%s/blobs/uploads/?digest=%s", ts.URL, repo, Digest(data))
	ts.do(t, http.MethodPost, u, "application/octet-stream", data, http.StatusCreated)
}

// PushManifest uploads m's blobs and m itself to repo, tagged tag if tag is not empty, and
// returns its descriptor.
func (ts *TestServer) PushManifest(t testing.TB, repo, tag string, m Manifest) Descriptor {
	t.Helper()
	ts.PushBlob(t, repo, m.Config.Data)
	for _, l := range m.Layers {
		ts.PushBlob(t, repo, l.Data)
	}
	return ts.PushRaw(t, repo, tag, MediaTypeOCIManifest, m.JSON())
}

// PushIndex uploads an image index over the given manifests (already pushed) to repo.
func (ts *TestServer) PushIndex(t testing.TB, repo, tag string, entries ...Descriptor) Descriptor {
	t.Helper()
	doc := map[string]any{"schemaVersion": 2, "mediaType": MediaTypeOCIIndex, "manifests": entries}
	b, _ := json.Marshal(doc)
	return ts.PushRaw(t, repo, tag, MediaTypeOCIIndex, b)
}

// PushRaw uploads manifest bytes as they are, by digest and, if tag is not empty, by tag.
func (ts *TestServer) PushRaw(t testing.TB, repo, tag, mediaType string, raw []byte) Descriptor {
	t.Helper()
	d := Digest(raw)
	ts.do(t, http.MethodPut, fmt.Sprintf("%s/v2/%s/manifests/%s", ts.URL, repo, d), mediaType, raw, http.StatusCreated)
	if tag != "" {
		ts.do(t, http.MethodPut, fmt.Sprintf("%s/v2/%s/manifests/%s", ts.URL, repo, tag), mediaType, raw, http.StatusCreated)
	}
	var probe struct {
		ArtifactType string `json:"artifactType"`
	}
	_ = json.Unmarshal(raw, &probe)
	return Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(raw)), ArtifactType: probe.ArtifactType}
}

func (ts *TestServer) do(t testing.TB, method, u, contentType string, body []byte, want int) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	req.Header.Set("Content-Type", contentType)
	if ts.user != "" {
		req.SetBasicAuth(ts.user, ts.password)
	}
	resp, err := ts.Registry.Client().Do(req)
	if err != nil {
		t.Fatalf("registrytest: %s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != want && !(want == http.StatusCreated && resp.StatusCode/100 == 2) {
		t.Fatalf("registrytest: %s %s: HTTP %d: %s", method, u, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
}

// PushReferrer pushes m, whose Subject must be set, as a referrer: by digest, and, when the
// registry runs without the referrers API, into the subject's tag-schema index (the index tagged
// sha256-<hex>), as clients such as cosign and oras maintain it.
func (ts *TestServer) PushReferrer(t testing.TB, repo string, m Manifest) Descriptor {
	t.Helper()
	if m.Subject == nil {
		t.Fatalf("registrytest: PushReferrer: the manifest has no subject")
	}
	d := ts.PushManifest(t, repo, "", m)
	d.ArtifactType = m.ArtifactType
	if d.ArtifactType == "" {
		d.ArtifactType = m.Config.MediaType
	}
	d.Annotations = m.Annotations
	if ts.referrers {
		return d
	}
	key := repo + "@" + m.Subject.Digest
	ts.mu.Lock()
	if ts.tagSchema == nil {
		ts.tagSchema = map[string][]Descriptor{}
	}
	ts.tagSchema[key] = append(ts.tagSchema[key], d)
	entries := append([]Descriptor(nil), ts.tagSchema[key]...)
	ts.mu.Unlock()
	ts.PushIndex(t, repo, strings.Replace(m.Subject.Digest, ":", "-", 1), entries...)
	return d
}
