package manifest

import (
	"errors"
	"strings"
	"testing"
)

// Each pattern passes a check that only looks for a leading ^ and a trailing $, or has no
// anchors at all; matched as written, each would accept the value beside it.
func TestCompileAnchoredMatchesOnlyTheWholeValue(t *testing.T) {
	for _, c := range []struct {
		expr    string
		accepts []string
		refuses []string
	}{
		// The case: the alternation splits the anchors.
		{`^alice@x\.com|bob@x\.com$`, []string{"alice@x.com", "bob@x.com"}, []string{"mallorybob@x.com", "alice@x.com.evil.net", "bob@x.com\n"}},
		// No anchors written: still the whole value.
		{`alice@x\.com`, []string{"alice@x.com"}, []string{"malice@x.com", "alice@x.com.evil.net"}},
		// (?m) makes a written ^ and $ match at line breaks; the outer anchors stay whole-value.
		{`(?m)^alice@x\.com$`, []string{"alice@x.com"}, []string{"alice@x.com\nmallory@evil.net", "mallory@evil.net\nalice@x.com"}},
		{`(?ms)^alice@x\.com$.*`, []string{"alice@x.com"}, []string{"mallory@evil.net\nalice@x.com"}},
		// \A and \z are whole-text anchors already; they keep working.
		{`\Aalice@x\.com\z`, []string{"alice@x.com"}, []string{"alice@x.com\n", "xalice@x.com"}},
		// A trailing escaped dollar is a literal, not an anchor.
		{`^price\$`, []string{"price$"}, []string{"price$s"}},
		// Alternatives inside a group, and an empty group.
		{`^(alice|bob)@x\.com$`, []string{"bob@x.com"}, []string{"carol@x.com", "bob@x.com.evil"}},
		{`^refs/tags/v()[0-9]+$`, []string{"refs/tags/v1"}, []string{"refs/tags/v1-rc", "refs/heads/main"}},
		// A case-insensitive flag applies inside only.
		{`(?i)ALICE@X\.COM`, []string{"alice@x.com"}, []string{"alice@x.com.evil"}},
	} {
		re, err := CompileAnchored(c.expr)
		if err != nil {
			t.Fatalf("%q: %v", c.expr, err)
		}
		for _, v := range c.accepts {
			if !re.MatchString(v) {
				t.Errorf("%q does not accept %q", c.expr, v)
			}
		}
		for _, v := range c.refuses {
			if re.MatchString(v) {
				t.Errorf("%q accepts %q", c.expr, v)
			}
		}
	}
}

func TestCompileAnchoredRefusesPatternsThatAcceptAnEmptyValue(t *testing.T) {
	for _, expr := range []string{
		`.*`, `^.*$`, `^$`,
		// An empty alternative: matched as written, "^|alice$" accepts everything.
		`^|alice$`, `alice|`, `|alice`, `^(alice|)$`, `(alice)?`, `a*`,
		`(?m)^$`, `\A\z`,
	} {
		if _, err := CompileAnchored(expr); err == nil || !strings.Contains(err.Error(), "matches an empty value") {
			t.Errorf("%q: got %v, want a refusal naming the empty match", expr, err)
		}
	}
}

func TestCompileAnchoredRefusesInvalidPatternsAsWritten(t *testing.T) {
	for _, expr := range []string{`^(alice$`, `a)|(b`, `[z-a]`, `(?x)`} {
		_, err := CompileAnchored(expr)
		if err == nil || !strings.Contains(err.Error(), "is not a valid regular expression") || strings.Contains(err.Error(), "(?:") {
			t.Errorf("%q: got %v, want an invalid-pattern error that quotes the pattern as written", expr, err)
		}
	}
}

func TestConstraintPairsReportEveryProblemByItsName(t *testing.T) {
	ext := FulcioExtensions{
		SourceRepositoryRef: "refs/tags/v1", SourceRepositoryRefRegexp: "refs/tags/.+",
		BuildTriggerRegexp:       "push|",
		GithubWorkflowRepository: "acme/models",
		RunnerEnvironmentRegexp:  "(github-hosted",
	}
	problems := ext.Check()
	var got []string
	for _, p := range problems {
		got = append(got, p.Field)
	}
	want := []string{"runnerEnvironmentRegexp", "sourceRepositoryRef", "buildTriggerRegexp"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("problems at %v, want %v: %v", got, want, problems)
	}
	if !strings.Contains(problems[1].Message, "sourceRepositoryRef and sourceRepositoryRefRegexp are exclusive") {
		t.Fatalf("exclusive pair: %v", problems[1])
	}
	if _, err := NewSigstoreVerifier(SigstoreVerifierOptions{Identity: testIdentity, Issuer: testIssuer, Extensions: ext}); !errors.Is(err, ErrIdentity) ||
		!strings.Contains(err.Error(), "buildTriggerRegexp: ") || !strings.Contains(err.Error(), "runnerEnvironmentRegexp: ") {
		t.Fatalf("the verifier was made, or its error does not list every problem: %v", err)
	}
}

// Every constraint pair names an extension sigstore-go parses, so none is silently unchecked.
func TestFulcioExtensionsNameEveryExtensionSigstoreGoParses(t *testing.T) {
	var e FulcioExtensions
	_, problems := compileConstraints(&e)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	n := 0
	for name := range certificateExtensionFields {
		if name == "issuer" {
			continue // the OIDC issuer is SigstoreVerifierOptions.Issuer
		}
		n++
		if _, ok := fulcioExtensionOIDs[name]; !ok {
			t.Errorf("sigstore-go parses %s, which FulcioExtensions cannot constrain", name)
		}
	}
	if n != len(fulcioExtensionOIDs) {
		t.Errorf("sigstore-go parses %d extensions, FulcioExtensions names %d", n, len(fulcioExtensionOIDs))
	}
	for name := range fulcioExtensionOIDs {
		if _, ok := certificateExtensionFields[name]; !ok {
			t.Errorf("FulcioExtensions names %s, which sigstore-go does not parse", name)
		}
	}
}
