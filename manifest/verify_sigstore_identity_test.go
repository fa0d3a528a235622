package manifest

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

const (
	githubIssuer    = "https://token.actions.githubusercontent.com"
	releaseWorkflow = "https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1.2.0"
)

// releaseWorkflowFake is a fake Fulcio that certifies acme/models' release workflow, run on the
// tag v1.2.0 by a push, with the extensions real Fulcio writes for GitHub Actions.
func releaseWorkflowFake(t *testing.T, ref string) *fakeSigstore {
	fake := newFakeSigstore(t)
	fake.uriSAN = "https://github.com/acme/models/.github/workflows/release.yml@" + ref
	fake.extensions = []pkix.Extension{
		fulcioExtension(certificate.OIDGitHubWorkflowTrigger, "push"),
		fulcioExtension(certificate.OIDGitHubWorkflowSHA, "4b1d7e0c0ffee4b1d7e0c0ffee4b1d7e0c0ffee0"),
		fulcioExtension(certificate.OIDGitHubWorkflowName, "release"),
		fulcioExtension(certificate.OIDGitHubWorkflowRepository, "acme/models"),
		fulcioExtension(certificate.OIDGitHubWorkflowRef, ref),
		fulcioExtension(certificate.OIDBuildSignerURI, fake.uriSAN),
		fulcioExtension(certificate.OIDBuildSignerDigest, "4b1d7e0c0ffee4b1d7e0c0ffee4b1d7e0c0ffee0"),
		fulcioExtension(certificate.OIDRunnerEnvironment, "github-hosted"),
		fulcioExtension(certificate.OIDSourceRepositoryURI, "https://github.com/acme/models"),
		fulcioExtension(certificate.OIDSourceRepositoryDigest, "4b1d7e0c0ffee4b1d7e0c0ffee4b1d7e0c0ffee0"),
		fulcioExtension(certificate.OIDSourceRepositoryRef, ref),
		fulcioExtension(certificate.OIDSourceRepositoryIdentifier, "123456"),
		fulcioExtension(certificate.OIDSourceRepositoryOwnerURI, "https://github.com/acme"),
		fulcioExtension(certificate.OIDSourceRepositoryOwnerIdentifier, "7890"),
		fulcioExtension(certificate.OIDBuildConfigURI, fake.uriSAN),
		fulcioExtension(certificate.OIDBuildTrigger, "push"),
		fulcioExtension(certificate.OIDRunInvocationURI, "https://github.com/acme/models/actions/runs/42/attempts/1"),
		fulcioExtension(certificate.OIDSourceRepositoryVisibilityAtSigning, "public"),
	}
	return fake
}

func workflowSignature(t *testing.T, ref string) (sig []byte, trustRoot string) {
	t.Helper()
	fake := releaseWorkflowFake(t, ref)
	s, err := NewSigstoreSigner(SigstoreSignerOptions{IDToken: idToken("ci@acme.example", githubIssuer), FulcioURL: "https://fulcio.test", RekorURL: "https://rekor.test", Transport: fake})
	must(t, err)
	m, _ := sampleStatement(t)
	sig, err = Sign(context.Background(), m, s)
	must(t, err)
	_, _, trustRoot = keylessFixture(t, fake)
	return sig, trustRoot
}

