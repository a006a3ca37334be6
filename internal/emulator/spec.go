package emulator

import (
	"strings"
	"sync"

	"github.com/stripeline/stripeline/internal/catalog"
)

// spec indexes the catalog's compact schemas of Stripe's pinned OpenAPI spec
// for the emulator. The schemas are embedded in the catalog package, so the
// emulator (and a binary built from it) needs neither the spec file nor the
// Go module cache at run time.
type spec struct {
	ops map[string]*catalog.Operation // "GET /v1/customers/{}"
}

var (
	specOnce sync.Once
	specData *spec
)

// emptyBody is the body of a DELETE whose spec body has no properties (the
// catalog omits such bodies); like any property-less body it constrains no
// parameter.
var emptyBody = &catalog.Schema{Type: "object"}

func loadSpec() (*spec, error) {
	specOnce.Do(func() {
		all := catalog.Operations()
		s := &spec{ops: make(map[string]*catalog.Operation, len(all))}
		for i := range all {
			o := &all[i]
			if o.Method == "DELETE" && o.Body == nil {
				o.Body = emptyBody
			}
			s.ops[o.Method+" "+normPath(o.Path)] = o
		}
		specData = s
	})
	return specData, nil
}

// component returns the named component schema, or nil.
func (s *spec) component(name string) *catalog.Schema { return catalog.Component(name) }

// resolve follows a reference to its component.
func (s *spec) resolve(sc *catalog.Schema) *catalog.Schema { return catalog.Resolve(sc) }

// operation returns the request shape of method on the path template.
// Parameter names do not matter: "/v1/customers/{id}" finds
// "/v1/customers/{customer}".
func (s *spec) operation(method, path string) *catalog.Operation {
	return s.ops[method+" "+normPath(path)]
}

// normPath replaces every {param} of a path template with {}.
func normPath(p string) string {
	if !strings.Contains(p, "{") {
		return p
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "{") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}
