// Package suggest finds what a misspelt name was probably meant to be, for the "did you mean"
// hints of the policy loader and the command line, so that a typo is forgiven the same way in
// both places.
package suggest

import "strings"

// Nearest returns the candidates closest to s by edit distance, ignoring case, if they are close
// enough to be a typo of it: at most one edit in four characters, and at least one. Ties are all
// returned, in the candidates' order; nil means none is close.
func Nearest(s string, candidates []string) []string {
	limit := max(1, len(s)/4)
	best, out := limit+1, []string(nil)
	ls := strings.ToLower(s)
	for _, c := range candidates {
		if abs(len(s)-len(c)) > limit {
			continue // the distance is at least the difference in length, and a name may be long
		}
		d := Distance(ls, strings.ToLower(c))
		switch {
		case d < best:
			best, out = d, []string{c}
		case d == best:
			out = append(out, c)
		}
	}
	return out
}

// Distance is the optimal string alignment distance between a and b: insertions, deletions,
// substitutions and transpositions of adjacent characters each count one.
func Distance(a, b string) int {
	x, y := []rune(a), []rune(b)
	prev2, prev, cur := make([]int, len(y)+1), make([]int, len(y)+1), make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(y)]
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
