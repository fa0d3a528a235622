package registry

import (
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// NewKeyVerifier is a SignatureVerifier for signatures made with the private half of pubPEM
// (cosign sign --key), whatever key hint the signature carries. It requires no transparency log
// entry or timestamp, as cosign's offline key signing makes none; use it with verify.WithKey().
func NewKeyVerifier(pubPEM []byte) (*verify.Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return nil, fmt.Errorf("registry: public key: %w", err)
	}
	sv, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("registry: public key: %w", err)
	}
	key := root.NewExpiringKey(sv, time.Time{}, time.Time{})
	tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
	return verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
}
