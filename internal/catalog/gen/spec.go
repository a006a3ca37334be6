package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
)

// rawSchema is the part of an OpenAPI schema the catalog uses.
type rawSchema struct {
	Ref                  string                `json:"$ref"`
	Type                 string                `json:"type"`
	Format               string                `json:"format"`
	Nullable             bool                  `json:"nullable"`
	Enum                 []any                 `json:"enum"`
	MaxLength            int                   `json:"maxLength"`
	Properties           map[string]*rawSchema `json:"properties"`
	Required             []string              `json:"required"`
	Items                *rawSchema            `json:"items"`
	AnyOf                []*rawSchema          `json:"anyOf"`
	OneOf                []*rawSchema          `json:"oneOf"`
	AdditionalProperties json.RawMessage       `json:"additionalProperties"`
	Expansion            *struct {
		OneOf []*rawSchema `json:"oneOf"`
	} `json:"x-expansionResources"`
	Event *struct {
		Type string `json:"type"`
	} `json:"x-stripeEvent"`
}

type rawParam struct {
	Name     string     `json:"name"`
	In       string     `json:"in"`
	Required bool       `json:"required"`
	Schema   *rawSchema `json:"schema"`
}

type rawMedia struct {
	Schema *rawSchema `json:"schema"`
}

type rawOp struct {
	Deprecated  bool       `json:"deprecated"`
	Parameters  []rawParam `json:"parameters"`
	RequestBody *struct {
		Content map[string]rawMedia `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]rawMedia `json:"content"`
	} `json:"responses"`
}

type rawSpec struct {
	Info struct {
		Version string `json:"version"`
	} `json:"info"`
	Paths      map[string]map[string]*rawOp `json:"paths"`
	Components struct {
		Schemas map[string]*rawSchema `json:"schemas"`
	} `json:"components"`
}

func loadSpec(path string) (*rawSpec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	var s rawSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode spec %s: %w", path, err)
	}
	return &s, nil
}

const refPrefix = "#/components/schemas/"

func refName(ref string) string { return strings.TrimPrefix(ref, refPrefix) }

// convert turns an OpenAPI schema into the catalog's compact form:
// descriptions dropped, references kept by name, oneOf folded into AnyOf.
func convert(r *rawSchema) *catalog.Schema {
	if r == nil {
		return nil
	}
	if r.Ref != "" {
		return &catalog.Schema{Ref: refName(r.Ref)}
	}
	s := &catalog.Schema{
		Type:      r.Type,
		Format:    r.Format,
		Nullable:  r.Nullable,
		MaxLength: r.MaxLength,
		Items:     convert(r.Items),
	}
	if len(r.Required) > 0 {
		s.Required = append([]string(nil), r.Required...)
		sort.Strings(s.Required)
	}
	for _, e := range r.Enum {
		s.Enum = append(s.Enum, fmt.Sprint(e))
	}
	if len(r.Properties) > 0 {
		s.Properties = make(map[string]*catalog.Schema, len(r.Properties))
		for k, v := range r.Properties {
			s.Properties[k] = convert(v)
		}
	}
	for _, a := range append(append([]*rawSchema(nil), r.AnyOf...), r.OneOf...) {
		s.AnyOf = append(s.AnyOf, convert(a))
	}
	if len(r.AdditionalProperties) > 0 && r.AdditionalProperties[0] == '{' {
		var ap rawSchema
		if err := json.Unmarshal(r.AdditionalProperties, &ap); err == nil {
			s.AdditionalProperties = convert(&ap)
		}
	} else if string(r.AdditionalProperties) == "true" {
		s.AdditionalProperties = &catalog.Schema{}
	}
	if r.Expansion != nil {
		for _, o := range r.Expansion.OneOf {
			if o.Ref != "" {
				s.Expandable = append(s.Expandable, refName(o.Ref))
			}
		}
	}
	return s
}

// refsOf returns the component names a schema refers to directly or
// through anyOf.
func refsOf(r *rawSchema) []string {
	if r == nil {
		return nil
	}
	if r.Ref != "" {
		return []string{refName(r.Ref)}
	}
	var out []string
	for _, a := range r.AnyOf {
		if a.Ref != "" {
			out = append(out, refName(a.Ref))
		}
	}
	return out
}

// isList reports whether r is a Stripe list object and returns the
// component names of its items.
func (s *rawSpec) isList(r *rawSchema) ([]string, bool) {
	if r == nil {
		return nil, false
	}
	if r.Ref != "" {
		r = s.Components.Schemas[refName(r.Ref)]
		if r == nil {
			return nil, false
		}
	}
	if len(r.AnyOf) == 1 {
		return s.isList(r.AnyOf[0])
	}
	obj, data := r.Properties["object"], r.Properties["data"]
	if obj == nil || data == nil || r.Properties["has_more"] == nil {
		return nil, false
	}
	if len(obj.Enum) != 1 || obj.Enum[0] != "list" {
		return nil, false
	}
	return refsOf(data.Items), true
}

// okJSON returns the 200 application/json response schema of an operation.
func okJSON(o *rawOp) *rawSchema {
	r, ok := o.Responses["200"]
	if !ok {
		return nil
	}
	return r.Content["application/json"].Schema
}
