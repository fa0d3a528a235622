package main

import "github.com/echelongraph/go-modelverify/internal/suggest"

// nearest returns the candidate closest to s, if it is close enough to be a typo of it, or "".
// It is the policy loader's "did you mean" rule, so a misspelling is forgiven the same way on
// the command line and in a policy.
func nearest(s string, candidates []string) string {
	if near := suggest.Nearest(s, candidates); len(near) > 0 {
		return near[0]
	}
	return ""
}
