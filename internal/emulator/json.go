package emulator

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/stripeline/stripeline/internal/catalog"
)

// field is one key of an object being rendered; fields keep their order.
type field struct {
	k string
	v any
}

// fields is an ordered set of object keys: the overrides applied to a
// template, or a small nested object.
type fields []field

func (f fields) get(k string) (any, bool) {
	for i := range f {
		if f[i].k == k {
			return f[i].v, true
		}
	}
	return nil, false
}

// raw is JSON already encoded.
type raw = json.RawMessage

// sub renders a nested object from a template with overrides.
type sub struct {
	t *tmpl
	f fields
}

// tmpl is the default rendering of one object schema: every key with its
// default value pre-encoded, so an object costs only its overrides.
type tmpl struct {
	keys []string
	defs [][]byte
}

// render appends the object: template keys in order, each from the
// overrides when set, then overrides the template lacks.
func (t *tmpl) render(dst []byte, over fields) []byte {
	dst = append(dst, '{')
	used := 0
	first := true
	for i, k := range t.keys {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, k)
		dst = append(dst, ':')
		if v, ok := over.get(k); ok {
			used++
			dst = appendValue(dst, v)
		} else {
			dst = append(dst, t.defs[i]...)
		}
	}
	if used < len(over) {
		for _, f := range over {
			if t.has(f.k) {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendString(dst, f.k)
			dst = append(dst, ':')
			dst = appendValue(dst, f.v)
		}
	}
	return append(dst, '}')
}

func (t *tmpl) has(k string) bool {
	for _, x := range t.keys {
		if x == k {
			return true
		}
	}
	return false
}

// appendValue writes v as JSON: the generator's own types (fields, sub,
// raw) as they are, others through encoding/json.
func appendValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendString(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.AppendInt(dst, int64(x), 10)
		}
		return strconv.AppendFloat(dst, x, 'f', -1, 64)
	case bool:
		return strconv.AppendBool(dst, x)
	case raw:
		if len(x) == 0 {
			return append(dst, "null"...)
		}
		return append(dst, x...)
	case fields:
		dst = append(dst, '{')
		for i, f := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, f.k)
			dst = append(dst, ':')
			dst = appendValue(dst, f.v)
		}
		return append(dst, '}')
	case sub:
		return x.t.render(dst, x.f)
	case map[string]string:
		return appendStringMap(dst, x)
	case []string:
		return appendArray(dst, x, appendString)
	case []any:
		return appendArray(dst, x, appendValue)
	case []raw:
		return appendArray(dst, x, func(dst []byte, r raw) []byte { return append(dst, r...) })
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return append(dst, "null"...)
		}
		return append(dst, b...)
	}
}

// appendStringMap writes a map of strings with its keys sorted.
func appendStringMap(dst []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, m[k])
	}
	return append(dst, '}')
}

