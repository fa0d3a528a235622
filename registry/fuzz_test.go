package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"oci://ghcr.io/acme/model:v1", "oci://h:1/a@sha256:" + strings.Repeat("a", 64), "x/y", "oci://a.b/../c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("error without ErrInvalidReference: %v", err)
			}
			return
		}
		// What parses must print back to something that parses to the same reference.
		again, err := ParseReference(r.String())
		if err != nil || again != r {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, r, r.String(), again, err)
		}
		if strings.Contains(r.Repository, "..") || r.Registry == "" {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// FuzzExtractLayer feeds arbitrary bytes to the tar extractor as a modelcar layer, a ModelKit
// layer and a gzip layer: it must never write outside the staging directory, never leave a
// link, and never report a file that is not on disk with that size.
func FuzzExtractLayer(f *testing.F) {
	f.Add(registrytest.Tar(registrytest.File("models/a", []byte("x"))), byte(0))
	f.Add(registrytest.Tar(registrytest.File("models/../x", []byte("x"))), byte(1))
	f.Add(registrytest.Tar(registrytest.Entry{Name: "models/l", Type: tar.TypeSymlink, Linkname: "../../etc"}), byte(0))
	f.Add(registrytest.Tar(registrytest.File("a", []byte("x")), registrytest.Entry{Name: "b", Type: tar.TypeLink, Linkname: "a"}), byte(1))
	f.Add(registrytest.Gzip(registrytest.Tar(registrytest.File("models/.wh..wh..opq", nil))), byte(2))
	f.Fuzz(func(t *testing.T, data []byte, mode byte) {
		root := t.TempDir()
		dir := filepath.Join(root, "model")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		format, l := FormatModelcar, Layer{kind: layerTar, Descriptor: v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}}}
		switch mode % 3 {
		case 1:
			format = FormatModelKit
		case 2:
			l.compression = compressGzip
		}
		limits := Limits{MaxFiles: 50, MaxFileSize: 1 << 20, MaxTotalSize: 4 << 20}
		scratch := filepath.Join(root, "scratch")
		if err := os.Mkdir(scratch, 0o700); err != nil {
			t.Fatal(err)
		}
		st, err := stageTar(context.Background(), bytes.NewReader(data), l, format, scratch, newBudget(limits))
		if err != nil {
			return
		}
		x := newExtractor(dir, limits, format)
		if err := x.merge(0, l, st); err != nil {
			return
		}
		files := sortedFiles(x.files)
		for _, fl := range files {
			st, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(fl.Path)))
			if err != nil || !st.Mode().IsRegular() || st.Size() != fl.Size {
				t.Fatalf("file %q: %v %v", fl.Path, st, err)
			}
		}
		ents, _ := os.ReadDir(root)
		if len(ents) != 2 {
			t.Fatalf("something was written beside the staging directory: %v", ents)
		}
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type()&os.ModeSymlink != 0 {
				t.Fatalf("a link was left at %s", p)
			}
			return nil
		})
	})
}

func FuzzSignaturePayloads(f *testing.F) {
	d := "sha256:" + strings.Repeat("a", 64)
	f.Add(simpleSigningPayload("r", d), statement(d, CosignPredicateType), []byte(`{"SignedEntryTimestamp":"","Payload":{"body":"e30=","logID":"00"}}`))
	f.Fuzz(func(t *testing.T, payload, stmt, rekor []byte) {
		h, _ := v1.NewHash(d)
		if _, err := CheckSimpleSigningPayload(payload, h); err == nil && !bytes.Contains(payload, []byte(h.Hex)) && !bytes.Contains(payload, []byte(`\u`)) {
			t.Fatalf("accepted a payload that does not name the digest: %q", payload)
		}
		if err := checkCosignStatement(stmt, h); err == nil && !bytes.Contains(stmt, []byte(CosignPredicateType[:10])) && !bytes.Contains(stmt, []byte(`\u`)) {
			t.Fatalf("accepted a statement without cosign's predicate: %q", stmt)
		}
		_, _ = rekorEntry(rekor)
		_, _ = legacyBundle(payload, map[string]string{annotationSignature: "c2ln", annotationRekorBundle: string(rekor), annotationCertificate: string(stmt)})
	})
}

func FuzzDockerConfig(f *testing.F) {
	f.Add([]byte(`{"auths":{"ghcr.io":{"auth":"dTpw"}},"credHelpers":{"gcr.io":"gcloud"}}`))
	f.Add([]byte(`{"auths":{"x":{"auth":"!!"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseDockerConfig(data)
		if err != nil {
			return
		}
		kc := &dockerKeychain{cfg: cfg, helper: func(context.Context, string, string) (authn.AuthConfig, error) { return authn.AuthConfig{}, nil }}
		for host := range cfg.Auths {
			reg, err := name.NewRegistry(normalizeRegistryHost(host))
			if err != nil {
				continue
			}
			if _, err := kc.Resolve(reg); err != nil {
				t.Fatalf("an accepted config fails to resolve %q: %v", host, err)
			}
		}
	})
}

// FuzzIsOMSBundle: any bytes a referrer holds are classified without panicking, and only a
// bundle whose statement claims model_signing's predicate is taken for an OMS bundle.
func FuzzIsOMSBundle(f *testing.F) {
	for _, pt := range []string{OMSPredicateType, OMSPredicateTypeV01, CosignPredicateType} {
		stmt := statement("sha256:"+strings.Repeat("a", 64), pt)
		f.Add([]byte(`{"dsseEnvelope":{"payload":"` + base64.StdEncoding.EncodeToString(stmt) + `"}}`))
	}
	f.Add([]byte(`{"dsseEnvelope":null}`))
	f.Add([]byte(`{"messageSignature":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if IsOMSBundle(data) && !bytes.Contains(data, []byte("dsseEnvelope")) {
			t.Fatalf("%q classified as an OMS bundle without a DSSE envelope", data)
		}
	})
}

// FuzzCertificateSignatureBundle: a bundle a registry serves, read as a certificate signer's
// cosign signature, never panics, and verifies only with the signed statement and signature
// it was made with (whatever else of its JSON changes), by the certificate it carries.
func FuzzCertificateSignatureBundle(f *testing.F) {
	p := newPKI(f)
	leaf, key := p.leaf(f, x509.ExtKeyUsageCodeSigning, "release@acme.example")
	d := "sha256:" + strings.Repeat("a", 64)
	stmt := statement(d, CosignPredicateType)
	seed := certBundle(f, stmt, key, leaf, p.inter)
	f.Add(seed)
	f.Add(certBundle(f, stmt, key, leaf))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"x509CertificateChain":{"certificates":[]}}}`))
	h, _ := v1.NewHash(d)
	check := func(*x509.Certificate, []*x509.Certificate) error { return nil }
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &Signature{Form: FormBundle, Subject: h, Source: "fuzz", Bundle: data}
		vs, err := s.Verify(NewCertificateVerifier(check), verify.WithKey())
		if err != nil {
			return
		}
		b, _ := parseBundle(data)
		env := b.GetDsseEnvelope()
		// The key pair differs in each fuzzing process; the statement does not.
		if !bytes.Equal(env.Payload, stmt) || len(vs.Certificates) == 0 {
			t.Fatalf("verified a bundle with another statement or no certificate: %q", data)
		}
	})
}
