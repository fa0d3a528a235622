package main

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/modelverify"
)

// FuzzOCIAdmissionNeverAdmitsWhatTheGateRefuses: an oci:// location the generated expressions
// admit, under overlapping claims, is one the load gate's own parser and rules accept.
func FuzzOCIAdmissionNeverAdmitsWhatTheGateRefuses(f *testing.F) {
	digest := "@sha256:" + strings.Repeat("ab", 32)
	for _, s := range []string{"oci://ghcr.io/acme/x:v1", "oci://ghcr.io/acme/secret" + digest, "oci://ghcr.io/acme/prod-research-1:v1",
		"oci://registry.example.com:5000/tie/x-y", "oci://127.0.0.1:5000/a/b" + digest, "oci://ghcr.io/acme/../x", "oci://ghcr.io/shared/m1:v1" + digest} {
		f.Add(s)
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(ociOverlapping), 0o644); err != nil {
		f.Fatal(err)
	}
	p, err := modelverify.LoadPolicy(filepath.Join(dir, "p.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	rules, err := newAdmissionRules(p, []string{"ghcr.io/acme/"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		if strings.HasPrefix(uri, "oci") && rules.admitsModel(uri) && !gateAdmitsOCI(p, uri) {
			t.Fatalf("admission admits %q, the load gate refuses it", uri)
		}
	})
}

// FuzzOCIGlobRegexp: the expression made from a glob never matches a name path.Match refuses,
// and matches every valid repository name path.Match accepts.
func FuzzOCIGlobRegexp(f *testing.F) {
	for _, s := range [][2]string{{"acme/*", "acme/x"}, {"a[^x]b", "a/b"}, {`a\*`, "a*"}, {"[a-c]?", "b1"}, {"*/*", "a/b"}} {
		f.Add(s[0], s[1])
	}
	repo := regexp.MustCompile(`^` + ociRepoRE + `$`)
	f.Fuzz(func(t *testing.T, glob, name string) {
		re, _, err := ociGlobRegexp(glob)
		if err != nil {
			return
		}
		rx, err := regexp.Compile(`^(?:` + re + `)$`)
		if err != nil {
			t.Fatalf("glob %q: expression %q does not compile: %v", glob, re, err)
		}
		pm, _ := path.Match(glob, name)
		got := rx.MatchString(name)
		if got && !pm {
			t.Fatalf("glob %q ~ %q: the expression matches, path.Match does not", glob, name)
		}
		if pm && repo.MatchString(name) && !got {
			t.Fatalf("glob %q ~ %q: path.Match matches a valid repository, the expression does not", glob, name)
		}
	})
}
