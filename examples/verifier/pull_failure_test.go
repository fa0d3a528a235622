package main

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/modelverify"
)

// A registry that cannot be reached is not the Hub: its failure is not given the Hub's hint
// (HF_ENDPOINT), which would send the operator the wrong way; a Hub's still is.
func TestPullFailureHintsTheHubOnlyForHubReferences(t *testing.T) {
	dns := &net.DNSError{Err: "no such host", Name: "registry.invalid", IsNotFound: true}
	getenv := func(string) string { return "" }
	for _, tc := range []struct {
		ref      string
		wantHint bool
	}{
		{"oci://registry.invalid/acme/tiny:v1", false},
		{"hf://acme/tiny@main", true},
	} {
		err := &modelverify.Refusal{Ref: tc.ref, Problems: []modelverify.Problem{{Reason: modelverify.ErrHub}}, Err: dns}
		got := pullFailure(tc.ref, err, &hubFlags{}, getenv)
		if hint := strings.Contains(got.Error(), "could not reach the Hub"); hint != tc.wantHint {
			t.Errorf("%s: Hub hint %v, want %v: %v", tc.ref, hint, tc.wantHint, got)
		}
		var r *modelverify.Refusal
		if !errors.As(got, &r) || !errors.Is(got, dns) {
			t.Errorf("%s: the refusal and its cause are lost: %v", tc.ref, got)
		}
	}
}

// A tag the registry does not have is a refusal (exit 1), not a temporary failure: the same
// command would be refused again (README, "Models in OCI registries").
func TestPullOCIMissingTagExitsRefused(t *testing.T) {
	f := newOCIFixture(t)
	_, stderr, code := runVerifier(t, t.TempDir(), "pull", f.ts.Ref("acme/tiny", "v9"), "--policy", f.policy, "--cache-dir", f.cacheDir)
	if code != 1 || !strings.Contains(stderr, "verifier: refused") || strings.Contains(stderr, "could not reach the Hub") {
		t.Fatalf("missing tag: exit %d: %s", code, stderr)
	}
}