// A policy can say "signed by this repository's release workflow on a tag", and the evidence
// says which repository, ref and commit signed.
func TestKeylessSignatureMatchesTheReleaseWorkflowOnATag(t *testing.T) {
	sig, trustRoot := workflowSignature(t, "refs/tags/v1.2.0")
	v, err := NewSigstoreVerifier(SigstoreVerifierOptions{
		IdentityRegexp: `https://github\.com/acme/models/\.github/workflows/release\.yml@refs/tags/v[0-9]+\.[0-9]+\.[0-9]+`,
		Issuer:         githubIssuer,
		TrustRootPath:  trustRoot,
		Extensions: FulcioExtensions{
			SourceRepositoryURI:                 "https://github.com/acme/models",
			SourceRepositoryRefRegexp:           `refs/tags/v.+`,
			BuildTrigger:                        "push",
			RunnerEnvironment:                   "github-hosted",
			GithubWorkflowRepository:            "acme/models",
			GithubWorkflowTrigger:               "push",
			GithubWorkflowRefRegexp:             `refs/tags/.+`,
			GithubWorkflowSHA:                   "4b1d7e0c0ffee4b1d7e0c0ffee4b1d7e0c0ffee0",
			BuildSignerURIRegexp:                `https://github\.com/acme/models/\.github/workflows/release\.yml@.+`,
			SourceRepositoryIdentifier:          "123456",
			SourceRepositoryVisibilityAtSigning: "public",
		},
	})
	must(t, err)
	res, err := Verify(context.Background(), sig, v)
	must(t, err)
	if res.Signer.Identity != releaseWorkflow || res.Signer.OIDCIssuer != githubIssuer {
		t.Fatalf("signer %+v", res.Signer)
	}
	for name, want := range map[string]string{
		"sourceRepositoryURI": "https://github.com/acme/models", "sourceRepositoryRef": "refs/tags/v1.2.0",
		"githubWorkflowRepository": "acme/models", "buildTrigger": "push", "runInvocationURI": "https://github.com/acme/models/actions/runs/42/attempts/1",
	} {
		if got := res.Signer.Extensions[name]; got != want {
			t.Errorf("evidence %s = %q, want %q", name, got, want)
		}
	}
	if _, ok := res.Signer.Extensions["issuer"]; ok || len(res.Signer.Extensions) != 18 {
		t.Errorf("evidence extensions %v: want the 18 the certificate carries besides the issuer", res.Signer.Extensions)
	}
}

// The same workflow run on a branch is refused, and the refusal names the extension, its OID,
// what was wanted and what was found.
func TestKeylessSignatureRefusesTheWorkflowOnABranchNamingTheExtension(t *testing.T) {
	sig, trustRoot := workflowSignature(t, "refs/heads/main")
	// The signer a refusal names as found is read as the verifier read it.
	info, err := InspectBundle(sig)
	must(t, err)
	if info.Identity != "https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main" || info.OIDCIssuer != githubIssuer || info.Extensions["sourceRepositoryRef"] != "refs/heads/main" {
		t.Errorf("inspected %+v", info)
	}
	for _, c := range []struct {
		ext  FulcioExtensions
		want string
	}{
		{FulcioExtensions{SourceRepositoryRefRegexp: `refs/tags/v.+`},
			`certificate extension sourceRepositoryRef (OID 1.3.6.1.4.1.57264.1.14): want a whole match for "refs/tags/v.+", found "refs/heads/main"`},
		{FulcioExtensions{GithubWorkflowRef: "refs/tags/v1.2.0"},
			`certificate extension githubWorkflowRef (OID 1.3.6.1.4.1.57264.1.6): want "refs/tags/v1.2.0", found "refs/heads/main"`},
		// A prefix match would accept "refs/heads/main" here: the pattern covers the whole value.
		{FulcioExtensions{SourceRepositoryRefRegexp: `refs/tags/v1|refs/heads/ma`},
			`want a whole match for "refs/tags/v1|refs/heads/ma", found "refs/heads/main"`},
		{FulcioExtensions{GithubWorkflowRepository: "acme/other"},
			`githubWorkflowRepository (OID 1.3.6.1.4.1.57264.1.5): want "acme/other", found "acme/models"`},
		{FulcioExtensions{SourceRepositoryURI: "https://github.com/acme/models", BuildTrigger: "release"},
			`buildTrigger (OID 1.3.6.1.4.1.57264.1.20): want "release", found "push"`},
		{FulcioExtensions{RunnerEnvironment: "self-hosted"},
			`runnerEnvironment (OID 1.3.6.1.4.1.57264.1.11): want "self-hosted", found "github-hosted"`},
	} {
		v, err := NewSigstoreVerifier(SigstoreVerifierOptions{IdentityRegexp: `https://github\.com/acme/models/.+`, Issuer: githubIssuer, TrustRootPath: trustRoot, Extensions: c.ext})
		must(t, err)
		_, err = Verify(context.Background(), sig, v)
		if !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v:\n got %v\nwant ErrIdentity with %s", c.ext, err, c.want)
		}
	}
}

