// Package ops operates on Stripe: get one object, search, create, update and
// delete single objects, and load many rows from CSV or JSONL files with
// validation against the spec's request schemas, idempotency keys per row,
// upserts and reports.
package ops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Param is one form parameter in Stripe's bracket notation, e.g.
// "metadata[plan]" = "pro" or "items[0][price]" = "price_123".
type Param struct {
	Key   string
	Value string
}

// Params is an ordered list of form parameters. An empty Value is sent as
// is: Stripe reads it as "unset" ("metadata[plan]=" removes the key).
type Params []Param

// Values returns the parameters as url.Values for the request body.
func (p Params) Values() url.Values {
	v := make(url.Values, len(p))
	for _, kv := range p {
		v[kv.Key] = append(v[kv.Key], kv.Value)
	}
	return v
}

// Get returns the value of key and whether it is present.
func (p Params) Get(key string) (string, bool) {
	for _, kv := range p {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Without returns p without the parameters named key.
func (p Params) Without(key string) Params {
	out := make(Params, 0, len(p))
	for _, kv := range p {
		if kv.Key != key {
			out = append(out, kv)
		}
	}
	return out
}

// Canonical returns a stable text form of p: parameters sorted by key (the
// order of "[]" values kept), one "key=value" per line with both escaped.
// Two rows that would send the same request have the same canonical form.
func (p Params) Canonical() string {
	s := make(Params, len(p))
	copy(s, p)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Key < s[j].Key })
	var b strings.Builder
	for _, kv := range s {
		b.WriteString(url.QueryEscape(kv.Key))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv.Value))
		b.WriteByte('\n')
	}
	return b.String()
}

// ParseKey splits a bracket-notation key into its path:
// "items[0][price]" → ["items", "0", "price"], "expand[]" → ["expand", ""].
// Only the last segment may be empty ("[]").
func ParseKey(key string) ([]string, error) {
	open := strings.IndexByte(key, '[')
	if open < 0 {
		if key == "" {
			return nil, errors.New("empty parameter name")
		}
		if strings.ContainsRune(key, ']') {
			return nil, fmt.Errorf("parameter %q: unbalanced brackets", key)
		}
		return []string{key}, nil
	}
	if open == 0 {
		return nil, fmt.Errorf("parameter %q: name missing before [", key)
	}
	head := key[:open]
	if strings.ContainsRune(head, ']') {
		return nil, fmt.Errorf("parameter %q: unbalanced brackets", key)
	}
	path := []string{head}
	rest := key[open:]
	for rest != "" {
		if rest[0] != '[' {
			return nil, fmt.Errorf("parameter %q: expected [ after ]", key)
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, fmt.Errorf("parameter %q: unbalanced brackets", key)
		}
		seg := rest[1:end]
		if strings.ContainsRune(seg, '[') {
			return nil, fmt.Errorf("parameter %q: unbalanced brackets", key)
		}
		rest = rest[end+1:]
		if seg == "" && rest != "" {
			return nil, fmt.Errorf("parameter %q: [] must come last", key)
		}
		path = append(path, seg)
	}
	return path, nil
}

// FormatKey is the inverse of ParseKey: ["items","0","price"] → "items[0][price]".
func FormatKey(path []string) string {
	if len(path) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(path[0])
	for _, s := range path[1:] {
		b.WriteByte('[')
		b.WriteString(s)
		b.WriteByte(']')
	}
	return b.String()
}

// ParseAssignments turns command-line arguments "key=value" into Params.
// "metadata[plan]=" (empty value) unsets the key on Stripe.
func ParseAssignments(args []string) (Params, error) {
	out := make(Params, 0, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("argument %q: expected key=value (e.g. email=a@b.c, metadata[plan]=pro)", a)
		}
		if _, err := ParseKey(k); err != nil {
			return nil, err
		}
		out = append(out, Param{Key: k, Value: v})
	}
	return out, nil
}

