// Package glob holds what the load gate and the admission export must agree on about the
// path.Match globs of a policy, so that the two rank overlapping claims the same way.
package glob

// Literals counts a glob's characters outside wildcards and character classes (a backslash
// counts too): the more literal characters, the more specific the glob, and the more specific
// claim decides.
func Literals(glob string) int {
	n, inClass := 0, false
	for _, c := range glob {
		switch {
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
		case c == '*' || c == '?':
		default:
			n++
		}
	}
	return n
}
