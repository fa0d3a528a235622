package hub_test

import (
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
)

func TestParseReferenceAcceptsTheHubsForms(t *testing.T) {
	cases := []struct {
		in         string
		ns, name   string
		rev, str   string
		defaultRev string
	}{
		{"org/name", "org", "name", "", "hf://org/name", "main"},
		{"org/name@v1.0", "org", "name", "v1.0", "hf://org/name@v1.0", "v1.0"},
		{"hf://google-bert/bert-base-uncased@86b5e0934494bd15c9632b12f734a8a67f723594", "google-bert", "bert-base-uncased",
			"86b5e0934494bd15c9632b12f734a8a67f723594", "hf://google-bert/bert-base-uncased@86b5e0934494bd15c9632b12f734a8a67f723594", ""},
		{"hf://org/name", "org", "name", "", "hf://org/name", "main"},
		{"hf://org/name:dev", "org", "name", "dev", "hf://org/name@dev", "dev"},
		{"org/name@refs/pr/12", "org", "name", "refs/pr/12", "hf://org/name@refs/pr/12", "refs/pr/12"},
		{"Org_1/Name.v2-x@feature/x", "Org_1", "Name.v2-x", "feature/x", "hf://Org_1/Name.v2-x@feature/x", "feature/x"},
	}
	for _, tc := range cases {
		r, err := hub.ParseReference(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if r.Namespace != tc.ns || r.Name != tc.name || r.Revision != tc.rev || r.String() != tc.str || r.RepoID() != tc.ns+"/"+tc.name {
			t.Errorf("%q parsed as %+v (%s)", tc.in, r, r)
		}
		if tc.defaultRev != "" && r.Rev() != tc.defaultRev {
			t.Errorf("%q: Rev() = %s", tc.in, r.Rev())
		}
		if again, err := hub.ParseReference(r.String()); err != nil || again != r {
			t.Errorf("%q: String() does not round-trip: %+v, %v", tc.in, again, err)
		}
	}
}

func TestParseReferenceRejectsUnsafeOrMalformedInput(t *testing.T) {
	for _, in := range []string{
		"", "name", "org/", "/name", "org/name/extra", "org/name@", "hf://", "org--x/name", "org/na..me",
		"-org/name", "org/name-", "org/name@../../etc", "org/name@/abs", "org/name@a//b", "org/name@a b",
		"org/name@x.lock", "org/name@refs/.hidden", "org/name@a\x00b", "org:x/name", "org/name@a@{1}",
		"https://huggingface.co/org/name", "org/n\u00e9me",
	} {
		if r, err := hub.ParseReference(in); err == nil {
			t.Errorf("%q accepted as %+v", in, r)
		}
	}
}

func TestValidatePathRefusesEscapes(t *testing.T) {
	for _, p := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", `a\b`, "a\x00b", "a/"} {
		if hub.ValidatePath(p) == nil {
			t.Errorf("%q accepted", p)
		}
	}
	for _, p := range []string{"config.json", "a/b/c.bin", ".gitattributes", "dir.with.dots/x", "spaces ok.txt"} {
		if err := hub.ValidatePath(p); err != nil {
			t.Errorf("%q refused: %v", p, err)
		}
	}
}
