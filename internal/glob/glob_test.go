package glob

import "testing"

func TestLiteralsCountsWhatIsNotAWildcardOrAClass(t *testing.T) {
	for _, c := range []struct {
		glob string
		want int
	}{
		{"", 0},
		{"*", 0},
		{"acme", 4},
		{"Acme-*", 5},
		{"acme/models/*", 12},
		{"a?c", 2},
		{"[abc]def", 3},
		{"x[!a-z]*y", 2},
		{`a\*`, 2}, // the backslash counts; the star after it, read as a wildcard, does not
	} {
		if got := Literals(c.glob); got != c.want {
			t.Errorf("Literals(%q) = %d, want %d", c.glob, got, c.want)
		}
	}
}
