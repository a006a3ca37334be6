package twoway

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
)

// goValue turns a replica value (as dest.Querier returns it: nil, string,
// int64, float64, bool; JSON as its text) into the Go value of its column
// type, the way the engine's conversion holds it, so both sides of a
// comparison marshal alike.
func goValue(typ catalog.Type, v any) any {
	if v == nil {
		return nil
	}
	switch typ {
	case catalog.TypeBoolean:
		switch x := v.(type) {
		case bool:
			return x
		case int64:
			return x != 0
		case float64:
			return x != 0
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err == nil {
				return b
			}
		}
	case catalog.TypeInteger:
		switch x := v.(type) {
		case int64:
			return x
		case float64:
			return int64(x)
		case bool:
			if x {
				return int64(1)
			}
			return int64(0)
		case string:
			if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				return n
			}
		}
	case catalog.TypeNumber:
		switch x := v.(type) {
		case float64:
			return x
		case int64:
			return float64(x)
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				return f
			}
		}
	case catalog.TypeJSON:
		switch x := v.(type) {
		case string:
			var out any
			if err := json.Unmarshal([]byte(x), &out); err == nil {
				return out
			}
		case json.RawMessage:
			var out any
			if err := json.Unmarshal(x, &out); err == nil {
				return out
			}
		}
	case catalog.TypeString:
		if s, ok := v.(string); ok {
			return s
		}
		return fmt.Sprint(v)
	}
	return v
}

// canon is a value's canonical JSON text (object keys sorted), what two
// sides are compared by.
func canon(v any) string {
	if raw, ok := v.(json.RawMessage); ok {
		var x any
		if json.Unmarshal(raw, &x) == nil {
			v = x
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// metadataMap reads a metadata value as Stripe holds it: string values.
// Anything else than an object is no metadata.
func metadataMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, x := range m {
		switch s := x.(type) {
		case string:
			out[k] = s
		case nil:
		default:
			b, _ := json.Marshal(s)
			out[k] = string(b)
		}
	}
	return out
}

// item is one changed field of a row, or one changed metadata key.
type item struct {
	Field string // "email", or "metadata[plan]"
	Base  string // the top-level field
	Key   string // the metadata key, for metadata items
	DB    any    // the database's value ("" for a removed metadata key)
	Rem   any    // the remembered value
}

// diff lists the items of a field whose database value differs from the
// remembered one; metadata is compared key by key, so edits of different
// keys on both sides are no conflict.
func diff(field string, db, rem any) []item {
	if field == "metadata" {
		dm, rm := metadataMap(db), metadataMap(rem)
		var keys []string
		for k := range dm {
			keys = append(keys, k)
		}
		for k := range rm {
			if _, ok := dm[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var out []item
		for _, k := range keys {
			d, inDB := dm[k]
			r, inRem := rm[k]
			if inDB == inRem && d == r {
				continue
			}
			var dv, rv any = d, r
			if !inDB {
				dv = nil
			}
			if !inRem {
				rv = nil
			}
			out = append(out, item{Field: "metadata[" + k + "]", Base: field, Key: k, DB: dv, Rem: rv})
		}
		return out
	}
	if canon(db) == canon(rem) {
		return nil
	}
	return []item{{Field: field, Base: field, DB: db, Rem: rem}}
}

// stripeValue is the value of an item in Stripe's object values.
func (it item) stripeValue(values map[string]any) any {
	v := values[it.Base]
	if it.Key == "" {
		return v
	}
	s, ok := metadataMap(v)[it.Key]
	if !ok {
		return nil
	}
	return s
}

// body is the update request's parameters for items, as a JSON object:
// a field's new value (null unsets it), a metadata key's new value ("" to
// remove it).
func body(items []item) map[string]any {
	out := map[string]any{}
	for _, it := range items {
		if it.Key == "" {
			out[it.Base] = it.DB
			continue
		}
		md, _ := out[it.Base].(map[string]any)
		if md == nil {
			md = map[string]any{}
			out[it.Base] = md
		}
		if it.DB == nil {
			md[it.Key] = ""
		} else {
			md[it.Key] = it.DB
		}
	}
	return out
}
