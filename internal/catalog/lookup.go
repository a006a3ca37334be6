package catalog

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"io"
	"sort"
	"sync"
)

//go:embed schemas.json.gz
var schemasGz []byte

// schemaFile is the layout of schemas.json.gz, written by gen.
type schemaFile struct {
	Components map[string]*Schema `json:"components"`
	Operations []Operation        `json:"operations"`
}

var (
	schemasOnce sync.Once
	schemas     schemaFile
	opIndex     map[string]int // "GET /v1/customers" → index in schemas.Operations
)

// load decodes the embedded schemas once. The file is generated and
// embedded, so a decoding error is a build defect: it panics.
func load() {
	schemasOnce.Do(func() {
		zr, err := gzip.NewReader(bytes.NewReader(schemasGz))
		if err != nil {
			panic("catalog: embedded schemas: " + err.Error())
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			panic("catalog: embedded schemas: " + err.Error())
		}
		if err := json.Unmarshal(raw, &schemas); err != nil {
			panic("catalog: embedded schemas: " + err.Error())
		}
		opIndex = make(map[string]int, len(schemas.Operations))
		for i, op := range schemas.Operations {
			opIndex[op.Method+" "+op.Path] = i
		}
	})
}

// Component returns the spec's component schema with the given name
// ("customer", "checkout.session"), or nil if there is none. The schema is
// shared: callers must not modify it.
func Component(name string) *Schema {
	load()
	return schemas.Components[name]
}

// Resolve follows s's reference, if any, and returns the schema it names
// (nil when the name is unknown); a schema without Ref is returned as is.
func Resolve(s *Schema) *Schema {
	for i := 0; s != nil && s.Ref != "" && i < 32; i++ {
		s = Component(s.Ref)
	}
	return s
}

// LookupOperation returns the operation for method (GET, POST, DELETE) and
// path template ("/v1/customers/{customer}").
func LookupOperation(method, path string) (*Operation, bool) {
	load()
	i, ok := opIndex[method+" "+path]
	if !ok {
		return nil, false
	}
	return &schemas.Operations[i], true
}

// Operations returns every GET, POST and DELETE operation of the spec,
// sorted by path, and GET, POST, DELETE within a path. The schemas are
// shared: callers must not modify them.
func Operations() []Operation {
	load()
	out := make([]Operation, len(schemas.Operations))
	copy(out, schemas.Operations)
	return out
}

// ObjectSchema returns the schema of the objects a stream lists, or nil for
// an unknown stream. For a stream over a union of objects (external
// accounts: bank_account or card) it is a schema whose AnyOf refers to each.
func ObjectSchema(streamName string) *Schema {
	s, ok := Lookup(streamName)
	if !ok {
		return nil
	}
	if len(s.ObjectTypes) <= 1 {
		return Component(s.Object)
	}
	u := &Schema{}
	for _, t := range unionMembers(s) {
		u.AnyOf = append(u.AnyOf, &Schema{Ref: t})
	}
	return u
}

// unionMembers returns the component names of a union stream's objects:
// the components whose "object" value is one of the stream's object types.
func unionMembers(s Stream) []string {
	load()
	var out []string
	for name, c := range schemas.Components {
		o := c.Properties["object"]
		if o == nil || len(o.Enum) != 1 {
			continue
		}
		for _, t := range s.ObjectTypes {
			if o.Enum[0] == t && (name == t || name == s.Object) {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

var byObjectType = func() map[string][]int {
	m := map[string][]int{}
	for i, s := range streams {
		for _, t := range s.ObjectTypes {
			m[t] = append(m[t], i)
		}
	}
	return m
}()

// StreamsForObjectType returns the streams whose objects have the given
// "object" value ("invoice" → invoices; "line_item" → invoices_lines), in
// catalog order.
func StreamsForObjectType(objectType string) []Stream {
	var out []Stream
	for _, i := range byObjectType[objectType] {
		out = append(out, streams[i])
	}
	return out
}

// ObjectTypes returns every "object" value that some stream lists, sorted.
func ObjectTypes() []string {
	out := make([]string, 0, len(byObjectType))
	for t := range byObjectType {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
