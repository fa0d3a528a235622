package modelverify

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// checkShape walks a decoded JSON value against the Go type it will be decoded into, and reports
// every unknown field (matched case-sensitively) and every value of the wrong kind, with its path.
func checkShape(v any, t reflect.Type, at string, ps *problems) {
	if v == nil {
		return // null leaves the field at its zero value, which check then judges
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		raw, err := json.Marshal(v)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw)
		}
		if err != nil {
			ps.add(at, "%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		checkShape(v, t.Elem(), at, ps)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			ps.add(at, "must be a mapping, found %s", kindOf(v))
			return
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
				ps.add(joinField(at, k), "unknown field%s", suggestField(k, fields))
				continue
			}
			checkShape(m[k], f.Type, joinField(at, k), ps)
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			ps.add(at, "must be a list, found %s", kindOf(v))
			return
		}
		for i, item := range list {
			checkShape(item, t.Elem(), fmt.Sprintf("%s[%d]", at, i), ps)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			ps.add(at, "must be a string, found %s (quote it)", kindOf(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			ps.add(at, "must be true or false, found %s", kindOf(v))
		}
	case reflect.Int, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			ps.add(at, "must be an integer, found %s", kindOf(v))
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			ps.add(at, "must be an integer, found %s", n)
		}
	}
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

func suggestField(key string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf(" (did you mean %q?)", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return " (known fields: " + strings.Join(names, ", ") + ")"
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
