package emulator

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/stripe/stripe-mock/embedded"

	"github.com/stripeline/stripeline/internal/catalog"
)

// spec is the pinned OpenAPI spec converted to catalog schemas, loaded once.
// The catalog package carries the same data once generated; the emulator reads
// the spec itself so that it depends only on the component and operation
// shapes, not on the generator's progress.
type spec struct {
	components map[string]*catalog.Schema
	ops        map[string]*catalog.Operation // "GET /v1/customers"
	paths      []string                      // every path template
}

var (
	specOnce sync.Once
	specData *spec
	specErr  error
)

func loadSpec() (*spec, error) {
	specOnce.Do(func() {
		var raw struct {
			Components struct {
				Schemas map[string]map[string]any `json:"schemas"`
			} `json:"components"`
			Paths map[string]map[string]map[string]any `json:"paths"`
		}
		if err := json.Unmarshal(embedded.OpenAPISpec, &raw); err != nil {
			specErr = fmt.Errorf("parse the OpenAPI spec: %w", err)
			return
		}
		s := &spec{components: make(map[string]*catalog.Schema, len(raw.Components.Schemas)), ops: map[string]*catalog.Operation{}}
		for name, sc := range raw.Components.Schemas {
			s.components[name] = convSchema(sc)
		}
		for path, methods := range raw.Paths {
			s.paths = append(s.paths, path)
			for method, op := range methods {
				m := strings.ToUpper(method)
				if m != "GET" && m != "POST" && m != "DELETE" {
					continue
				}
				o := &catalog.Operation{Method: m, Path: path, Query: map[string]*catalog.Schema{}}
				for _, seg := range strings.Split(path, "/") {
					if strings.HasPrefix(seg, "{") {
						o.PathParams = append(o.PathParams, strings.Trim(seg, "{}"))
					}
				}
				if params, ok := op["parameters"].([]any); ok {
					for _, p := range params {
						pm, _ := p.(map[string]any)
						if pm["in"] == "query" {
							sc, _ := pm["schema"].(map[string]any)
							o.Query[fmt.Sprint(pm["name"])] = convSchema(sc)
						}
					}
				}
				if rb, ok := op["requestBody"].(map[string]any); ok {
					if content, ok := rb["content"].(map[string]any); ok {
						if form, ok := content["application/x-www-form-urlencoded"].(map[string]any); ok {
							sc, _ := form["schema"].(map[string]any)
							o.Body = convSchema(sc)
						}
					}
				}
				if resp, ok := op["responses"].(map[string]any); ok {
					if ok200, ok := resp["200"].(map[string]any); ok {
						if content, ok := ok200["content"].(map[string]any); ok {
							if js, ok := content["application/json"].(map[string]any); ok {
								sc, _ := js["schema"].(map[string]any)
								o.Response = convSchema(sc)
							}
						}
					}
				}
				s.ops[m+" "+normPath(path)] = o
			}
		}
		sort.Strings(s.paths)
		specData = s
	})
	return specData, specErr
}

func convSchema(m map[string]any) *catalog.Schema {
	if m == nil {
		return nil
	}
	s := &catalog.Schema{}
	if ref, ok := m["$ref"].(string); ok {
		s.Ref = strings.TrimPrefix(ref, "#/components/schemas/")
		return s
	}
	s.Type, _ = m["type"].(string)
	s.Format, _ = m["format"].(string)
	s.Nullable, _ = m["nullable"].(bool)
	if n, ok := m["maxLength"].(float64); ok {
		s.MaxLength = int(n)
	}
	if e, ok := m["enum"].([]any); ok {
		for _, v := range e {
			s.Enum = append(s.Enum, fmt.Sprint(v))
		}
	}
	if p, ok := m["properties"].(map[string]any); ok {
		s.Properties = make(map[string]*catalog.Schema, len(p))
		for k, v := range p {
			vm, _ := v.(map[string]any)
			s.Properties[k] = convSchema(vm)
		}
	}
	if r, ok := m["required"].([]any); ok {
		for _, v := range r {
			s.Required = append(s.Required, fmt.Sprint(v))
		}
	}
	if it, ok := m["items"].(map[string]any); ok {
		s.Items = convSchema(it)
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		if a, ok := m[key].([]any); ok {
			for _, v := range a {
				vm, _ := v.(map[string]any)
				s.AnyOf = append(s.AnyOf, convSchema(vm))
			}
		}
	}
	switch ap := m["additionalProperties"].(type) {
	case map[string]any:
		s.AdditionalProperties = convSchema(ap)
	case bool:
		if ap {
			s.AdditionalProperties = &catalog.Schema{}
		}
	}
	if x, ok := m["x-expansionResources"].(map[string]any); ok {
		if one, ok := x["oneOf"].([]any); ok {
			for _, v := range one {
				if vm, ok := v.(map[string]any); ok {
					if ref, ok := vm["$ref"].(string); ok {
						s.Expandable = append(s.Expandable, strings.TrimPrefix(ref, "#/components/schemas/"))
					}
				}
			}
		}
	}
	return s
}

// component returns the named component schema, or nil.
func (s *spec) component(name string) *catalog.Schema { return s.components[name] }

// resolve follows a reference to its component.
func (s *spec) resolve(sc *catalog.Schema) *catalog.Schema {
	for i := 0; sc != nil && sc.Ref != "" && i < 8; i++ {
		sc = s.components[sc.Ref]
	}
	return sc
}

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