// A certificate without the extension (an e-mail signer's) fails a constraint on it.
func TestKeylessSignatureRefusesACertificateWithoutTheExtension(t *testing.T) {
	_, sig, trustRoot := keylessFixture(t, newFakeSigstore(t))
	v, err := NewSigstoreVerifier(SigstoreVerifierOptions{Identity: testIdentity, Issuer: testIssuer, TrustRootPath: trustRoot,
		Extensions: FulcioExtensions{SourceRepositoryURI: "https://github.com/acme/models"}})
	must(t, err)
	_, err = Verify(context.Background(), sig, v)
	if want := `sourceRepositoryURI (OID 1.3.6.1.4.1.57264.1.12): want "https://github.com/acme/models", found none`; !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want ErrIdentity with %s", err, want)
	}
}

// The case, end to end: "^alice...|...$" matched as written accepts a longer identity.
func TestKeylessIdentityRegexpIsAnchoredByMeaning(t *testing.T) {
	_, sig, trustRoot := keylessFixture(t, newFakeSigstore(t)) // signed by release@models.example
	for _, o := range []SigstoreVerifierOptions{
		{IdentityRegexp: `^alice@models\.example|models\.example$`, Issuer: testIssuer},
		{IdentityRegexp: `(?m)^alice@models\.example$|release`, Issuer: testIssuer},
		{IdentityRegexp: `release@models`, Issuer: testIssuer},
		{Identity: testIdentity, IssuerRegexp: `^https://accounts\.google\.com|\.models\.example$`},
	} {
		o.TrustRootPath = trustRoot
		v, err := NewSigstoreVerifier(o)
		must(t, err)
		_, err = Verify(context.Background(), sig, v)
		if !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), "want a whole match for") {
			t.Errorf("%+v: got %v, want ErrIdentity naming the whole-value match", o, err)
		}
	}
	v, err := NewSigstoreVerifier(SigstoreVerifierOptions{IdentityRegexp: `alice@models\.example|release@models\.example`, Issuer: testIssuer, TrustRootPath: trustRoot})
	must(t, err)
	if _, err := Verify(context.Background(), sig, v); err != nil {
		t.Fatalf("an unanchored alternation of whole identities: %v", err)
	}
}

func TestSigstoreVerifierRefusesUnusableIdentityPatterns(t *testing.T) {
	for _, c := range []struct {
		o    SigstoreVerifierOptions
		want string
	}{
		{SigstoreVerifierOptions{IdentityRegexp: `^|alice$`, Issuer: testIssuer}, "identityRegexp: \"^|alice$\" matches an empty value"},
		{SigstoreVerifierOptions{Identity: testIdentity, IssuerRegexp: `(https`}, "issuerRegexp: \"(https\" is not a valid regular expression"},
		{SigstoreVerifierOptions{Identity: testIdentity, IdentityRegexp: ".+", Issuer: testIssuer}, "identity and identityRegexp are exclusive"},
		{SigstoreVerifierOptions{Issuer: testIssuer}, "set one of Identity and IdentityRegexp"},
		{SigstoreVerifierOptions{Identity: testIdentity, Issuer: testIssuer, Extensions: FulcioExtensions{SourceRepositoryRefRegexp: "refs/tags/.*|"}}, "sourceRepositoryRefRegexp: "},
	} {
		if _, err := NewSigstoreVerifier(c.o); !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want ErrIdentity with %q", c.o, err, c.want)
		}
	}
}
