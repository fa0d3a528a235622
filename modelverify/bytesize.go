package modelverify

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
)

// ByteSize is a size in bytes. In a policy it is a plain integer or a string with a unit:
// "500MB" (decimal: kB/KB, MB, GB, TB, PB) or "10GiB" (binary: KiB, MiB, GiB, TiB, PiB), with an
// optional space and decimal fraction ("1.5GiB") as long as the result is a whole number of bytes.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	size   int64
}{
	{"PiB", 1 << 50}, {"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"PB", 1e15}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"KB", 1e3}, {"B", 1},
}

var byteSizePattern = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))? ?([A-Za-z]*)$`)

// ParseByteSize parses "10GiB", "500 MB", "1.5GiB" or "1024".
func ParseByteSize(s string) (ByteSize, error) {
	m := byteSizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("size %q: want a whole number with an optional unit, such as 10GiB or 500MB", s)
	}
	unit := int64(1)
	if m[3] != "" {
		found := false
		for _, u := range byteUnits {
			if u.suffix == m[3] {
				unit, found = u.size, true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("size %q: unknown unit %q; use B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB", s, m[3])
		}
	}
	// Integer arithmetic with overflow checks: a float would round a byte limit silently.
	whole, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || whole > (1<<63-1)/unit {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	total := whole * unit
	if frac := m[2]; frac != "" {
		if len(frac) > 18 {
			return 0, fmt.Errorf("size %q has too many decimal places", s)
		}
		num, _ := strconv.ParseInt(frac, 10, 64)
		den := int64(1)
		for range len(frac) {
			den *= 10
		}
		// num/den*unit must be a whole number of bytes: unit*num divisible by den. unit is at most
		// 2^50 and num below 10^18, so compute in two steps to stay within int64.
		g := gcd(num, den)
		num, den = num/g, den/g
		if unit%den != 0 {
			return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
		}
		part := unit / den
		if num > 0 && part > (1<<63-1-total)/num {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		total += part * num
	}
	return ByteSize(total), nil
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	if a == 0 {
		return 1
	}
	return a
}

// String is the size in the unit that divides it exactly with the smallest count ("10GiB",
// "50GB"), or the bare number of bytes.
func (b ByteSize) String() string {
	if b <= 0 {
		return strconv.FormatInt(int64(b), 10)
	}
	best, bestUnit := int64(b), ""
	for _, u := range byteUnits {
		if u.suffix == "KB" || u.suffix == "B" {
			continue
		}
		if int64(b)%u.size == 0 && int64(b)/u.size < best {
			best, bestUnit = int64(b)/u.size, u.suffix
		}
	}
	return strconv.FormatInt(best, 10) + bestUnit
}

// MarshalJSON writes the size as String does: a string with a unit, or a plain integer.
func (b ByteSize) MarshalJSON() ([]byte, error) {
	s := b.String()
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return []byte(s), nil
	}
	return json.Marshal(s)
}

// UnmarshalJSON accepts a non-negative integer or a size string; null leaves the size unset.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		v, err := ParseByteSize(s)
		if err != nil {
			return err
		}
		*b = v
		return nil
	}
	n, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil {
		return fmt.Errorf("size %s: want a whole number of bytes or a string such as \"10GiB\"", data)
	}
	if n < 0 {
		return fmt.Errorf("size %d must not be negative", n)
	}
	*b = ByteSize(n)
	return nil
}
