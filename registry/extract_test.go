package registry

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

func TestHostileLayerEntriesAreRefusedWithTheirName(t *testing.T) {
	ts := registrytest.NewServer(t)
	c := testClient(t)
	for name, tc := range map[string]struct {
		entries []registrytest.Entry
		entry   string
		reason  string
		want    error
	}{
		"dot-dot":              {[]registrytest.Entry{registrytest.File("models/../../etc/passwd", []byte("x"))}, "models/../../etc/passwd", `".."`, ErrUnsafeArchive},
		"absolute":             {[]registrytest.Entry{registrytest.File("/models/a", []byte("x"))}, "/models/a", "absolute", ErrUnsafeArchive},
		"symlink out":          {[]registrytest.Entry{{Name: "models/link", Type: tar.TypeSymlink, Linkname: "../../etc/shadow"}}, "models/link", "leaves the model", ErrUnsafeArchive},
		"absolute symlink out": {[]registrytest.Entry{{Name: "models/link", Type: tar.TypeSymlink, Linkname: "/etc/shadow"}}, "models/link", "leaves the model", ErrUnsafeArchive},
		"hard link out":        {[]registrytest.Entry{registrytest.File("etc/secret", []byte("s")), {Name: "models/link", Type: tar.TypeLink, Linkname: "etc/secret"}}, "models/link", "leaves the model", ErrUnsafeArchive},
		"dangling link":        {[]registrytest.Entry{{Name: "models/link", Type: tar.TypeSymlink, Linkname: "nothing"}}, "models/link", "not a file of the model", ErrUnsafeArchive},
		"device":               {[]registrytest.Entry{{Name: "models/dev", Type: tar.TypeChar}}, "models/dev", "device", ErrUnsafeArchive},
		"fifo":                 {[]registrytest.Entry{{Name: "models/fifo", Type: tar.TypeFifo}}, "models/fifo", "FIFO", ErrUnsafeArchive},
		"duplicate":            {[]registrytest.Entry{registrytest.File("models/a", []byte("1")), registrytest.File("models/a", []byte("2"))}, "models/a", "twice", ErrUnsafeArchive},
		"duplicate dot slash":  {[]registrytest.Entry{registrytest.File("models/a", []byte("1")), registrytest.File("./models/a", []byte("2"))}, "./models/a", "twice", ErrUnsafeArchive},
		"backslash":            {[]registrytest.Entry{registrytest.File(`models/..\..\x`, []byte("1"))}, `models/..\..\x`, "backslash", ErrUnsafeArchive},
		"file too big":         {[]registrytest.Entry{registrytest.File("models/big", make([]byte, 2000))}, "models/big", "one file", ErrLimitExceeded},
		"too many files":       {[]registrytest.Entry{registrytest.File("models/1", nil), registrytest.File("models/2", nil), registrytest.File("models/3", nil), registrytest.File("models/4", nil)}, "models/4", "3 files", ErrLimitExceeded},
		"total too big":        {[]registrytest.Entry{registrytest.File("models/1", make([]byte, 900)), registrytest.File("models/2", make([]byte, 900)), registrytest.File("models/3", make([]byte, 900))}, "models/3", "bytes allowed", ErrLimitExceeded},
	} {
		t.Run(name, func(t *testing.T) {
			repo := "acme/" + strings.ReplaceAll(strings.ReplaceAll(name, " ", "-"), "./", "")
			ts.PushManifest(t, repo, "v1", registrytest.Modelcar(registrytest.Tar(tc.entries...)))
			_, _, err := pull(t, c, ts.Ref(repo, "v1"), Limits{MaxFiles: 3, MaxFileSize: 1000, MaxTotalSize: 2000})
			var ee *EntryError
			if !errors.Is(err, tc.want) || !errors.As(err, &ee) {
				t.Fatalf("err = %v, want %v as an *EntryError", err, tc.want)
			}
			if !strings.Contains(err.Error(), "oci://"+ts.Host+"/"+repo) {
				t.Fatalf("the refusal does not name the model: %v", err)
			}
			if ee.Entry != tc.entry || !strings.Contains(ee.Reason, tc.reason) {
				t.Fatalf("refused entry %q (%s), want %q (%s)", ee.Entry, ee.Reason, tc.entry, tc.reason)
			}
		})
	}
}

