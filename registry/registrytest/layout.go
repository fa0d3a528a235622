package registrytest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// AnnotationRefName is the OCI layout annotation that names an index entry ("repo:tag").
const AnnotationRefName = "org.opencontainers.image.ref.name"

// PushLayout pushes every entry of the OCI image layout at dir that names a repository and tag
// in its org.opencontainers.image.ref.name annotation ("acme/model:v1", as testdata/oci/make.sh
// writes them), with everything each entry refers to, byte for byte, so that every digest, and
// every signature over one, stays what it was.
func (ts *TestServer) PushLayout(t testing.TB, dir string) {
	t.Helper()
	var idx struct {
		Manifests []Descriptor `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatalf("registrytest: %s: %v", dir, err)
	}
	for _, m := range idx.Manifests {
		repo, tag, ok := strings.Cut(m.Annotations[AnnotationRefName], ":")
		if !ok {
			t.Fatalf("registrytest: %s: entry %s has no %s of the form repo:tag", dir, m.Digest, AnnotationRefName)
		}
		ts.pushLayoutManifest(t, dir, repo, tag, m)
	}
}

func layoutBlob(t testing.TB, dir, digest string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "blobs", strings.Replace(digest, ":", "/", 1)))
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	return b
}

// pushLayoutManifest pushes a manifest or index of the layout, children and blobs first.
func (ts *TestServer) pushLayoutManifest(t testing.TB, dir, repo, tag string, d Descriptor) {
	t.Helper()
	raw := layoutBlob(t, dir, d.Digest)
	var doc struct {
		Manifests []Descriptor `json:"manifests"`
		Config    *Descriptor  `json:"config"`
		Layers    []Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("registrytest: %s: manifest %s: %v", dir, d.Digest, err)
	}
	for _, m := range doc.Manifests {
		ts.pushLayoutManifest(t, dir, repo, "", m)
	}
	if doc.Config != nil {
		ts.PushBlob(t, repo, layoutBlob(t, dir, doc.Config.Digest))
	}
	for _, l := range doc.Layers {
		ts.PushBlob(t, repo, layoutBlob(t, dir, l.Digest))
	}
	ts.PushRaw(t, repo, tag, d.MediaType, raw)
}
