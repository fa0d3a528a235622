package registry

import (
	"archive/tar"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

func TestModelcarLayersFlattenWithWhiteoutsAndOnlyModelsBecomeFiles(t *testing.T) {
	registryModes(t, func(t *testing.T, ts *registrytest.TestServer) {
		base := registrytest.Tar(
			registrytest.Entry{Name: "bin/", Type: tar.TypeDir},
			registrytest.File("bin/sh", []byte("#!")),
			registrytest.Entry{Name: "models/", Type: tar.TypeDir},
			registrytest.File("models/config.json", []byte(`{"a":1}`)),
			registrytest.File("models/old.bin", []byte("old")),
			registrytest.File("models/sub/gone.txt", []byte("gone")),
			registrytest.File("models/sub/also-gone.txt", []byte("gone")),
			registrytest.File("models/keep/kept.txt", []byte("kept")),
			registrytest.File("models/tmp/scratch/x.txt", []byte("x")),
		)
		top := registrytest.Tar(
			registrytest.File("models/.wh.old.bin", nil),
			registrytest.File("models/.wh.tmp", nil),
			registrytest.File("models/sub/.wh..wh..opq", nil),
			registrytest.File("models/sub/new.txt", []byte("new")),
			registrytest.File("models/config.json", []byte(`{"a":2}`)),
			registrytest.Entry{Name: "models/alias.json", Type: tar.TypeSymlink, Linkname: "config.json"},
		)
		d := ts.PushManifest(t, "acme/car", "v1", registrytest.Modelcar(base, top))
		art, p, err := pull(t, testClient(t), ts.Ref("acme/car", "v1"), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if art.Format != FormatModelcar || art.Digest.String() != d.Digest || art.Reference.Digest != d.Digest {
			t.Fatalf("artifact = %s %s %s, want modelcar %s", art.Format, art.Digest, art.Reference, d.Digest)
		}
		want := map[string]string{"config.json": `{"a":2}`, "alias.json": `{"a":2}`, "sub/new.txt": "new", "keep/kept.txt": "kept"}
		if got := readTree(t, p); !maps.Equal(got, want) {
			t.Fatalf("files on disk = %v, want %v", got, want)
		}
		var paths []string
		for _, f := range p.Files {
			paths = append(paths, f.Path)
			if f.Digest.String() != registrytest.Digest([]byte(want[f.Path])) || f.Size != int64(len(want[f.Path])) {
				t.Errorf("%s: digest %s size %d, want the content's", f.Path, f.Digest, f.Size)
			}
		}
		if !slices.Equal(paths, []string{"alias.json", "config.json", "keep/kept.txt", "sub/new.txt"}) {
			t.Fatalf("files = %v", paths)
		}
		if _, err := os.Stat(filepath.Join(p.Dir, "tmp")); !os.IsNotExist(err) {
			t.Fatalf("the whited-out directory is still there: %v", err)
		}
	})
}

func TestModelPackRawLayersAreFilesNamedByTheirAnnotation(t *testing.T) {
	registryModes(t, func(t *testing.T, ts *registrytest.TestServer) {
		files := map[string][]byte{"model.safetensors": []byte("weights"), "tokenizer/vocab.txt": []byte("a b c")}
		ts.PushManifest(t, "acme/pack", "v1", registrytest.ModelPack(files))
		art, p, err := pull(t, testClient(t), ts.Ref("acme/pack", "v1"), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if art.Format != FormatModelPack {
			t.Fatalf("format = %s", art.Format)
		}
		if got := readTree(t, p); !maps.Equal(got, map[string]string{"model.safetensors": "weights", "tokenizer/vocab.txt": "a b c"}) {
			t.Fatalf("files = %v", got)
		}
		for _, f := range p.Files {
			if f.Digest.String() != registrytest.Digest(files[f.Path]) {
				t.Errorf("%s: digest %s", f.Path, f.Digest)
			}
		}
	})
}

func TestModelKitTarLayerHoldsTheModelFiles(t *testing.T) {
	ts := registrytest.NewServer(t)
	ts.PushManifest(t, "acme/kit", "v1", registrytest.ModelKit(map[string][]byte{"model.gguf": []byte("GGUF"), "docs/README.md": []byte("hi")}))
	art, p, err := pull(t, testClient(t), ts.Ref("acme/kit", "v1"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if art.Format != FormatModelKit {
		t.Fatalf("format = %s", art.Format)
	}
	if got := readTree(t, p); !maps.Equal(got, map[string]string{"model.gguf": "GGUF", "docs/README.md": "hi"}) {
		t.Fatalf("files = %v", got)
	}
}

func TestIndexResolvesToLinuxAmd64UnlessToldOtherwise(t *testing.T) {
	ts := registrytest.NewServer(t)
	amd := ts.PushManifest(t, "acme/multi", "", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/arch", []byte("amd64")))))
	arm := ts.PushManifest(t, "acme/multi", "", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/arch", []byte("arm64")))))
	amd.Platform = map[string]string{"os": "linux", "architecture": "amd64"}
	arm.Platform = map[string]string{"os": "linux", "architecture": "arm64"}
	idx := ts.PushIndex(t, "acme/multi", "v1", arm, amd)

	art, p, err := pull(t, testClient(t), ts.Ref("acme/multi", "v1"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if art.Digest.String() != idx.Digest || art.ManifestDigest.String() != amd.Digest {
		t.Fatalf("digest %s manifest %s, want index %s and amd64 %s", art.Digest, art.ManifestDigest, idx.Digest, amd.Digest)
	}
	if got := readTree(t, p)["arch"]; got != "amd64" {
		t.Fatalf("arch = %q", got)
	}
	_, _, err = pull(t, testClient(t, WithPlatform(v1.Platform{OS: "linux", Architecture: "s390x"})), ts.Ref("acme/multi", "v1"), Limits{})
	if !errors.Is(err, ErrPlatformNotFound) {
		t.Fatalf("err = %v, want ErrPlatformNotFound", err)
	}
}

func TestZstdAndDockerLayersAndModelPackTarLayersExtract(t *testing.T) {
	ts := registrytest.NewServer(t)
	c := testClient(t)
	tarball := registrytest.Tar(registrytest.File("models/w.bin", []byte("zstd weights")))
	zm := registrytest.Modelcar()
	zm.Layers = []registrytest.Blob{{MediaType: registrytest.MediaTypeLayerZstd, Data: registrytest.Zstd(tarball)}}
	ts.PushManifest(t, "acme/zstd", "v1", zm)

	// Docker's own media types, as docker push writes them.
	dm := registrytest.Modelcar()
	dm.Config.MediaType = "application/vnd.docker.container.image.v1+json"
	dm.Layers = []registrytest.Blob{{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Data: registrytest.Gzip(tarball)}}
	ts.PushBlob(t, "acme/docker", dm.Config.Data)
	ts.PushBlob(t, "acme/docker", dm.Layers[0].Data)
	raw := strings.Replace(string(dm.JSON()), registrytest.MediaTypeOCIManifest, "application/vnd.docker.distribution.manifest.v2+json", 1)
	ts.PushRaw(t, "acme/docker", "v1", "application/vnd.docker.distribution.manifest.v2+json", []byte(raw))

	pm := registrytest.ModelPack(nil)
	pm.Layers = []registrytest.Blob{{MediaType: "application/vnd.cncf.model.weight.v1.tar+gzip", Data: registrytest.Gzip(registrytest.Tar(registrytest.File("shards/w.bin", []byte("pack weights"))))}}
	ts.PushManifest(t, "acme/packtar", "v1", pm)

	for repo, want := range map[string]map[string]string{
		"acme/zstd":    {"w.bin": "zstd weights"},
		"acme/docker":  {"w.bin": "zstd weights"},
		"acme/packtar": {"shards/w.bin": "pack weights"},
	} {
		_, p, err := pull(t, c, ts.Ref(repo, "v1"), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", repo, err)
		}
		if got := readTree(t, p); !maps.Equal(got, want) {
			t.Fatalf("%s: files %v", repo, got)
		}
	}
}
