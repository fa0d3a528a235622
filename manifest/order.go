package manifest

import (
	"cmp"
	"slices"
	"strings"
)

// SortResources puts resources in the order Python model_signing lists them when it signs:
// by path as a list of components (so "a/b" sorts before "a-c", unlike a plain string sort),
// then by numeric shard start and end (so "f:8:16" comes before "f:16:23"). Verifiers must not
// rely on this order; it exists so that a signature made here is byte-for-byte what Python makes.
func SortResources(rs []Resource) {
	slices.SortStableFunc(rs, compareResources)
}

func compareResources(a, b Resource) int {
	pa, sa, ea, _ := splitForOrder(a)
	pb, sb, eb, _ := splitForOrder(b)
	if c := comparePaths(pa, pb); c != 0 {
		return c
	}
	if c := cmp.Compare(sa, sb); c != 0 {
		return c
	}
	return cmp.Compare(ea, eb)
}

func splitForOrder(r Resource) (string, int64, int64, bool) {
	if p, s, e, ok := r.Shard(); ok {
		return p, s, e, true
	}
	return r.Name, 0, 0, false
}

// comparePaths compares two "/"-separated paths component by component, as Python's
// PurePosixPath does. Go compares strings by bytes, which for UTF-8 is code point order, as
// Python compares str.
func comparePaths(a, b string) int {
	for {
		ca, resta, moreA := strings.Cut(a, "/")
		cb, restb, moreB := strings.Cut(b, "/")
		if c := strings.Compare(ca, cb); c != 0 {
			return c
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1
		case !moreB:
			return 1
		}
		a, b = resta, restb
	}
}
