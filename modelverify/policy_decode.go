package modelverify

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/echelongraph/go-modelverify/internal/suggest"
)

// checkShape walks a decoded JSON value against the Go type it will be decoded into, and reports
// every unknown field (matched case-sensitively) and every value of the wrong kind, with its path.
// It removes what it reports from the value (an unknown field, a value of the wrong kind becomes
// null), so that the rest can still be decoded and judged in the same round: a typo must not hide
// the document's other problems until the next run. It returns false when v itself is at fault.
func checkShape(v any, t reflect.Type, at string, ps *problems) bool {
	if v == nil {
		return true // null leaves the field at its zero value, which check then judges
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		raw, err := json.Marshal(v)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw)
		}
		if err != nil {
			ps.add(at, "%v", err)
			return false
		}
		return true
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkShape(v, t.Elem(), at, ps)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			ps.add(at, "must be a mapping, found %s", kindOf(v))
			return false
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fields[k]
			if !ok {
				hint, meant := suggestField(k, fields)
				ps.add(joinField(at, k), "unknown field%s", hint)
				for _, name := range meant {
					(*ps)[len(*ps)-1].meant = append((*ps)[len(*ps)-1].meant, joinField(at, name))
				}
				delete(m, k)
				continue
			}
			if !checkShape(m[k], f.Type, joinField(at, k), ps) {
				m[k] = nil
			}
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			ps.add(at, "must be a list, found %s", kindOf(v))
			return false
		}
		for i, item := range list {
			if !checkShape(item, t.Elem(), fmt.Sprintf("%s[%d]", at, i), ps) {
				list[i] = nil
			}
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			ps.add(at, "must be a string, found %s (quote it)", kindOf(v))
			return false
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			ps.add(at, "must be true or false, found %s", kindOf(v))
			return false
		}
	case reflect.Int, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			ps.add(at, "must be an integer, found %s", kindOf(v))
			return false
		}
		if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			ps.add(at, "must be an integer, found %s", n)
			return false
		}
	}
	return true
}

// shadowed reports whether a problem the semantic checks found at field follows from a shape
// problem already reported: the field, or a part of it, was removed as malformed, or it is the
// field a misspelt one was meant to be ("namespace" for "namespaces" leaves "namespaces" unset).
func shadowed(field string, shape problems) bool {
	for _, p := range shape {
		for _, at := range append([]string{p.Field}, p.meant...) {
			if field == at || strings.HasPrefix(field, at+".") || strings.HasPrefix(field, at+"[") {
				return true
			}
		}
	}
	return false
}

func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f
	}
	return out
}

// suggestField says, and returns, which known field a misspelt key was probably meant to be: one spelt the
// same but for capitals, or the nearest by edit distance (at most one edit in four characters,
// and at least one), or else lists the known fields.
func suggestField(key string, fields map[string]reflect.StructField) (hint string, meant []string) {
	names := make([]string, 0, len(fields))
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf(" (did you mean %q?)", name), []string{name}
		}
		names = append(names, name)
	}
	sort.Strings(names)
	if near := suggest.Nearest(key, names); len(near) > 0 {
		quoted := make([]string, len(near))
		for i, n := range near {
			quoted[i] = strconv.Quote(n)
		}
		return " (did you mean " + strings.Join(quoted, " or ") + "?)", near
	}
	return " (known fields: " + strings.Join(names, ", ") + ")", nil
}

func joinField(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

func kindOf(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return "the number " + string(x)
	}
	return fmt.Sprintf("%T", v)
}
