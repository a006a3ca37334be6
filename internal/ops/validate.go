package ops

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/stripeline/stripeline/internal/catalog"
)

// Metadata limits (Stripe: up to 50 keys, key ≤ 40 characters, value ≤ 500).
const (
	MaxMetadataKeys     = 50
	MaxMetadataKeyLen   = 40
	MaxMetadataValueLen = 500
)

// Problem is one reason a request would be rejected, named by parameter.
type Problem struct {
	Param  string // bracket-notation parameter, "" for the whole request
	Reason string
}

func (p Problem) String() string {
	if p.Param == "" {
		return p.Reason
	}
	return p.Param + ": " + p.Reason
}

// ValidationError lists every problem found in one request's parameters.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.String()
	}
	return strings.Join(s, "; ")
}

// Validate checks params against a POST body schema before anything is sent:
// unknown parameters (with a "did you mean"), wrong types (integer, number,
// boolean, enum, string length), required parameters, and metadata limits.
// It returns nil or a *ValidationError.
func Validate(body *catalog.Schema, p Params) error {
	root, err := buildTree(p)
	if err != nil {
		return &ValidationError{Problems: []Problem{{Reason: err.Error()}}}
	}
	v := validator{}
	if body == nil {
		body = &catalog.Schema{Type: "object", Properties: map[string]*catalog.Schema{}}
	}
	v.object(resolveSchema(body), root, nil)
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

// resolveRef follows a schema reference.
var resolveRef = catalog.Resolve

func resolveSchema(s *catalog.Schema) *catalog.Schema {
	for i := 0; s != nil && s.Ref != "" && i < 8; i++ {
		r := resolveRef(s)
		if r == nil || r == s {
			break
		}
		s = r
	}
	return s
}

type validator struct {
	problems []Problem
}

func (v *validator) add(path []string, format string, args ...any) {
	v.problems = append(v.problems, Problem{Param: FormatKey(path), Reason: fmt.Sprintf(format, args...)})
}

// value checks one node against schema s.
func (v *validator) value(s *catalog.Schema, n *node, path []string) {
	s = resolveSchema(s)
	if s == nil {
		return
	}
	if len(s.AnyOf) > 0 {
		v.anyOf(s, n, path)
		return
	}
	if n.leaf {
		v.leaf(s, n.value, path)
		return
	}
	switch {
	case s.Type == "array":
		v.array(s, n, path)
	case s.Type == "object" || s.Properties != nil || s.AdditionalProperties != nil:
		v.object(s, n, path)
	case s.Type == "":
		// An unconstrained schema accepts anything.
	default:
		v.add(path, "expects a single %s value, not nested parameters", typeName(s))
	}
}

// anyOf accepts n if one alternative accepts it; otherwise it reports the
// problems of the alternative that came closest.
func (v *validator) anyOf(s *catalog.Schema, n *node, path []string) {
	var best []Problem
	for i, alt := range s.AnyOf {
		sub := validator{}
		sub.value(alt, n, path)
		if len(sub.problems) == 0 {
			return
		}
		// Prefer the alternative of the node's shape: an object for nested
		// parameters, a scalar for a value.
		a := resolveSchema(alt)
		shapeFits := a != nil && (n.leaf == !(a.Type == "object" || a.Type == "array" || a.Properties != nil))
		if i == 0 || (shapeFits && len(sub.problems) <= len(best)) || len(sub.problems) < len(best) {
			best = sub.problems
		}
	}
	if n.leaf {
		// A value that fits no alternative: report the first scalar
		// alternative's own reason (length, type), or list what fits.
		for _, alt := range s.AnyOf {
			a := resolveSchema(alt)
			if a == nil || a.Type == "object" || a.Type == "array" || a.Properties != nil || (len(a.Enum) == 1 && a.Enum[0] == "") {
				continue
			}
			sub := validator{}
			sub.value(a, n, path)
			v.problems = append(v.problems, sub.problems...)
			return
		}
		var kinds []string
		for _, alt := range s.AnyOf {
			if a := resolveSchema(alt); a != nil {
				kinds = append(kinds, describe(a))
			}
		}
		v.add(path, "expects %s, got %q", strings.Join(dedupe(kinds), " or "), clip(n.value))
		return
	}
	v.problems = append(v.problems, best...)
}

func (v *validator) object(s *catalog.Schema, n *node, path []string) {
	if n.leaf {
		// "" clears an object where the schema allows it (handled by anyOf);
		// otherwise an object needs nested parameters.
		v.add(path, "expects nested parameters (e.g. %s[key]=value), got %q", FormatKey(path), clip(n.value))
		return
	}
	isMetadata := len(path) > 0 && path[len(path)-1] == "metadata" && s.AdditionalProperties != nil
	if isMetadata {
		v.metadata(n, path)
	}
	for _, k := range n.keys {
		child := n.children[k]
		cp := appendPath(path, k)
		if ps, ok := s.Properties[k]; ok {
			v.value(ps, child, cp)
			continue
		}
		if s.AdditionalProperties != nil {
			if !isMetadata || child.leaf {
				v.value(s.AdditionalProperties, child, cp)
			} else {
				v.add(cp, "metadata values must be strings, not nested parameters")
			}
			continue
		}
		if s.Properties == nil {
			continue // a free-form object
		}
		if hint := suggest(k, s.Properties); hint != "" {
			v.add(cp, "unknown parameter (did you mean %s?)", FormatKey(appendPath(path, hint)))
		} else {
			v.add(cp, "unknown parameter")
		}
	}
	for _, r := range s.Required {
		if _, ok := n.children[r]; !ok {
			v.add(appendPath(path, r), "missing required parameter")
		}
	}
}

func (v *validator) metadata(n *node, path []string) {
	if len(n.keys) > MaxMetadataKeys {
		v.add(path, "has %d keys; Stripe allows at most %d", len(n.keys), MaxMetadataKeys)
	}
	for _, k := range n.keys {
		if l := utf8.RuneCountInString(k); l > MaxMetadataKeyLen {
			v.add(appendPath(path, k), "key is %d characters; Stripe allows at most %d", l, MaxMetadataKeyLen)
		}
		if c := n.children[k]; c.leaf {
			if l := utf8.RuneCountInString(c.value); l > MaxMetadataValueLen {
				v.add(appendPath(path, k), "value is %d characters; Stripe allows at most %d", l, MaxMetadataValueLen)
			}
		}
	}
}

func (v *validator) array(s *catalog.Schema, n *node, path []string) {
	if n.leaf {
		v.add(path, "expects a list (e.g. %s[0]=value), got %q", FormatKey(path), clip(n.value))
		return
	}
	for _, k := range n.keys {
		cp := appendPath(path, k)
		if i, err := strconv.Atoi(k); err != nil || i < 0 {
			v.add(cp, "list index %q is not a non-negative integer", k)
			continue
		}
		if s.Items != nil {
			v.value(s.Items, n.children[k], cp)
		}
	}
}

func (v *validator) leaf(s *catalog.Schema, val string, path []string) {
	if val == "" && s.Nullable {
		return
	}
	if len(s.Enum) > 0 {
		for _, e := range s.Enum {
			if e == val {
				return
			}
		}
		if val == "" {
			v.add(path, "must not be empty: expects one of %s", enumList(s.Enum))
		} else {
			v.add(path, "%q is not one of %s", clip(val), enumList(s.Enum))
		}
		return
	}
	switch s.Type {
	case "integer":
		if _, err := strconv.ParseInt(val, 10, 64); err != nil {
			v.add(path, "expects an integer, got %q", clip(val))
		}
	case "number":
		if _, err := strconv.ParseFloat(val, 64); err != nil {
			v.add(path, "expects a number, got %q", clip(val))
		}
	case "boolean":
		if val != "true" && val != "false" {
			v.add(path, "expects true or false, got %q", clip(val))
		}
	case "string":
		if s.Format == "decimal" && val != "" {
			if _, err := strconv.ParseFloat(val, 64); err != nil {
				v.add(path, "expects a decimal number, got %q", clip(val))
				return
			}
		}
		if s.MaxLength > 0 {
			if l := utf8.RuneCountInString(val); l > s.MaxLength {
				v.add(path, "is %d characters; at most %d allowed", l, s.MaxLength)
			}
		}
	case "array":
		v.array(s, &node{leaf: true, value: val}, path)
	case "object":
		v.object(s, &node{leaf: true, value: val}, path)
	}
}

// describe names what a schema accepts, for messages.
func describe(s *catalog.Schema) string {
	if len(s.Enum) == 1 && s.Enum[0] == "" {
		return `"" (to unset)`
	}
	if len(s.Enum) > 0 {
		return "one of " + enumList(s.Enum)
	}
	switch s.Type {
	case "object":
		return "nested parameters"
	case "array":
		return "a list"
	case "":
		return "a value"
	}
	return typeName(s)
}

func typeName(s *catalog.Schema) string {
	switch s.Type {
	case "integer":
		return "an integer"
	case "number":
		return "a number"
	case "boolean":
		return "true or false"
	case "string":
		return "a string"
	}
	return s.Type
}

func enumList(e []string) string {
	var vals []string
	for _, s := range e {
		if s != "" {
			vals = append(vals, s)
		}
	}
	if len(vals) > 12 {
		vals = append(vals[:12:12], "…")
	}
	return strings.Join(vals, ", ")
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func clip(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	r := []rune(s)
	return string(r[:37]) + "…"
}

// suggest returns the property closest to name, or "" when none is close.
func suggest(name string, props map[string]*catalog.Schema) string {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	return closest(name, keys)
}

// closest returns the candidate nearest to name by edit distance when the
// distance is small for the name's length, or a case-insensitive match.
func closest(name string, candidates []string) string {
	sort.Strings(candidates)
	best, bestD := "", 1<<30
	lname := strings.ToLower(name)
	for _, c := range candidates {
		if strings.ToLower(c) == lname {
			return c
		}
		d := levenshtein(lname, strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	limit := 2
	if l := utf8.RuneCountInString(name); l >= 9 {
		limit = 3
	} else if l <= 3 {
		limit = 1
	}
	if bestD <= limit {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
