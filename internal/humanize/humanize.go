// Package humanize writes sizes for people reading progress lines: the examples' CLI and the
// KServe storage initializer print them the same way.
package humanize

import "fmt"

// Bytes is n in decimal units with one decimal ("1.5 GB", "999 B"), as download tools and
// registries state sizes; from the petabyte on it stays in PB.
func Bytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTP"[exp])
}
