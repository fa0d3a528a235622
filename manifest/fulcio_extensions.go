package manifest

import (
	"fmt"
	"reflect"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// FulcioExtensions constrains the extensions Fulcio writes into a keyless certificate: the
// claims of the OIDC token it was issued for, such as which repository's workflow, on which
// ref, started by which event. They are what lets a policy say "signed by this repository's
// release workflow on a tag" rather than only "by this workflow URI".
//
// Each value is given exactly (X) or as a regular expression (XRegexp) that must match the whole
// value (see CompileAnchored); set at most one of each pair. Every constraint that is set must
// hold; a certificate without the extension fails it. The names are sigstore-go's
// (certificate.Extensions) and Fulcio's documentation's; the deprecated GitHub ones are what
// cosign's --certificate-github-workflow-* flags check.
type FulcioExtensions struct {
	// GithubWorkflowTrigger is the event that triggered a GitHub Actions workflow (deprecated by
	// Fulcio in favour of buildTrigger): "push", "release"; OID 1.3.6.1.4.1.57264.1.2 (cosign
	// --certificate-github-workflow-trigger).
	GithubWorkflowTrigger       string `json:"githubWorkflowTrigger,omitempty"`
	GithubWorkflowTriggerRegexp string `json:"githubWorkflowTriggerRegexp,omitempty"`
	// GithubWorkflowSHA is the commit a GitHub Actions workflow ran on (deprecated in favour of
	// sourceRepositoryDigest); OID 1.3.6.1.4.1.57264.1.3 (cosign
	// --certificate-github-workflow-sha).
	GithubWorkflowSHA       string `json:"githubWorkflowSHA,omitempty"`
	GithubWorkflowSHARegexp string `json:"githubWorkflowSHARegexp,omitempty"`
	// GithubWorkflowName is the GitHub Actions workflow's name (deprecated in favour of
	// buildConfigURI); OID 1.3.6.1.4.1.57264.1.4 (cosign --certificate-github-workflow-name).
	GithubWorkflowName       string `json:"githubWorkflowName,omitempty"`
	GithubWorkflowNameRegexp string `json:"githubWorkflowNameRegexp,omitempty"`
	// GithubWorkflowRepository is the GitHub repository the workflow ran in, "owner/name"
	// (deprecated in favour of sourceRepositoryURI); OID 1.3.6.1.4.1.57264.1.5 (cosign
	// --certificate-github-workflow-repository).
	GithubWorkflowRepository       string `json:"githubWorkflowRepository,omitempty"`
	GithubWorkflowRepositoryRegexp string `json:"githubWorkflowRepositoryRegexp,omitempty"`
	// GithubWorkflowRef is the git ref the workflow ran on, "refs/tags/v1.0" (deprecated in favour
	// of sourceRepositoryRef); OID 1.3.6.1.4.1.57264.1.6 (cosign
	// --certificate-github-workflow-ref).
	GithubWorkflowRef       string `json:"githubWorkflowRef,omitempty"`
	GithubWorkflowRefRegexp string `json:"githubWorkflowRefRegexp,omitempty"`
	// BuildSignerURI is the build instructions that signed, for GitHub the workflow file at a ref:
	// "https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1.0"; OID
	// 1.3.6.1.4.1.57264.1.9.
	BuildSignerURI       string `json:"buildSignerURI,omitempty"`
	BuildSignerURIRegexp string `json:"buildSignerURIRegexp,omitempty"`
	// BuildSignerDigest is the commit of the build instructions that signed; OID
	// 1.3.6.1.4.1.57264.1.10.
	BuildSignerDigest       string `json:"buildSignerDigest,omitempty"`
	BuildSignerDigestRegexp string `json:"buildSignerDigestRegexp,omitempty"`
	// RunnerEnvironment is where the build ran: "github-hosted" or "self-hosted"; OID
	// 1.3.6.1.4.1.57264.1.11.
	RunnerEnvironment       string `json:"runnerEnvironment,omitempty"`
	RunnerEnvironmentRegexp string `json:"runnerEnvironmentRegexp,omitempty"`
	// SourceRepositoryURI is the source repository the build was based on:
	// "https://github.com/o/r"; OID 1.3.6.1.4.1.57264.1.12.
	SourceRepositoryURI       string `json:"sourceRepositoryURI,omitempty"`
	SourceRepositoryURIRegexp string `json:"sourceRepositoryURIRegexp,omitempty"`
	// SourceRepositoryDigest is the commit of the source the build was based on; OID
	// 1.3.6.1.4.1.57264.1.13.
	SourceRepositoryDigest       string `json:"sourceRepositoryDigest,omitempty"`
	SourceRepositoryDigestRegexp string `json:"sourceRepositoryDigestRegexp,omitempty"`
	// SourceRepositoryRef is the git ref the build was based on: "refs/tags/v1.0",
	// "refs/heads/main"; OID 1.3.6.1.4.1.57264.1.14.
	SourceRepositoryRef       string `json:"sourceRepositoryRef,omitempty"`
	SourceRepositoryRefRegexp string `json:"sourceRepositoryRefRegexp,omitempty"`
	// SourceRepositoryIdentifier is the source repository's immutable id (GitHub's numeric
	// repository id), which survives renames; OID 1.3.6.1.4.1.57264.1.15.
	SourceRepositoryIdentifier       string `json:"sourceRepositoryIdentifier,omitempty"`
	SourceRepositoryIdentifierRegexp string `json:"sourceRepositoryIdentifierRegexp,omitempty"`
	// SourceRepositoryOwnerURI is the source repository's owner: "https://github.com/o"; OID
	// 1.3.6.1.4.1.57264.1.16.
	SourceRepositoryOwnerURI       string `json:"sourceRepositoryOwnerURI,omitempty"`
	SourceRepositoryOwnerURIRegexp string `json:"sourceRepositoryOwnerURIRegexp,omitempty"`
	// SourceRepositoryOwnerIdentifier is the owner's immutable id; OID 1.3.6.1.4.1.57264.1.17.
	SourceRepositoryOwnerIdentifier       string `json:"sourceRepositoryOwnerIdentifier,omitempty"`
	SourceRepositoryOwnerIdentifierRegexp string `json:"sourceRepositoryOwnerIdentifierRegexp,omitempty"`
	// BuildConfigURI is the top-level build instructions, for GitHub the calling workflow at a
	// ref; OID 1.3.6.1.4.1.57264.1.18.
	BuildConfigURI       string `json:"buildConfigURI,omitempty"`
	BuildConfigURIRegexp string `json:"buildConfigURIRegexp,omitempty"`
	// BuildConfigDigest is the commit of the top-level build instructions; OID
	// 1.3.6.1.4.1.57264.1.19.
	BuildConfigDigest       string `json:"buildConfigDigest,omitempty"`
	BuildConfigDigestRegexp string `json:"buildConfigDigestRegexp,omitempty"`
	// BuildTrigger is the event that started the build: "push", "release", "workflow_dispatch";
	// OID 1.3.6.1.4.1.57264.1.20.
	BuildTrigger       string `json:"buildTrigger,omitempty"`
	BuildTriggerRegexp string `json:"buildTriggerRegexp,omitempty"`
	// RunInvocationURI is the build run: "https://github.com/o/r/actions/runs/1/attempts/1"; OID
	// 1.3.6.1.4.1.57264.1.21.
	RunInvocationURI       string `json:"runInvocationURI,omitempty"`
	RunInvocationURIRegexp string `json:"runInvocationURIRegexp,omitempty"`
	// SourceRepositoryVisibilityAtSigning is the source repository's visibility when it signed:
	// "public" or "private"; OID 1.3.6.1.4.1.57264.1.22.
	SourceRepositoryVisibilityAtSigning       string `json:"sourceRepositoryVisibilityAtSigning,omitempty"`
	SourceRepositoryVisibilityAtSigningRegexp string `json:"sourceRepositoryVisibilityAtSigningRegexp,omitempty"`
}

// fulcioExtensionOIDs names each extension's OID in refusals, so that a reader can find it in
// the certificate (openssl x509 -text prints OIDs, not names).
var fulcioExtensionOIDs = map[string]string{
	"githubWorkflowTrigger":               "1.3.6.1.4.1.57264.1.2",
	"githubWorkflowSHA":                   "1.3.6.1.4.1.57264.1.3",
	"githubWorkflowName":                  "1.3.6.1.4.1.57264.1.4",
	"githubWorkflowRepository":            "1.3.6.1.4.1.57264.1.5",
	"githubWorkflowRef":                   "1.3.6.1.4.1.57264.1.6",
	"buildSignerURI":                      "1.3.6.1.4.1.57264.1.9",
	"buildSignerDigest":                   "1.3.6.1.4.1.57264.1.10",
	"runnerEnvironment":                   "1.3.6.1.4.1.57264.1.11",
	"sourceRepositoryURI":                 "1.3.6.1.4.1.57264.1.12",
	"sourceRepositoryDigest":              "1.3.6.1.4.1.57264.1.13",
	"sourceRepositoryRef":                 "1.3.6.1.4.1.57264.1.14",
	"sourceRepositoryIdentifier":          "1.3.6.1.4.1.57264.1.15",
	"sourceRepositoryOwnerURI":            "1.3.6.1.4.1.57264.1.16",
	"sourceRepositoryOwnerIdentifier":     "1.3.6.1.4.1.57264.1.17",
	"buildConfigURI":                      "1.3.6.1.4.1.57264.1.18",
	"buildConfigDigest":                   "1.3.6.1.4.1.57264.1.19",
	"buildTrigger":                        "1.3.6.1.4.1.57264.1.20",
	"runInvocationURI":                    "1.3.6.1.4.1.57264.1.21",
	"sourceRepositoryVisibilityAtSigning": "1.3.6.1.4.1.57264.1.22",
}

// Check reports every constraint that cannot be used: both halves of a pair set, or a regular
// expression that does not compile or would match an absent extension.
func (e *FulcioExtensions) Check() []*OptionError {
	_, problems := compileConstraints(e)
	return problems
}

// certificateExtensionFields finds a value in sigstore-go's parsed extensions by the JSON name
// that it and FulcioExtensions share.
var certificateExtensionFields = func() map[string][]int {
	m := map[string][]int{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[certificate.Extensions]()) {
		m[jsonName(f)] = f.Index
	}
	return m
}()

// checkFulcioExtensions tests the extensions of a verified certificate against the constraints.
func checkFulcioExtensions(want []valueConstraint, got certificate.Extensions) error {
	gv := reflect.ValueOf(got)
	for _, c := range want {
		var values []string
		if v := gv.FieldByIndex(certificateExtensionFields[c.field]).String(); v != "" {
			values = []string{v}
		}
		if err := c.matchAny(fmt.Sprintf("certificate extension %s (OID %s)", c.field, fulcioExtensionOIDs[c.field]), values); err != nil {
			return err
		}
	}
	return nil
}

// fulcioExtensionValues lists the extensions a certificate carries, for the evidence.
func fulcioExtensionValues(got certificate.Extensions) map[string]string {
	gv := reflect.ValueOf(got)
	out := map[string]string{}
	for name, index := range certificateExtensionFields {
		if v := gv.FieldByIndex(index).String(); v != "" && name != "issuer" {
			out[name] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// String lists the constraints that are set, for messages.
func (e *FulcioExtensions) String() string { return describeConstraints(e) }
