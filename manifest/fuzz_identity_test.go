package manifest

import (
	"regexp"
	"testing"
)

// FuzzCompileAnchored checks, for any pattern a policy could hold, that a compiled identity
// pattern accepts a value only as a whole: exactly as the same pattern between \A and \z,
// whatever flags or anchors it carries inside, and never the empty value.
func FuzzCompileAnchored(f *testing.F) {
	for _, s := range [][2]string{
		{`^alice@x\.com|bob@x\.com$`, "mallorybob@x.com"},
		{`(?m)^alice$`, "alice\nmallory"},
		{`(?s).+`, "a\nb"},
		{`a)|(b`, "a"},
		{`^|x$`, ""},
		{`(?i)refs/tags/v.+`, "REFS/TAGS/V1"},
		{`\Aalice\z|bob`, "bob"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, expr, value string) {
		re, err := CompileAnchored(expr)
		if err != nil {
			return
		}
		if re.MatchString("") {
			t.Fatalf("%q accepts the empty value", expr)
		}
		whole, err := regexp.Compile(`\A(?:` + expr + `)\z`)
		if err != nil {
			t.Fatalf("%q compiles anchored but not between \\A and \\z: %v", expr, err)
		}
		if got, want := re.MatchString(value), whole.MatchString(value); got != want {
			t.Fatalf("%q on %q: %v, but as a whole-text match %v", expr, value, got, want)
		}
	})
}
