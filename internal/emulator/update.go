package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/stripeline/stripeline/internal/catalog"
)

// updateRecord applies decoded parameters to an object and emits the
// update event with previous_attributes. It returns the new data.
func (e *Emulator) updateRecord(a *account, t *table, r *record, params map[string]any) ([]byte, error) {
	m, err := decodeObject(r.data)
	if err != nil {
		return nil, err
	}
	prev := map[string]any{}
	schema := e.sp.component(t.def.object)
	for k, v := range params {
		old, had := m[k]
		if k == "metadata" {
			md, _ := old.(map[string]any)
			if md == nil {
				md = map[string]any{}
			}
			pmd := map[string]any{}
			switch x := v.(type) {
			case string: // metadata= clears
				for mk, mv := range md {
					pmd[mk] = mv
				}
				md = map[string]any{}
			case map[string]any:
				for mk, mv := range x {
					s := fmt.Sprint(mv)
					oldV, exists := md[mk]
					if s == "" {
						if exists {
							pmd[mk] = oldV
							delete(md, mk)
						}
						continue
					}
					if exists && oldV == s {
						continue
					}
					if exists {
						pmd[mk] = oldV
					} else {
						pmd[mk] = nil
					}
					md[mk] = s
				}
			}
			m[k] = md
			if len(pmd) > 0 {
				prev[k] = pmd
			}
			continue
		}
		var ps *catalog.Schema
		if schema != nil {
			ps = schema.Properties[k]
		}
		nv, err := e.coerce(ps, v, old)
		if err != nil {
			return nil, &apiError{status: 400, typ: "invalid_request_error", code: "parameter_invalid_string", param: k, msg: err.Error()}
		}
		m[k] = nv
		if !had || !jsonEqual(old, nv) {
			prev[k] = old
		}
	}
	data := encodeObject(m)
	r.data = data
	if t.def.parent != "" {
		e.refreshParent(a, t.def, r.parent)
	}
	if len(prev) > 0 {
		pb, _ := json.Marshal(prev)
		if t.def.parent != "" && t.def.evUpdated == "" {
			e.emitParentUpdate(a, t.def, r.parent)
		} else {
			e.emit(a, t.def.evUpdated, data, pb)
		}
	}
	return data, nil
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// stripeMessage is an error whose text is Stripe's own message, sent to
// the client as it is (capitalised, as Stripe writes it).
type stripeMessage string

func (m stripeMessage) Error() string { return string(m) }

// coerce turns a form value into the JSON type of the object's property.
func (e *Emulator) coerce(ps *catalog.Schema, v any, old any) (any, error) {
	s := e.sp.resolve(ps)
	if s != nil && len(s.AnyOf) > 0 {
		for _, alt := range s.AnyOf {
			alt = e.sp.resolve(alt)
			if alt != nil && alt.Type != "" {
				s = alt
				break
			}
		}
	}
	if s == nil {
		return v, nil
	}
	if str, isStr := v.(string); isStr {
		if str == "" && (ps.Nullable || s.Nullable) {
			return nil, nil
		}
		return coerceString(s.Type, str)
	}
	switch mv, isMap := v.(map[string]any); {
	case isMap && s.Type == "object":
		return e.coerceObject(s, mv, old)
	case isMap && s.Type == "array":
		return e.coerceArray(s, mv)
	}
	return v, nil
}

// coerceString parses a form string as an integer, number or boolean
// property; strings of other types stay strings.
func coerceString(typ, str string) (any, error) {
	switch typ {
	case "integer":
		n, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			return nil, stripeMessage("Invalid integer: " + str)
		}
		return n, nil
	case "number":
		f, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, stripeMessage("Invalid decimal: " + str)
		}
		return f, nil
	case "boolean":
		switch str {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, stripeMessage("Invalid boolean: " + str)
	}
	return str, nil
}

// coerceObject merges a bracketed object parameter into the old value,
// coercing each key by the object's schema.
func (e *Emulator) coerceObject(s *catalog.Schema, mv map[string]any, old any) (any, error) {
	om, _ := old.(map[string]any)
	out := map[string]any{}
	for k, x := range om {
		out[k] = x
	}
	for k, x := range mv {
		var sub *catalog.Schema
		if s.Properties != nil {
			sub = s.Properties[k]
		}
		c, err := e.coerce(sub, x, out[k])
		if err != nil {
			return nil, err
		}
		out[k] = c
	}
	return out, nil
}

// coerceArray turns an indexed parameter (items[0], items[1], …) into the
// array of its items in index order.
func (e *Emulator) coerceArray(s *catalog.Schema, mv map[string]any) (any, error) {
	keys := make([]string, 0, len(mv))
	for k := range mv {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, _ := strconv.Atoi(keys[i])
		b, _ := strconv.Atoi(keys[j])
		return a < b
	})
	out := []any{}
	for _, k := range keys {
		c, err := e.coerce(s.Items, mv[k], nil)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
