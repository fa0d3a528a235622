package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// --version names the module, its version and the VCS revision from the build info; a build
// without VCS stamping (CI builds with -buildvcs=false) says the revision is unknown.
func TestVersionSaysTheModuleAndRevision(t *testing.T) {
	out, stderr, code := runVerifier(t, t.TempDir(), "--version")
	if code != 0 || stderr != "" || !strings.HasPrefix(out, "verifier github.com/echelongraph/go-modelverify ") ||
		!strings.Contains(out, "revision ") || !strings.Contains(out, "go1.") || strings.Count(out, "\n") != 1 {
		t.Errorf("--version: exit %d, %q, stderr %q", code, out, stderr)
	}
	out, _, code = runVerifier(t, t.TempDir(), "--json", "version")
	var v buildVersion
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v.Module != "github.com/echelongraph/go-modelverify" ||
		v.Version == "" || v.Revision == "" {
		t.Errorf("--json version: exit %d, %q (%v)", code, out, err)
	}
}

func TestVersionWithAndWithoutVCSStamping(t *testing.T) {
	stamped := buildVersion{Module: "m", Version: "v1.2.3", Revision: "abc123", Time: "2026-12-01T17:00:00Z", Modified: true, Go: "go1.26.0"}
	if got, want := stamped.String(), "verifier m v1.2.3, revision abc123 (modified), 2026-12-01T17:00:00Z, go1.26.0"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	bare := buildVersion{Module: "m", Version: "(devel)", Revision: "unknown", Go: "go1.26.0"}
	if got, want := bare.String(), "verifier m (devel), revision unknown (built without VCS stamping), go1.26.0"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// verifier sign key --help lists the key method's flags and not the other methods'.
func TestMethodHelpListsOnlyThatMethodsFlags(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"sign", "key", "--help"}, []string{"usage: verifier sign key MODEL_PATH", "--private-key", "--password", "--signature", "--ignore-paths"},
			[]string{"--identity-token", "--signing-certificate", "\n  sigstore:", "\n  certificate:"}},
		{[]string{"verify", "sigstore", "--help"}, []string{"--identity-provider", "--trust-config", "--signature"},
			[]string{"--public-key", "--certificate-chain", "\n  key:"}},
		{[]string{"verify", "--help"}, []string{"--public-key", "--certificate-chain", "--identity"}, nil},
	} {
		_, stderr, code := runVerifier(t, t.TempDir(), tc.args...)
		if code != 0 {
			t.Errorf("%v: exit %d", tc.args, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v does not list %s:\n%s", tc.args, w, stderr)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(stderr, n) {
				t.Errorf("%v lists %s, another method's:\n%s", tc.args, n, stderr)
			}
		}
		if strings.Contains(stderr, "\n  -") && !strings.Contains(stderr, "\n  --") {
			t.Errorf("%v spells flags -flag, not --flag as the README does", tc.args)
		}
	}
}
