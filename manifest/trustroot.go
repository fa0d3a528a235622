package manifest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	prototrustroot "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"google.golang.org/protobuf/encoding/protojson"
)

// productionTrustedRoot is Sigstore's public-good trusted root (sigstore/root-signing,
// targets/trusted_root.json, 2026-08-21): Fulcio CAs, Rekor logs, CT logs and the timestamp
// authority. Shipping it lets Sigstore signatures verify offline; callers who need a newer
// one, or a private deployment, pass their own.
//
//go:embed trusted_root.json
var productionTrustedRoot []byte

const clientTrustConfigMediaType = "application/vnd.dev.sigstore.clienttrustconfig"

// ProductionTrustedRoot returns the embedded Sigstore public-good trusted root.
func ProductionTrustedRoot() (*root.TrustedRoot, error) {
	tr, err := root.NewTrustedRootFromJSON(productionTrustedRoot)
	if err != nil {
		return nil, fmt.Errorf("%w: embedded production root: %v", ErrTrustRoot, err)
	}
	return tr, nil
}

// TrustConfig is what a trust file holds: always a trusted root, and for a ClientTrustConfig
// also the signing configuration (which Fulcio, Rekor and TSA to sign with).
type TrustConfig struct {
	TrustedRoot   *root.TrustedRoot
	SigningConfig *root.SigningConfig // nil for a bare trusted_root.json
}

// ParseTrustConfig reads either a Sigstore trusted_root.json or a ClientTrustConfig
// (application/vnd.dev.sigstore.clienttrustconfig.v0.1+json, what model_signing's
// --trust-config takes), telling them apart by their media type.
func ParseTrustConfig(data []byte) (*TrustConfig, error) {
	var head struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrTrustRoot, err)
	}
	if !strings.HasPrefix(head.MediaType, clientTrustConfigMediaType) {
		tr, err := root.NewTrustedRootFromJSON(data)
		if err != nil {
			return nil, fmt.Errorf("%w: trusted root (media type %q): %v", ErrTrustRoot, head.MediaType, err)
		}
		return &TrustConfig{TrustedRoot: tr}, nil
	}
	var ctc prototrustroot.ClientTrustConfig
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &ctc); err != nil {
		return nil, fmt.Errorf("%w: client trust config: %v", ErrTrustRoot, err)
	}
	if ctc.GetTrustedRoot() == nil {
		return nil, fmt.Errorf("%w: client trust config has no trustedRoot", ErrTrustRoot)
	}
	tr, err := root.NewTrustedRootFromProtobuf(ctc.GetTrustedRoot())
	if err != nil {
		return nil, fmt.Errorf("%w: client trust config's trustedRoot: %v", ErrTrustRoot, err)
	}
	tc := &TrustConfig{TrustedRoot: tr}
	if sc := ctc.GetSigningConfig(); sc != nil && sc.GetMediaType() != "" {
		if tc.SigningConfig, err = root.NewSigningConfigFromProtobuf(sc); err != nil {
			return nil, fmt.Errorf("%w: client trust config's signingConfig: %v", ErrTrustRoot, err)
		}
	}
	return tc, nil
}

// LoadTrustConfig reads a trusted_root.json or ClientTrustConfig file (see ParseTrustConfig).
func LoadTrustConfig(path string) (*TrustConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTrustRoot, err)
	}
	tc, err := ParseTrustConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tc, nil
}