// FlattenJSON turns one JSON object into bracket-notation parameters:
// nested objects become "a[b]", arrays "a[0]", booleans "true"/"false",
// numbers keep their literal text, null and empty objects or arrays become
// "" (which Stripe reads as unset). Keys keep the document's order.
func FlattenJSON(data []byte) (Params, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("parse JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("parse JSON: expected an object")
	}
	var out Params
	if err := flattenObject(dec, nil, &out); err != nil {
		return nil, fmt.Errorf("parse JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("parse JSON: unexpected data after the object")
	}
	return out, nil
}

// flattenObject reads the members of an object whose '{' was consumed.
func flattenObject(dec *json.Decoder, path []string, out *Params) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		if err := checkSegment(name); err != nil {
			return err
		}
		if seen[name] {
			return fmt.Errorf("key %q appears twice", FormatKey(appendPath(path, name)))
		}
		seen[name] = true
		if err := flattenValue(dec, appendPath(path, name), out); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return err
	}
	if len(seen) == 0 && path != nil {
		*out = append(*out, Param{Key: FormatKey(path), Value: ""})
	}
	return nil
}

func flattenValue(dec *json.Decoder, path []string, out *Params) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return flattenObject(dec, path, out)
		case '[':
			i := 0
			for dec.More() {
				if err := flattenValue(dec, appendPath(path, strconv.Itoa(i)), out); err != nil {
					return err
				}
				i++
			}
			if _, err := dec.Token(); err != nil { // ']'
				return err
			}
			if i == 0 {
				*out = append(*out, Param{Key: FormatKey(path), Value: ""})
			}
			return nil
		}
		return fmt.Errorf("unexpected %v", t)
	case string:
		*out = append(*out, Param{Key: FormatKey(path), Value: t})
	case json.Number:
		*out = append(*out, Param{Key: FormatKey(path), Value: t.String()})
	case bool:
		*out = append(*out, Param{Key: FormatKey(path), Value: strconv.FormatBool(t)})
	case nil:
		*out = append(*out, Param{Key: FormatKey(path), Value: ""})
	}
	return nil
}

// checkSegment rejects object keys that cannot be written in bracket form.
func checkSegment(name string) error {
	if name == "" {
		return errors.New("empty key")
	}
	if strings.ContainsAny(name, "[]") {
		return fmt.Errorf("key %q: brackets are not allowed in a key", name)
	}
	return nil
}

func appendPath(path []string, seg string) []string {
	out := make([]string, len(path), len(path)+1)
	copy(out, path)
	return append(out, seg)
}

// node is one level of the tree that bracket keys describe.
type node struct {
	leaf     bool
	value    string
	keys     []string // children in first-seen order
	children map[string]*node
}

// buildTree nests params by their paths. It reports a key given both as a
// value and as an object ("metadata=" and "metadata[a]=b"), and resolves
// "[]" segments to the next free index.
func buildTree(p Params) (*node, error) {
	root := &node{children: map[string]*node{}}
	for _, kv := range p {
		path, err := ParseKey(kv.Key)
		if err != nil {
			return nil, err
		}
		n := root
		for i, seg := range path {
			if n.leaf {
				return nil, fmt.Errorf("parameter %s: %s is given both as a value and as an object", kv.Key, FormatKey(path[:i]))
			}
			if seg == "" {
				seg = strconv.Itoa(len(n.keys))
				for n.children[seg] != nil {
					seg += "_"
				}
			}
			c := n.children[seg]
			last := i == len(path)-1
			if c == nil {
				c = &node{children: map[string]*node{}}
				n.children[seg] = c
				n.keys = append(n.keys, seg)
			} else if last {
				if c.leaf {
					return nil, fmt.Errorf("parameter %s is given twice", kv.Key)
				}
				return nil, fmt.Errorf("parameter %s is given both as a value and as an object", kv.Key)
			}
			if last {
				c.leaf = true
				c.value = kv.Value
			}
			n = c
		}
	}
	return root, nil
}