func TestADecompressionBombStopsAtTheTotalLimit(t *testing.T) {
	ts := registrytest.NewServer(t)
	// 8 MiB of zeros compress to about 8 KiB.
	zeros := make([]byte, 8<<20)
	ts.PushManifest(t, "acme/bomb", "v1", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/zeros", zeros))))
	dir := filepath.Join(t.TempDir(), "model")
	c := testClient(t)
	_, err := c.Pull(t.Context(), openRef(t, c, ts.Ref("acme/bomb", "v1")), dir, Limits{MaxTotalSize: 1 << 20})
	if !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("err = %v, want ErrLimitExceeded", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "zeros")); err == nil {
		t.Fatal("the bomb was written")
	}
}

func TestModelPackRawFilepathMustStayInTheModel(t *testing.T) {
	ts := registrytest.NewServer(t)
	m := registrytest.ModelPack(map[string][]byte{"../escape": []byte("x")})
	ts.PushManifest(t, "acme/pack", "v1", m)
	_, err := testClient(t).Open(t.Context(), mustParse(t, ts.Ref("acme/pack", "v1")))
	if !errors.Is(err, ErrUnsafeArchive) || !strings.Contains(err.Error(), `".."`) {
		t.Fatalf("err = %v, want ErrUnsafeArchive naming ..", err)
	}
}

func TestArtefactFormatsRefuseAFileInTwoLayers(t *testing.T) {
	ts := registrytest.NewServer(t)
	m := registrytest.ModelKit(map[string][]byte{"a.bin": []byte("1")})
	m.Layers = append(m.Layers, registrytest.Blob{MediaType: registrytest.MediaTypeModelKitTar, Data: registrytest.Tar(registrytest.File("a.bin", []byte("2")))})
	ts.PushManifest(t, "acme/kit", "v1", m)
	_, _, err := pull(t, testClient(t), ts.Ref("acme/kit", "v1"), Limits{})
	if !errors.Is(err, ErrUnsafeArchive) || !strings.Contains(err.Error(), "earlier layer") {
		t.Fatalf("err = %v", err)
	}
}

func TestPullRefusesANonEmptyStagingDirectory(t *testing.T) {
	ts := registrytest.NewServer(t)
	ts.PushManifest(t, "acme/m", "v1", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/a", []byte("1")))))
	c := testClient(t)
	art := openRef(t, c, ts.Ref("acme/m", "v1"))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "planted"), []byte("x"), 0o644)
	if _, err := c.Pull(t.Context(), art, dir, Limits{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnknownMediaTypesAreRefusedNotSkipped(t *testing.T) {
	ts := registrytest.NewServer(t)
	m := registrytest.Modelcar(registrytest.Tar(registrytest.File("models/a", []byte("1"))))
	m.Layers = append(m.Layers, registrytest.Blob{MediaType: "application/x-mystery", Data: []byte("??")})
	ts.PushManifest(t, "acme/m", "v1", m)
	_, err := testClient(t).Open(t.Context(), mustParse(t, ts.Ref("acme/m", "v1")))
	if !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), "application/x-mystery") {
		t.Fatalf("err = %v", err)
	}
	ts.PushManifest(t, "acme/helm", "v1", registrytest.Manifest{Config: registrytest.Blob{MediaType: "application/vnd.cncf.helm.config.v1+json", Data: []byte("{}")}})
	if _, err := testClient(t).Open(t.Context(), mustParse(t, ts.Ref("acme/helm", "v1"))); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("helm chart: err = %v", err)
	}
}

func TestAFileWhereADirectoryIsAndTheReverseAreRefused(t *testing.T) {
	ts := registrytest.NewServer(t)
	for repo, entries := range map[string][]registrytest.Entry{
		"acme/file-then-dir": {registrytest.File("x", []byte("1")), registrytest.File("x/y", []byte("2"))},
		"acme/dir-then-file": {registrytest.File("x/y", []byte("1")), registrytest.File("x", []byte("2"))},
	} {
		m := registrytest.ModelKit(nil)
		m.Layers[0].Data = registrytest.Tar(entries...)
		ts.PushManifest(t, repo, "v1", m)
		_, _, err := pull(t, testClient(t), ts.Ref(repo, "v1"), Limits{})
		if !errors.Is(err, ErrUnsafeArchive) || !(strings.Contains(err.Error(), "is a file") || strings.Contains(err.Error(), "directory holding")) {
			t.Fatalf("%s: err = %v", repo, err)
		}
	}
}
