// Package jsonwalk steps through the top level of a JSON object that has already been
// validated (json.Valid or a successful json.Unmarshal), by its delimiters alone, without
// decoding it: what the format probes and the statement decoder need to look at a document's
// keys cheaply. On bytes that are not valid JSON its answers mean nothing, but it never reads
// out of bounds.
package jsonwalk

// Keys calls fn with the raw bytes (between the quotes, still escaped) of each key of the
// object at the top of data, in order, and reports whether data is an object at all.
func Keys(data []byte, fn func(raw []byte)) bool {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return false
	}
	for i = skipSpace(data, i+1); i < len(data) && data[i] != '}'; i = skipSpace(data, i) {
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		end := endOfString(data, i)
		fn(data[min(i+1, end):max(i+1, end-1)])
		i = skipSpace(data, end) + 1 // past the colon
		i = skipValue(data, skipSpace(data, i))
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace returns the index of the first byte at or after i that is not JSON space.
func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// endOfString returns the index just past the string whose opening quote is at i.
func endOfString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(data)
}

// skipValue returns the index just past the value that starts at i.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return len(data)
	}
	switch data[i] {
	case '"':
		return endOfString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = endOfString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(data)
	}
	for i < len(data) && !isSpace(data[i]) && data[i] != ',' && data[i] != '}' && data[i] != ']' {
		i++
	}
	return i
}
