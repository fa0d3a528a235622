package main

import "strings"

// nearest returns the candidate closest to s by edit distance, ignoring case, if it is close
// enough to be a typo of it (at most one edit in four characters, and at least one), or "".
// It follows the policy loader's "did you mean" rule, so a misspelling is forgiven the same
// way on the command line and in a policy.
func nearest(s string, candidates []string) string {
	best, out := max(1, len(s)/4)+1, ""
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < best {
			best, out = d, c
		}
	}
	return out
}

// editDistance is the optimal string alignment distance between a and b: insertions, deletions,
// substitutions and transpositions of adjacent characters each count one.
func editDistance(a, b string) int {
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
