// Package modelcar builds KServe modelcar images out of model files and signs them the way the
// cosign CLI does, in both of its signature forms, so that the storage initializer's tests and
// the modelcar-registry command can serve signed and unsigned models from a local registry
// without cosign or docker. It signs with test keys: it is not a release tool.
package modelcar

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/echelongraph/go-modelverify/registry"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// Image is a modelcar image holding files (paths relative to the model) under /models, in one
// gzip-compressed layer, as `COPY model/ /models/` in a Dockerfile makes it.
func Image(files map[string][]byte) registrytest.Manifest {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	entries := make([]registrytest.Entry, 0, len(names))
	for _, name := range names {
		entries = append(entries, registrytest.File("models/"+name, files[name]))
	}
	return registrytest.Modelcar(registrytest.Tar(entries...))
}

// Key is an ECDSA P-256 signing key, as `cosign generate-key-pair` or
// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` makes one. It implements
// sigstore-go's sign.Keypair.
type Key struct {
	priv *ecdsa.PrivateKey
}

var _ sgsign.Keypair = (*Key)(nil)

// NewKey makes a fresh key.
func NewKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv}, nil
}

// ParseKey reads an unencrypted P-256 private key from PEM (PKCS#8 "PRIVATE KEY", as openssl
// genpkey writes it, or SEC 1 "EC PRIVATE KEY").
func ParseKey(pemBytes []byte) (*Key, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("modelcar: no PEM block in the private key file")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("modelcar: PEM %q is not an unencrypted private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("modelcar: private key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("modelcar: the private key is not ECDSA P-256")
	}
	return &Key{priv: ec}, nil
}

// GetHashAlgorithm implements sign.Keypair.
func (k *Key) GetHashAlgorithm() protocommon.HashAlgorithm { return protocommon.HashAlgorithm_SHA2_256 }

// GetSigningAlgorithm implements sign.Keypair.
func (k *Key) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}

// GetHint implements sign.Keypair: the base64 SHA-256 of the public key, as sigstore-go's own
// keys have it.
func (k *Key) GetHint() []byte {
	der, _ := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	sum := sha256.Sum256(der)
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// GetKeyAlgorithm implements sign.Keypair.
func (k *Key) GetKeyAlgorithm() string { return "ECDSA" }

// GetPublicKey implements sign.Keypair.
func (k *Key) GetPublicKey() crypto.PublicKey { return &k.priv.PublicKey }

// GetPublicKeyPem implements sign.Keypair.
func (k *Key) GetPublicKeyPem() (string, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// SignData implements sign.Keypair: an ASN.1 ECDSA signature over SHA-256(data), and the digest.
func (k *Key) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	sum := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, sum[:])
	return sig, sum[:], err
}

// BundleReferrer is cosign v3's signature of subject (`cosign sign --key`): a Sigstore bundle
// holding a DSSE envelope over an in-toto statement with cosign's signature predicate, stored as
// an OCI 1.1 referrer of subject (registrytest's PushReferrer stores it).
func (k *Key) BundleReferrer(subject registrytest.Descriptor) (registrytest.Manifest, error) {
	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "", "digest": map[string]string{"sha256": strings.TrimPrefix(subject.Digest, "sha256:")}}},
		"predicateType": registry.CosignPredicateType,
		"predicate":     map[string]any{},
	})
	if err != nil {
		return registrytest.Manifest{}, err
	}
	pb, err := sgsign.Bundle(&sgsign.DSSEData{Data: stmt, PayloadType: "application/vnd.in-toto+json"}, k, sgsign.BundleOptions{})
	if err != nil {
		return registrytest.Manifest{}, err
	}
	b, err := (&bundle.Bundle{Bundle: pb}).MarshalJSON()
	if err != nil {
		return registrytest.Manifest{}, err
	}
	return registrytest.Manifest{
		ArtifactType: registry.MediaTypeSigstoreBundle,
		Config:       registrytest.Blob{MediaType: registrytest.MediaTypeEmptyJSON, Data: []byte("{}")},
		Layers:       []registrytest.Blob{{MediaType: registry.MediaTypeSigstoreBundle, Data: b}},
		Subject:      &registrytest.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: map[string]string{"dev.sigstore.bundle.content": "dsse-envelope",
			"dev.sigstore.bundle.predicateType": registry.CosignPredicateType},
	}, nil
}

// LegacySignature is cosign v2's signature of the image whose manifest digest is digest, in
// repository dockerRef (host/repository): a simple-signing payload and its signature as a
// layer annotation, in an image to push under the returned tag, sha256-<hex>.sig.
func (k *Key) LegacySignature(dockerRef, digest string) (string, registrytest.Manifest, error) {
	payload, err := json.Marshal(map[string]any{"critical": map[string]any{
		"identity": map[string]string{"docker-reference": dockerRef},
		"image":    map[string]string{"docker-manifest-digest": digest},
		"type":     registry.SimpleSigningType,
	}, "optional": nil})
	if err != nil {
		return "", registrytest.Manifest{}, err
	}
	sig, _, err := k.SignData(context.Background(), payload)
	if err != nil {
		return "", registrytest.Manifest{}, err
	}
	m := registrytest.Manifest{
		Config: registrytest.Blob{MediaType: registrytest.MediaTypeOCIConfig,
			Data: []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)},
		Layers: []registrytest.Blob{{MediaType: registry.MediaTypeSimpleSigning, Data: payload,
			Annotations: map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)}}},
	}
	return strings.Replace(digest, ":", "-", 1) + ".sig", m, nil
}