// appendArray writes a JSON array of s, each element with add.
func appendArray[T any](dst []byte, s []T, add func([]byte, T) []byte) []byte {
	dst = append(dst, '[')
	for i, x := range s {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = add(dst, x)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// templates builds and caches object templates from the spec.
type templates struct {
	sp *spec
	mu sync.Mutex
	m  map[string]*tmpl
}

// component returns the template of a component schema ("customer").
func (ts *templates) component(name string) *tmpl {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t, ok := ts.m[name]; ok {
		return t
	}
	t := ts.build(ts.sp.component(name), map[string]bool{name: true})
	ts.m[name] = t
	return t
}

// nested returns the template of the object at a dotted property path
// under a component ("charge.billing_details", "invoice.lines.data[]").
func (ts *templates) nested(name string, path ...string) *tmpl {
	key := name
	for _, p := range path {
		key += "." + p
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t, ok := ts.m[key]; ok {
		return t
	}
	s := ts.sp.component(name)
	for _, p := range path {
		s = ts.objectOf(s)
		if s == nil {
			break
		}
		if p == "[]" {
			s = s.Items
		} else {
			s = s.Properties[p]
		}
	}
	t := ts.build(ts.objectOf(s), map[string]bool{})
	ts.m[key] = t
	return t
}

// objectOf resolves references and picks the object variant of a union.
func (ts *templates) objectOf(s *catalog.Schema) *catalog.Schema {
	s = ts.sp.resolve(s)
	if s == nil {
		return nil
	}
	if len(s.AnyOf) > 0 {
		for _, v := range s.AnyOf {
			v = ts.sp.resolve(v)
			if v != nil && (v.Type == "object" || len(v.Properties) > 0 || v.Type == "array") {
				return v
			}
		}
		return ts.sp.resolve(s.AnyOf[0])
	}
	return s
}

func (ts *templates) build(s *catalog.Schema, seen map[string]bool) *tmpl {
	t := &tmpl{}
	if s == nil {
		return t
	}
	req := map[string]bool{}
	for _, r := range s.Required {
		req[r] = true
	}
	var keys []string
	for k := range s.Properties {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := keyRank(keys[i]), keyRank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		p := s.Properties[k]
		v, ok := ts.defaultValue(p, req[k], seen, 0)
		if !ok {
			continue
		}
		t.keys = append(t.keys, k)
		t.defs = append(t.defs, appendValue(nil, v))
	}
	return t
}

func keyRank(k string) int {
	switch k {
	case "id":
		return 0
	case "object":
		return 1
	}
	return 2
}

// defaultValue is the value a property takes when the generator does not
// set it; ok is false when the property is left out (optional objects).
func (ts *templates) defaultValue(p *catalog.Schema, required bool, seen map[string]bool, depth int) (any, bool) {
	if p == nil {
		return nil, required
	}
	if p.Nullable {
		return nil, true
	}
	ref := p.Ref
	r := ts.sp.resolve(p)
	if r == nil {
		return nil, false
	}
	if r.Nullable {
		return nil, true
	}
	if len(r.AnyOf) > 0 {
		return ts.unionDefault(r, required, seen, depth)
	}
	switch r.Type {
	case "string":
		if len(r.Enum) > 0 {
			return r.Enum[0], true
		}
		return "", true
	case "integer", "number":
		return 0, true
	case "boolean":
		if len(r.Enum) > 0 {
			return r.Enum[0] == "true", true
		}
		return false, true
	case "array":
		return []any{}, true
	}
	// An object: maps (metadata) are always present, other objects only
	// when required.
	if len(r.Properties) == 0 {
		return fields{}, true
	}
	if !required {
		return nil, false
	}
	if ref != "" {
		if seen[ref] || depth > 6 {
			return fields{}, true
		}
		seen[ref] = true
		defer delete(seen, ref)
	}
	return ts.objectDefault(r, seen, depth), true
}

// unionDefault is defaultValue for a union: null when a variant is
// nullable, an empty id for an expandable reference, else the first
// variant's default.
func (ts *templates) unionDefault(r *catalog.Schema, required bool, seen map[string]bool, depth int) (any, bool) {
	for _, v := range r.AnyOf {
		if v.Nullable || ts.sp.resolve(v) != nil && ts.sp.resolve(v).Nullable {
			return nil, true
		}
	}
	first := ts.sp.resolve(r.AnyOf[0])
	if first != nil && first.Type == "string" && len(r.AnyOf) > 1 {
		// An expandable reference: an id string when set.
		if !required {
			return nil, false
		}
		return "", true
	}
	if !required {
		return nil, false
	}
	return ts.defaultValue(r.AnyOf[0], true, seen, depth+1)
}

// objectDefault is a required object's default: its properties' defaults,
// in Stripe's key order.
func (ts *templates) objectDefault(r *catalog.Schema, seen map[string]bool, depth int) fields {
	req := map[string]bool{}
	for _, k := range r.Required {
		req[k] = true
	}
	var keys []string
	for k := range r.Properties {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := keyRank(keys[i]), keyRank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	out := fields{}
	for _, k := range keys {
		v, ok := ts.defaultValue(r.Properties[k], req[k], seen, depth+1)
		if ok {
			out = append(out, field{k, v})
		}
	}
	return out
}

// set replaces or appends a key.
func (f *fields) set(k string, v any) {
	for i := range *f {
		if (*f)[i].k == k {
			(*f)[i].v = v
			return
		}
	}
	*f = append(*f, field{k, v})
}
