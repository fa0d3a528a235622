package manifest

import (
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// Match checks a verified certificate's Fulcio extensions against e's constraints, with the
// same refusal text (matching ErrIdentity) as a Sigstore verifier gives, for callers that
// verify with sigstore-go themselves (the OCI gate's cosign signatures).
func (e *FulcioExtensions) Match(got certificate.Extensions) error {
	if e == nil {
		return nil
	}
	want, problems := compileConstraints(e)
	if err := optionErrors(problems); err != nil {
		return err
	}
	return checkFulcioExtensions(want, got)
}

// ExtensionValues lists the Fulcio extensions a certificate carries by their policy names, as
// SignerInfo.Extensions does; nil when it carries none.
func ExtensionValues(got certificate.Extensions) map[string]string {
	return fulcioExtensionValues(got)
}
