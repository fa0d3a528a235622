package suggest

import (
	"slices"
	"testing"
)

func TestDistanceCountsEachEditOnce(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"publisher", "publisher", 0},
		{"publsher", "publisher", 1},   // deletion
		{"publiisher", "publisher", 1}, // insertion
		{"publisner", "publisher", 1},  // substitution
		{"pbulisher", "publisher", 1},  // adjacent transposition
		{"ca", "abc", 3},               // optimal string alignment, not Damerau: no edit of a transposed pair
		{"modèle", "modele", 1},        // runes, not bytes
	} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestNearestForgivesTyposOnly(t *testing.T) {
	fields := []string{"publishers", "endpoints", "registries", "mode", "models"}
	for _, c := range []struct {
		s    string
		want []string
	}{
		{"publishrs", []string{"publishers"}},
		{"PUBLISHERS", []string{"publishers"}}, // case is ignored
		{"registires", []string{"registries"}},
		{"mdoe", []string{"mode"}},
		{"mod", []string{"mode"}},             // one edit allowed even for a short name
		{"model", []string{"mode", "models"}}, // ties are all returned, in order
		{"endpoint-list", nil},                // too far from anything
		{"x", nil},
	} {
		if got := Nearest(c.s, fields); !slices.Equal(got, c.want) {
			t.Errorf("Nearest(%q) = %q, want %q", c.s, got, c.want)
		}
	}
}
