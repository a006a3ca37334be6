package emulator

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
)

// validator checks decoded JSON against the spec's schemas: types,
// nullability, required properties, unknown properties, enums and unions.
// The tests use it to hold every generated object to the wire format.
type validator struct{ sp *spec }

// validate returns every violation of v against s, each naming its path.
func (vd validator) validate(v any, s *catalog.Schema, path string) []string {
	if s == nil || s.Ref == "" && s.Type == "" && len(s.AnyOf) == 0 && len(s.Properties) == 0 && len(s.Enum) == 0 {
		return nil // any value
	}
	nullable := s.Nullable
	r := vd.sp.resolve(s)
	if r == nil {
		return []string{path + ": unresolvable schema " + s.Ref}
	}
	nullable = nullable || r.Nullable
	if v == nil {
		if nullable || vd.nullableUnion(r) {
			return nil
		}
		return []string{path + ": null where the schema is not nullable"}
	}
	if len(r.AnyOf) > 0 {
		return vd.validateUnion(v, r, path)
	}
	switch r.Type {
	case "string":
		str, ok := v.(string)
		if !ok {
			return []string{fmt.Sprintf("%s: want string, got %T", path, v)}
		}
		if len(r.Enum) > 0 && !contains(r.Enum, str) {
			return []string{fmt.Sprintf("%s: %q is not one of %v", path, str, r.Enum)}
		}
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return []string{fmt.Sprintf("%s: want integer, got %T", path, v)}
		}
		if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			return []string{fmt.Sprintf("%s: want integer, got %s", path, n)}
		}
	case "number":
		if _, ok := v.(json.Number); !ok {
			return []string{fmt.Sprintf("%s: want number, got %T", path, v)}
		}
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return []string{fmt.Sprintf("%s: want boolean, got %T", path, v)}
		}
		if len(r.Enum) > 0 && !contains(r.Enum, strconv.FormatBool(b)) {
			return []string{fmt.Sprintf("%s: %v is not one of %v", path, b, r.Enum)}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want array, got %T", path, v)}
		}
		var errs []string
		for i, x := range arr {
			errs = append(errs, vd.validate(x, r.Items, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	case "object", "":
		m, ok := v.(map[string]any)
		if !ok {
			if r.Type == "" && len(r.Properties) == 0 {
				return nil
			}
			return []string{fmt.Sprintf("%s: want object, got %T", path, v)}
		}
		return vd.validateObject(m, r, path)
	}
	return nil
}

// nullableUnion reports whether a variant of the union r is nullable.
func (vd validator) nullableUnion(r *catalog.Schema) bool {
	for _, alt := range r.AnyOf {
		if alt.Nullable || vd.sp.resolve(alt) != nil && vd.sp.resolve(alt).Nullable {
			return true
		}
	}
	return false
}

// validateUnion accepts v if a variant of r does, and otherwise reports the
// variant it came closest to.
func (vd validator) validateUnion(v any, r *catalog.Schema, path string) []string {
	var best []string
	for i, alt := range r.AnyOf {
		errs := vd.validate(v, alt, path)
		if len(errs) == 0 {
			return nil
		}
		if i == 0 || len(errs) < len(best) {
			best = errs
		}
	}
	return append([]string{path + ": matches no variant of the union"}, best...)
}

// validateObject checks an object's required, known and unknown properties.
func (vd validator) validateObject(m map[string]any, r *catalog.Schema, path string) []string {
	var errs []string
	for _, req := range r.Required {
		if _, ok := m[req]; !ok {
			errs = append(errs, fmt.Sprintf("%s: required property %q missing", path, req))
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ps, ok := r.Properties[k]
		if !ok {
			if r.AdditionalProperties != nil {
				errs = append(errs, vd.validate(m[k], r.AdditionalProperties, path+"."+k)...)
				continue
			}
			if len(r.Properties) > 0 {
				errs = append(errs, fmt.Sprintf("%s: unknown property %q", path, k))
			}
			continue
		}
		errs = append(errs, vd.validate(m[k], ps, path+"."+k)...)
	}
	return errs
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// validateJSON decodes and validates one encoded value.
func (vd validator) validateJSON(data []byte, s *catalog.Schema, path string) []string {
	v, err := decodeAny(data)
	if err != nil {
		return []string{path + ": " + err.Error()}
	}
	return vd.validate(v, s, path)
}

func decodeAny(data []byte) (any, error) {
	d := json.NewDecoder(strings.NewReader(string(data)))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}
