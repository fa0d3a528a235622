package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	rekorclient "github.com/sigstore/rekor/pkg/generated/client"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
)

// Sigstore's public service URLs.
const (
	ProductionFulcioURL = "https://fulcio.sigstore.dev"
	ProductionRekorURL  = "https://rekor.sigstore.dev"
	StagingFulcioURL    = "https://fulcio.sigstage.dev"
	StagingRekorURL     = "https://rekor.sigstage.dev"
)

// SigstoreSignerOptions says how to sign keylessly with Sigstore.
type SigstoreSignerOptions struct {
	// IDToken is the OIDC identity token Fulcio certifies; required. Getting one (a browser
	// flow, or a CI provider's ambient credentials) is the caller's business.
	IDToken string
	// FulcioURL and RekorURL are the services to use. The defaults are production's, or
	// staging's with Staging, or those SigningConfig selects.
	FulcioURL string
	RekorURL  string
	Staging   bool
	// SigningConfig selects Fulcio and a Rekor v1 log for a private deployment (the
	// signingConfig of a ClientTrustConfig, see LoadTrustConfig). Explicit URLs win.
	SigningConfig *root.SigningConfig
	// TrustedRoot, if set, is used to verify every bundle before it is returned.
	TrustedRoot root.TrustedMaterial
	// Transport carries every request to Fulcio and Rekor; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// Timeout bounds each request; the default is 30 seconds.
	Timeout time.Duration
}

type sigstoreSigner struct {
	idToken string
	fulcio  *sign.Fulcio
	rekor   *sign.Rekor
	trusted root.TrustedMaterial
}

// NewSigstoreSigner returns a Signer that signs keylessly: for each signature it makes an
// ephemeral P-256 key, gets a certificate for it from Fulcio against the OIDC token, signs, and
// records the signature in Rekor. The bundle carries the certificate and the log entry, as
// sigstore-python's do.
func NewSigstoreSigner(opts SigstoreSignerOptions) (Signer, error) {
	if opts.IDToken == "" {
		return nil, errors.New("sigstore signer: an OIDC identity token is required")
	}
	fulcioURL, rekorURL := ProductionFulcioURL, ProductionRekorURL
	if opts.Staging {
		fulcioURL, rekorURL = StagingFulcioURL, StagingRekorURL
	}
	if sc := opts.SigningConfig; sc != nil {
		now := time.Now()
		f, err := root.SelectService(sc.FulcioCertificateAuthorityURLs(), sign.FulcioAPIVersions, now)
		if err != nil {
			return nil, fmt.Errorf("sigstore signer: signing config: Fulcio: %w", err)
		}
		r, err := root.SelectService(sc.RekorLogURLs(), []uint32{1}, now)
		if err != nil {
			return nil, fmt.Errorf("sigstore signer: signing config: Rekor v1: %w", err)
		}
		fulcioURL, rekorURL = f.URL, r.URL
	}
	if opts.FulcioURL != "" {
		fulcioURL = opts.FulcioURL
	}
	if opts.RekorURL != "" {
		rekorURL = opts.RekorURL
	}
	// sigstore-go appends "/api/..." to the base URL.
	fulcioURL, rekorURL = strings.TrimSuffix(fulcioURL, "/"), strings.TrimSuffix(rekorURL, "/")
	rekorOpts := &sign.RekorOptions{BaseURL: rekorURL, Timeout: opts.Timeout, Retries: 1}
	if opts.Transport != nil {
		u, err := url.Parse(rekorURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("sigstore signer: Rekor URL %q is not an absolute URL", rekorURL)
		}
		// Built as rekor's own client.GetRekorClient builds it, with the caller's transport and
		// without its retrying HTTP client.
		basePath := u.Path
		if basePath == "" {
			basePath = rekorclient.DefaultBasePath
		}
		rt := httptransport.New(u.Host, basePath, []string{u.Scheme})
		rt.Transport = opts.Transport
		rt.Consumers["application/json"] = runtime.JSONConsumer()
		rt.Consumers["application/x-pem-file"] = runtime.TextConsumer()
		rt.Producers["application/json"] = runtime.JSONProducer()
		rekorOpts.Client = rekorclient.New(rt, strfmt.Default).Entries
	}
	return &sigstoreSigner{
		idToken: opts.IDToken,
		fulcio:  sign.NewFulcio(&sign.FulcioOptions{BaseURL: fulcioURL, Timeout: opts.Timeout, Retries: 1, Transport: opts.Transport}),
		rekor:   sign.NewRekor(rekorOpts),
		trusted: opts.TrustedRoot,
	}, nil
}

func (s *sigstoreSigner) SignPayload(ctx context.Context, payload []byte) ([]byte, error) {
	key, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, fmt.Errorf("sigstore signer: %w", err)
	}
	pb, err := sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: PayloadType}, key, sign.BundleOptions{
		CertificateProvider:        s.fulcio,
		CertificateProviderOptions: &sign.CertificateProviderOptions{IDToken: s.idToken},
		TransparencyLogs:           []sign.Transparency{s.rekor},
		TrustedRoot:                s.trusted,
		Context:                    ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("sigstore signer: %w", err)
	}
	b, err := sgbundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("sigstore signer: %w", err)
	}
	js, err := b.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("sigstore signer: %w", err)
	}
	// protojson varies its whitespace on purpose; a signature file should not.
	var out bytes.Buffer
	if err := json.Compact(&out, js); err != nil {
		return nil, fmt.Errorf("sigstore signer: %w", err)
	}
	return out.Bytes(), nil
}
